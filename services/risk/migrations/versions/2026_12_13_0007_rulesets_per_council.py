"""rulesets per council, and each council's organisational transparency details

The ruleset marked ``active`` stays what it was and becomes the deployment's default: the
rules of every council without a ruleset of its own. ``council_rulesets`` holds each council's
own choice (at most one a council); ``councils`` the organisational fields of each council's
transparency record (ATRS), set by operators and the council's information-governance team.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-13
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "council_rulesets",
        sa.Column("council", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("activated_by", sa.Text(), nullable=False),
        sa.Column(
            "activated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(["version"], ["rulesets.version"]),
        sa.PrimaryKeyConstraint("council"),
    )
    op.create_table(
        "councils",
        sa.Column("council", sa.Text(), nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("council"),
    )


def downgrade() -> None:
    op.drop_table("councils")
    op.drop_table("council_rulesets")
