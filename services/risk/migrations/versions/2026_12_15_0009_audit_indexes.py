"""indexes for erasure at scale

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-15

- ``audit_log.case_ids`` gets a GIN index, as ``resident_ids`` has: an erasure's
  ``audit_log_erase`` and subject access look rows up by ``case_ids ?| …``.
- ``outbox.message_key`` gets a B-tree index: an erasure deletes the outbox rows keyed by
  the resident's cases and keys (``shared/erasure.py``, ``delete_outbox_rows_naming``).

Built with a plain ``CREATE INDEX`` (it blocks writes to the table while it builds): on a
large trail, build them ``CONCURRENTLY`` by hand first, under the same names, and this
revision finds them there (``IF NOT EXISTS``).
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
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
