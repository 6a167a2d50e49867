"""indexes for queries that read years of history

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-20

The periodic sweeps and the erasure found their rows by reading every resident, case,
referral or consent ever recorded: the hourly retention sweep, which read every resident
and, for each, every case (hours a pass at 300,000 residents); the consent expiry timer,
every 30 s, every consent; an erasure, every case, referral and merged record. Each now
reads what it needs through an index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_ENDED_AT = "COALESCE(closed_at, withdrawn_at, updated_at)"


def upgrade() -> None:
    op.create_index(
        "ix_residents_merged_into",
        "residents",
        ["merged_into"],
        postgresql_where=sa.text("merged_into IS NOT NULL"),
    )
    op.create_index("ix_cases_resident", "cases", ["resident_id"])
    op.create_index(
        "ix_cases_merged_into_case",
        "cases",
        ["merged_into_case"],
        postgresql_where=sa.text("merged_into_case IS NOT NULL"),
    )
    op.create_index(
        "ix_cases_ended_at",
        "cases",
        [sa.text(_ENDED_AT)],
        postgresql_where=sa.text("status IN ('closed', 'withdrawn')"),
    )
    # Without them the planner takes the expression to match a third of the cases, and
    # reads them all rather than the index.
    op.execute(f"CREATE STATISTICS st_cases_ended_at ON ({_ENDED_AT}) FROM cases")
    op.create_index(op.f("ix_referrals_resident_id"), "referrals", ["resident_id"])
    op.create_index(
        "ix_consents_expiring",
        "consents",
        ["expires_at"],
        postgresql_where=sa.text("withdrawn_at IS NULL AND expires_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_consents_expiring", table_name="consents")
    op.drop_index(op.f("ix_referrals_resident_id"), table_name="referrals")
    op.execute("DROP STATISTICS st_cases_ended_at")
    op.drop_index("ix_cases_ended_at", table_name="cases")
    op.drop_index("ix_cases_merged_into_case", table_name="cases")
    op.drop_index("ix_cases_resident", table_name="cases")
    op.drop_index("ix_residents_merged_into", table_name="residents")
