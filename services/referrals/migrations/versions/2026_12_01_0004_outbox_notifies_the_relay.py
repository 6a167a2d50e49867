"""outbox notifies the relay on commit

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from shared.messaging.migration import create_outbox_notify_v1, drop_outbox_notify_v1

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_notify_v1()


def downgrade() -> None:
    drop_outbox_notify_v1()
