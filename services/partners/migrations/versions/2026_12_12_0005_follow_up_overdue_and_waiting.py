"""offers: a follow-up deadline once accepted, and when it became overdue; route requests:
waiting for a place (since when, queue rank)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("offers", sa.Column("follow_up_by", sa.DateTime(timezone=True)))
    op.add_column("offers", sa.Column("overdue_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_offers_follow_up",
        "offers",
        ["follow_up_by"],
        postgresql_where=sa.text("status IN ('accepted', 'in_progress') AND overdue_at IS NULL"),
    )

    op.add_column("route_requests", sa.Column("waiting_since", sa.DateTime(timezone=True)))
    op.add_column("route_requests", sa.Column("queue_rank", sa.SmallInteger()))
    op.create_index(
        "ix_route_requests_queue",
        "route_requests",
        ["need", "queue_rank", "waiting_since"],
        postgresql_where=sa.text("status = 'waiting'"),
    )


def downgrade() -> None:
    op.drop_index("ix_route_requests_queue", table_name="route_requests")
    op.drop_column("route_requests", "queue_rank")
    op.drop_column("route_requests", "waiting_since")
    op.drop_index("ix_offers_follow_up", table_name="offers")
    op.drop_column("offers", "overdue_at")
    op.drop_column("offers", "follow_up_by")
