"""subject access requests and each service's contribution to them

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-13
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subject_access_requests",
        sa.Column("id", sa.Uuid(as_uuid=False), primary_key=True),
        sa.Column("council", sa.Text(), nullable=False),
        sa.Column(
            "resident_id", sa.Uuid(as_uuid=False), sa.ForeignKey("residents.id"), nullable=False
        ),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("requested_by_org", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_by", sa.Date(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "ix_subject_access_requests_council",
        "subject_access_requests",
        ["council", "requested_at"],
    )
    op.create_table(
        "subject_access_contributions",
        sa.Column(
            "request_id",
            sa.Uuid(as_uuid=False),
            sa.ForeignKey("subject_access_requests.id"),
            primary_key=True,
        ),
        sa.Column("service", sa.Text(), primary_key=True),
        sa.Column("part", sa.SmallInteger(), primary_key=True),
        sa.Column("parts", sa.SmallInteger(), nullable=False),
        sa.Column("contributed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sections", postgresql.JSONB(), nullable=False),
        sa.Column("reads", postgresql.JSONB(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("subject_access_contributions")
    op.drop_index("ix_subject_access_requests_council", table_name="subject_access_requests")
    op.drop_table("subject_access_requests")
