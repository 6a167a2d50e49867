"""offers mirror keeps the routing reasons (why this partner)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("offers", sa.Column("routing_reasons", postgresql.JSONB(astext_type=sa.Text())))


def downgrade() -> None:
    op.drop_column("offers", "routing_reasons")
