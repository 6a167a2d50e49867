"""indexes for queries that read years of history

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-20

Every need routed counted each candidate service's offers, and every placement its load,
from every offer the services had ever made; the hourly retention sweep walked every offer
to find the ended ones; an erasure's delete of webhook deliveries read them all. Each now
reads what it needs through an index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_offers_service_status", "offers", ["service_id", "status"])
    op.create_index(
        "ix_offers_ended",
        "offers",
        ["updated_at"],
        postgresql_where=sa.text("status IN ('declined', 'expired', 'withdrawn')"),
    )
    op.create_index("ix_deliveries_offer", "deliveries", ["offer_id"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_offer", table_name="deliveries")
    op.drop_index("ix_offers_ended", table_name="offers")
    op.drop_index("ix_offers_service_status", table_name="offers")
