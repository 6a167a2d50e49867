"""gaps detected: episodes of gaps in service (a need unroutable or waiting too long)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-13

``route_requests.unroutable_since``: when a need turned unroutable (kept through retries,
which touch ``updated_at``), for a gap's longest wait. A need already unroutable gets its
``updated_at``: the best this revision knows (its last retry, so never too early).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "route_requests", sa.Column("unroutable_since", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(
        "UPDATE route_requests SET unroutable_since = updated_at WHERE status = 'unroutable'"
    )
    op.create_table(
        "gaps",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("council", sa.Text(), nullable=False),
        sa.Column("need", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("residents", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_gaps_open",
        "gaps",
        ["council", "need", "reason"],
        unique=True,
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_index(
        "ix_route_requests_in_gaps",
        "route_requests",
        ["council", "need"],
        postgresql_where=sa.text("status IN ('waiting', 'unroutable')"),
    )


def downgrade() -> None:
    op.drop_index("ix_route_requests_in_gaps", table_name="route_requests")
    op.drop_index("uq_gaps_open", table_name="gaps", postgresql_where=sa.text("closed_at IS NULL"))
    op.drop_table("gaps")
    op.drop_column("route_requests", "unroutable_since")
