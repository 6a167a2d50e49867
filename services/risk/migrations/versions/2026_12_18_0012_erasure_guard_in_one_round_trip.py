"""the erasure guard's locks and its look at the tombstones in one round trip

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-18

Every event a consumer applies is first checked against the tombstones, after taking the
advisory locks of what it names (shared/erasure.py): two statements, now one call.
"""

from __future__ import annotations

from shared.erasure import create_erasure_guard_v1, drop_erasure_guard_v1

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_erasure_guard_v1()


def downgrade() -> None:
    drop_erasure_guard_v1()
