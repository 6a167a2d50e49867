"""indexes for queries that read years of history

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-20

Every need routed counted each candidate service's offers, and every placement its load,
from every offer the services had ever made; the hourly retention sweep walked every offer
to find the ended ones; an erasure's delete of webhook deliveries read them all. Each now
reads what it needs through an index, built CONCURRENTLY (shared/migrations.py).
"""

from __future__ import annotations

from shared.migrations import (
    IndexSpec,
    create_indexes_concurrently_v1,
    drop_indexes_concurrently_v1,
)

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_INDEXES = [
    IndexSpec("ix_offers_service_status", "offers", ["service_id", "status"]),
    IndexSpec(
        "ix_offers_ended",
        "offers",
        ["updated_at"],
        "status IN ('declined', 'expired', 'withdrawn')",
    ),
    IndexSpec("ix_deliveries_offer", "deliveries", ["offer_id"]),
]


def upgrade() -> None:
    create_indexes_concurrently_v1(_INDEXES)


def downgrade() -> None:
    drop_indexes_concurrently_v1(_INDEXES)
