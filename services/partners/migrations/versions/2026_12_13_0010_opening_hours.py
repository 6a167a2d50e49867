"""A service's opening hours: offers to it are due in those hours (issue 16).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("services", sa.Column("opening_hours", JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("services", "opening_hours")
