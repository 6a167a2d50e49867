"""erasure requests, their confirmations, tombstones; the audit trail's erasure functions

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-13
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.erasure import create_erasure_v1, drop_erasure_v1

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasure_requests",
        sa.Column("id", sa.Uuid(as_uuid=False), primary_key=True),
        sa.Column("council", sa.Text(), nullable=False),
        sa.Column("resident_hash", sa.Text(), nullable=False),
        sa.Column("ground", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("requested_by_org", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased", postgresql.JSONB(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_erasure_requests_council", "erasure_requests", ["council", "requested_at"])
    op.create_table(
        "erasure_confirmations",
        sa.Column(
            "request_id",
            sa.Uuid(as_uuid=False),
            sa.ForeignKey("erasure_requests.id"),
            primary_key=True,
        ),
        sa.Column("service", sa.Text(), primary_key=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased", postgresql.JSONB(), nullable=False),
    )
    create_erasure_v1()


def downgrade() -> None:
    drop_erasure_v1()
    op.drop_table("erasure_confirmations")
    op.drop_index("ix_erasure_requests_council", table_name="erasure_requests")
    op.drop_table("erasure_requests")
