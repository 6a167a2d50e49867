"""cases of residents without a key: a case and its assessments need not have a profile

A referral that gives no date of birth, postcode or UPRN yields no resident key, so no
signal can be matched to it and no profile is made for it; its case is still assessed on
what the referral says.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("cases", "profile_id", existing_type=sa.Uuid(as_uuid=False), nullable=True)
    op.alter_column(
        "assessments", "profile_id", existing_type=sa.Uuid(as_uuid=False), nullable=True
    )


def downgrade() -> None:
    op.execute("DELETE FROM assessments WHERE profile_id IS NULL")
    op.execute("DELETE FROM cases WHERE profile_id IS NULL")
    op.alter_column(
        "assessments", "profile_id", existing_type=sa.Uuid(as_uuid=False), nullable=False
    )
    op.alter_column("cases", "profile_id", existing_type=sa.Uuid(as_uuid=False), nullable=False)
