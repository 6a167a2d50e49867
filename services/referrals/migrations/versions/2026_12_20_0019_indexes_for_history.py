"""indexes for queries that read years of history

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-20

The periodic sweeps and the erasure found their rows by reading every resident, case,
referral or consent ever recorded: the hourly retention sweep, which read every resident
and, for each, every case (hours a pass at 300,000 residents); the consent expiry timer,
every 30 s, every consent; an erasure, every case, referral and merged record. Each now
reads what it needs through an index.

Built CONCURRENTLY, outside the migration's transaction: on a database of years the builds
take a while, and a plain CREATE INDEX would stop every write to these tables meanwhile.
A build that fails (a deadlock, a cancel) leaves an invalid index behind: drop it, then
migrate again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_ENDED_AT = "COALESCE(closed_at, withdrawn_at, updated_at)"
_INDEXES: list[tuple[str, str, list[str | sa.TextClause], str | None]] = [
    ("ix_residents_merged_into", "residents", ["merged_into"], "merged_into IS NOT NULL"),
    ("ix_cases_resident", "cases", ["resident_id"], None),
    (
        "ix_cases_merged_into_case",
        "cases",
        ["merged_into_case"],
        "merged_into_case IS NOT NULL",
    ),
    ("ix_cases_ended_at", "cases", [sa.text(_ENDED_AT)], "status IN ('closed', 'withdrawn')"),
    ("ix_referrals_resident_id", "referrals", ["resident_id"], None),
    (
        "ix_consents_expiring",
        "consents",
        ["expires_at"],
        "withdrawn_at IS NULL AND expires_at IS NOT NULL",
    ),
]


def upgrade() -> None:
    with op.get_context().autocommit_block():
        for name, table, columns, where in _INDEXES:
            op.create_index(
                name,
                table,
                columns,
                postgresql_where=sa.text(where) if where else None,
                postgresql_concurrently=True,
            )
        # Without them the planner takes the expression to match a third of the cases, and
        # reads them all rather than the index.
        op.execute(f"CREATE STATISTICS st_cases_ended_at ON ({_ENDED_AT}) FROM cases")
        op.execute("ANALYZE cases")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP STATISTICS st_cases_ended_at")
        for name, table, _, _ in reversed(_INDEXES):
            op.drop_index(name, table_name=table, postgresql_concurrently=True)
