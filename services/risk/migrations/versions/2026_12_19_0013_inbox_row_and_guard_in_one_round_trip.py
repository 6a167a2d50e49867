"""a guarded event's inbox row and the erasure guard in one round trip

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-19

A consumer wrote each event's inbox row, then ran the erasure guard (shared/erasure.py):
two statements for every guarded event, now one call (``claimed_unless_erased``).
"""

from __future__ import annotations

from shared.erasure import create_inbox_claim_v1, drop_inbox_claim_v1

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_inbox_claim_v1()


def downgrade() -> None:
    drop_inbox_claim_v1()
