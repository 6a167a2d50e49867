"""the inbox pruned, oldest first; expired sign-in links and web sessions too; a partner's
recently closed offers

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-21

A consumer's record of the events it applied (the inbox) was never deleted: it grew by
every event every consumer group applied. The retention sweep now deletes it after
inbox_retention_days (shared/messaging/inbox.py), oldest first, through this index, built
CONCURRENTLY (shared/migrations.py).

Sign-in links and web sessions (each holding a partner's staff e-mail address) were kept
forever too, and so was each sign-in e-mail's row (its address, once the link in its body
was erased); they now go retention_sign_in_days after they expired (the e-mail after it was
written), each found through an index of its own.

A partner's inbox listed every offer it ever closed (outcome recorded): after years, pages
of them on every look, each read into the audit trail. It lists those of the last
partner_inbox_closed_days now, from ix_offers_closed.
"""

from __future__ import annotations

from shared.migrations import (
    IndexSpec,
    create_indexes_concurrently_v1,
    drop_indexes_concurrently_v1,
)

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_INDEXES = [
    IndexSpec("ix_inbox_processed_at", "inbox", ["processed_at"]),
    IndexSpec("ix_sign_in_links_expires_at", "sign_in_links", ["expires_at"]),
    IndexSpec("ix_web_sessions_expires_at", "web_sessions", ["expires_at"]),
    IndexSpec(
        "ix_email_deliveries_sign_in",
        "email_deliveries",
        ["created_at"],
        "kind = 'sign-in' AND status <> 'pending'",
    ),
    IndexSpec(
        "ix_offers_closed",
        "offers",
        ["organization_id", "updated_at"],
        "status = 'outcome_recorded'",
    ),
]


def upgrade() -> None:
    create_indexes_concurrently_v1(_INDEXES)


def downgrade() -> None:
    drop_indexes_concurrently_v1(_INDEXES)
