"""the inbox and the idempotency keys' answers pruned, oldest first

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-21

A consumer's record of the events it applied (the inbox) was never deleted: it grew by
every event every consumer group applied. The retention sweep now deletes it after
inbox_retention_days (shared/messaging/inbox.py), oldest first, through this index, built
CONCURRENTLY (shared/migrations.py).

The stored answers to referrals' Idempotency-Keys were kept forever too, and every erasure
read them all to find the resident's; they now go after idempotency_key_days, through
theirs.
"""

from __future__ import annotations

from shared.migrations import (
    IndexSpec,
    create_indexes_concurrently_v1,
    drop_indexes_concurrently_v1,
)

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_INDEXES = [
    IndexSpec("ix_inbox_processed_at", "inbox", ["processed_at"]),
    IndexSpec("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"]),
]


def upgrade() -> None:
    create_indexes_concurrently_v1(_INDEXES)


def downgrade() -> None:
    drop_indexes_concurrently_v1(_INDEXES)
