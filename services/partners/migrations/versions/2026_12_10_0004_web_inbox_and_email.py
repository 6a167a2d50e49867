"""the partner web inbox: sign-in addresses, magic links, sessions, email deliveries

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _at(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "inbox_addresses",
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("organization_id", sa.Uuid(as_uuid=False), nullable=False),
        _at("created_at"),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"]),
        sa.PrimaryKeyConstraint("email"),
    )
    op.create_index("ix_inbox_addresses_organization_id", "inbox_addresses", ["organization_id"])
    op.create_table(
        "sign_in_links",
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("organization_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("next_path", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        _at("created_at"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_table(
        "sign_in_requests",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("address_key", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sign_in_requests_key", "sign_in_requests", ["address_key", "at"])
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("organization_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("csrf_token", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        _at("created_at"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_table(
        "email_deliveries",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("organization_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("offer_id", sa.Uuid(as_uuid=False), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("to_address", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _at("created_at"),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("offer_id", "kind", "to_address"),
    )
    op.create_index("ix_email_deliveries_organization_id", "email_deliveries", ["organization_id"])
    op.create_index(
        "ix_email_deliveries_due",
        "email_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    for table in (
        "email_deliveries",
        "web_sessions",
        "sign_in_requests",
        "sign_in_links",
        "inbox_addresses",
    ):
        op.drop_table(table)
