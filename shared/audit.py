"""An append-only audit trail of every read of personal data, shared by the services.

Each service includes ``audit_table(metadata)`` in its tables and creates it with
``create_audit_table_v1()`` in a revision of its own; a read use case calls ``record_read``
inside the transaction that reads, so the row and the answer commit together (a read whose
audit row cannot be written fails: it never goes unrecorded). A trigger refuses UPDATE and
DELETE on the table: rows are only ever added (retention, when it comes, is a migration-owned
sweep, not an application UPDATE). One INSERT per read, of a few short columns.

Frozen like the messaging migrations: a later change to the table gets ``…_v2``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    MetaData,
    Table,
    Text,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.db import fetch_all

AUDIT_TABLE = "audit_log"


def audit_table(metadata: MetaData) -> Table:
    """The audit trail as a table of ``metadata``."""
    return Table(
        AUDIT_TABLE,
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("at", DateTime(timezone=True), nullable=False),
        # who
        Column("subject", Text, nullable=False),
        Column("organisation", Text, nullable=False),
        Column("organisation_kind", Text, nullable=False),
        Column("roles", JSONB, nullable=False),
        # what, through which operation and why
        Column("operation", Text, nullable=False),
        Column("purpose", Text, nullable=False),
        Column("council", Text),  # whose residents were read (None: several or none)
        Column("resident_ids", JSONB, nullable=False),
        Column("case_ids", JSONB, nullable=False),
        Column("data_categories", JSONB, nullable=False),
        Index("ix_audit_log_council_at", "council", "at"),
        Index("ix_audit_log_subject_at", "subject", "at"),
        Index("ix_audit_log_resident_ids", "resident_ids", postgresql_using="gin"),
    )


@dataclass(frozen=True)
class Read:
    """What one read showed: whose data, which categories, through which operation, why."""

    operation: str
    purpose: str
    data_categories: tuple[str, ...]
    resident_ids: tuple[str, ...] = ()
    case_ids: tuple[str, ...] = ()
    council: str | None = None


async def record_read(
    session: AsyncSession, table: Table, principal: Principal, read: Read, *, at: datetime
) -> None:
    """One audit row, in the caller's transaction."""
    await session.execute(
        insert(table).values(
            at=at,
            subject=principal.subject,
            organisation=principal.organisation,
            organisation_kind=principal.kind.value,
            roles=sorted(r.value for r in principal.roles),
            operation=read.operation,
            purpose=read.purpose,
            council=read.council,
            resident_ids=list(dict.fromkeys(read.resident_ids)),
            case_ids=list(dict.fromkeys(read.case_ids)),
            data_categories=list(read.data_categories),
        )
    )


async def trail(
    session: AsyncSession,
    table: Table,
    *,
    councils: Iterable[str] | None,
    resident_id: str | None = None,
    subject: str | None = None,
    limit: int = 100,
) -> Sequence[Any]:
    """The newest audit rows about a resident or by a user, within ``councils`` (None:
    every council, for operators)."""
    query = select(table).order_by(table.c.id.desc()).limit(limit)
    if councils is not None:
        query = query.where(table.c.council.in_(list(councils)))
    if resident_id is not None:
        query = query.where(table.c.resident_ids.contains([resident_id]))
    if subject is not None:
        query = query.where(table.c.subject == subject)
    return await fetch_all(session, query)


# -- migrations ----------------------------------------------------------------------------


def create_audit_table_v1() -> None:
    from alembic import op
    from sqlalchemy.dialects import postgresql

    op.create_table(
        AUDIT_TABLE,
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("organisation", sa.Text(), nullable=False),
        sa.Column("organisation_kind", sa.Text(), nullable=False),
        sa.Column("roles", postgresql.JSONB(), nullable=False),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("council", sa.Text()),
        sa.Column("resident_ids", postgresql.JSONB(), nullable=False),
        sa.Column("case_ids", postgresql.JSONB(), nullable=False),
        sa.Column("data_categories", postgresql.JSONB(), nullable=False),
    )
    op.create_index("ix_audit_log_council_at", AUDIT_TABLE, ["council", "at"])
    op.create_index("ix_audit_log_subject_at", AUDIT_TABLE, ["subject", "at"])
    op.create_index(
        "ix_audit_log_resident_ids", AUDIT_TABLE, ["resident_ids"], postgresql_using="gin"
    )
    op.execute(
        """
        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the audit trail is append-only';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
    )


def drop_audit_table_v1() -> None:
    from alembic import op

    op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
    op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_table(AUDIT_TABLE)
