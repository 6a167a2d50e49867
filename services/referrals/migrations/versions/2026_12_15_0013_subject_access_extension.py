"""subject access deadline extensions (Article 12(3)); indexes for erasure at scale

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-15

- ``subject_access_extensions``: at most one a request (its primary key), deleted with it.
- ``audit_log.case_ids`` gets a GIN index, as ``resident_ids`` has: an erasure's
  ``audit_log_erase`` and subject access look rows up by ``case_ids ?| …``.
- ``outbox.message_key`` gets a B-tree index: an erasure deletes the outbox rows keyed by
  the resident's cases and keys (``shared/erasure.py``, ``delete_outbox_rows_naming``).

Both indexes are built with a plain ``CREATE INDEX`` (it blocks writes to the table while it
builds): on a large trail, build them ``CONCURRENTLY`` by hand first, under the same names,
and this revision finds them there (``IF NOT EXISTS``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subject_access_extensions",
        sa.Column(
            "request_id",
            sa.Uuid(as_uuid=False),
            sa.ForeignKey("subject_access_requests.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("due_by", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("resident_told_on", sa.Date(), nullable=False),
        sa.Column("extended_by", sa.Text(), nullable=False),
        sa.Column("extended_by_org", sa.Text(), nullable=False),
        sa.Column("extended_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_audit_log_case_ids",
        "audit_log",
        ["case_ids"],
        postgresql_using="gin",
        if_not_exists=True,
    )
    op.create_index("ix_outbox_message_key", "outbox", ["message_key"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_outbox_message_key", table_name="outbox")
    op.drop_index("ix_audit_log_case_ids", table_name="audit_log")
    op.drop_table("subject_access_extensions")
