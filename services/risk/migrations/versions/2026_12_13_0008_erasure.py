"""erasure: tombstones of erased identifiers; the audit trail's erasure functions

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-13
"""

from __future__ import annotations

from shared.erasure import create_erasure_v1, drop_erasure_v1

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_erasure_v1()


def downgrade() -> None:
    drop_erasure_v1()
