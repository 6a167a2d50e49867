"""indexes for queries that read years of history

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-20

The periodic sweeps and the erasure found their rows by reading every resident, case,
referral or consent ever recorded: the hourly retention sweep, which read every resident
and, for each, every case (hours a pass at 300,000 residents); the consent expiry timer,
every 30 s, every consent; an erasure, every case, referral and merged record. Each now
reads what it needs through an index, built CONCURRENTLY (shared/migrations.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.migrations import (
    IndexSpec,
    create_indexes_concurrently_v1,
    drop_indexes_concurrently_v1,
)

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_ENDED_AT = "COALESCE(closed_at, withdrawn_at, updated_at)"
_INDEXES = [
    IndexSpec("ix_residents_merged_into", "residents", ["merged_into"], "merged_into IS NOT NULL"),
    IndexSpec("ix_cases_resident", "cases", ["resident_id"]),
    IndexSpec(
        "ix_cases_merged_into_case", "cases", ["merged_into_case"], "merged_into_case IS NOT NULL"
    ),
    IndexSpec(
        "ix_cases_ended_at", "cases", [sa.text(_ENDED_AT)], "status IN ('closed', 'withdrawn')"
    ),
    IndexSpec("ix_referrals_resident_id", "referrals", ["resident_id"]),
    IndexSpec(
        "ix_consents_expiring",
        "consents",
        ["expires_at"],
        "withdrawn_at IS NULL AND expires_at IS NOT NULL",
    ),
]


def upgrade() -> None:
    create_indexes_concurrently_v1(_INDEXES)
    with op.get_context().autocommit_block():
        # Without them the planner takes the expression to match a third of the cases, and
        # reads them all rather than the index.
        op.execute(f"CREATE STATISTICS st_cases_ended_at ON ({_ENDED_AT}) FROM cases")
        op.execute("ANALYZE cases")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP STATISTICS st_cases_ended_at")
    drop_indexes_concurrently_v1(_INDEXES)
