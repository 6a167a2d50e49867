"""indexes for queries that read years of history

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-20

Every need routed counted each candidate service's offers, and every placement its load,
from every offer the services had ever made; the hourly retention sweep walked every offer
to find the ended ones; an erasure's delete of webhook deliveries read them all. Each now
reads what it needs through an index.

Built CONCURRENTLY, outside the migration's transaction: on a database of years the builds
take a while, and a plain CREATE INDEX would stop every write to these tables meanwhile.
A build that fails (a deadlock, a cancel) leaves an invalid index behind: drop it, then
migrate again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_INDEXES: list[tuple[str, str, list[str], str | None]] = [
    ("ix_offers_service_status", "offers", ["service_id", "status"], None),
    ("ix_offers_ended", "offers", ["updated_at"], "status IN ('declined', 'expired', 'withdrawn')"),
    ("ix_deliveries_offer", "deliveries", ["offer_id"], None),
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


def downgrade() -> None:
    with op.get_context().autocommit_block():
        for name, table, _, _ in reversed(_INDEXES):
            op.drop_index(name, table_name=table, postgresql_concurrently=True)
