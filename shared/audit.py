"""An append-only audit trail of every read of personal data, shared by the services.

Each service includes ``audit_table(metadata)`` in its tables and creates it with
``create_audit_table_v1()`` in a revision of its own; a read use case calls
``record_reads`` (a row per council the read showed, from ``reads``) inside the
transaction that reads, so the row and the answer commit together (a read whose
audit row cannot be written fails: it never goes unrecorded). A trigger refuses UPDATE and
DELETE on the table: rows are only ever added (retention, when it comes, is a migration-owned
sweep, not an application UPDATE). One INSERT per read, of a few short columns.

Every operation of every service declares in its OpenAPI document which categories of
personal data it answers with (``openapi_extra=personal_data(...)``: the ``x-personal-data``
extension; an empty list: none). ``tests/integration/test_audit_of_reads.py`` walks the three
documents: an operation without the declaration fails it, and so does one declared personal
whose call writes no audit row.

The trail is read per resident, per case, per user or per organisation (``TrailQuery``),
within the caller's council (an operator: every council), and exported as CSV or JSON
(``entries_csv``; the HTTP part is ``shared/audit_api.py``).

Frozen like the messaging migrations: a later change to the table gets ``…_v2``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
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

from shared.auth import OrganisationKind, Principal
from shared.db import fetch_all
from shared.errors import Invalid

AUDIT_TABLE = "audit_log"


class Category(StrEnum):
    """The categories of personal data a read can show (docs/information-governance.md)."""

    IDENTITY = "identity"  # names, date of birth, age
    CONTACT = "contact"  # phone, email, address, language, accessibility needs
    NEEDS = "needs"  # needs and circumstances (health needs are special category)
    FREE_TEXT = "free_text"  # the referrer's words, caseworkers' and partners' notes
    CONSENT = "consent"
    RISK = "risk_assessment"  # a level, its score, the reasons, the suggested needs
    PROGRESS = "case_progress"  # statuses, offers, timeline, outcomes
    MATCHING = "matching_evidence"  # why two records may be one person
    ACCESS_LOG = "access_log"  # the audit trail itself


PERSONAL_DATA = "x-personal-data"  # the OpenAPI extension every operation carries


def personal_data(*categories: Category) -> dict[str, Any]:
    """An operation's declaration, for ``openapi_extra``: the categories of personal data it
    answers with; none (``personal_data()``) for an operation that answers with none. A
    route declaring any must write an audit row on every call that shows them."""
    return {PERSONAL_DATA: [c.value for c in categories]}


def councils_of(principal: Principal) -> list[str] | None:
    """The councils whose trail the caller reads: its own; None (every one) for an operator."""
    return None if principal.kind is OrganisationKind.OPERATOR else [principal.organisation]


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
        # erasure (audit_log_erase) and subject access find rows by case too (revisions:
        # referrals 0013, partners 0011, risk 0009)
        Index("ix_audit_log_case_ids", "case_ids", postgresql_using="gin"),
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


@dataclass(frozen=True)
class Seen:
    """One resident (and case) a read showed, in its council. A service that holds no
    resident id of the referrals service (partners) names the case only; risk names its
    pseudonymous profile."""

    council: str | None
    resident_id: str | None = None
    case_id: str | None = None


def reads(
    operation: str,
    categories: Iterable[Category | str],
    seen: Iterable[Seen],
    *,
    purpose: str,
    own_council: str | None,
) -> list[Read]:
    """What a read showed, as audit rows: one per council whose residents it showed (so
    each council's IG team sees its own), one (in ``own_council``) when it showed none."""
    by_council: dict[str | None, list[Seen]] = {}
    for item in seen:
        by_council.setdefault(item.council, []).append(item)
    if not by_council:
        by_council[own_council] = []
    return [
        Read(
            operation=operation,
            purpose=purpose,
            data_categories=tuple(str(c) for c in categories),
            resident_ids=tuple(i.resident_id for i in items if i.resident_id),
            case_ids=tuple(i.case_id for i in items if i.case_id),
            council=council,
        )
        for council, items in by_council.items()
    ]


def reader_council(principal: Principal) -> str | None:
    """The council a read with no resident in it is filed under: the caller's own, if a
    council."""
    return principal.organisation if principal.kind is OrganisationKind.COUNCIL else None


@dataclass(frozen=True)
class TrailQuery:
    """Which rows of the trail: about a resident or a case, by a user or by an
    organisation, between two times; newest first, at most ``limit``."""

    resident_id: str | None = None
    case_id: str | None = None
    subject: str | None = None
    organisation: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100

    def narrowed(self) -> TrailQuery:
        """Itself, if it names a resident, a case, a user or an organisation; refused
        otherwise (reading the whole trail is an export, not a search)."""
        if not (self.resident_id or self.case_id or self.subject or self.organisation):
            raise Invalid("resident", "give a resident, a case, a subject or an organisation")
        return self


async def record_reads(
    session: AsyncSession,
    table: Table,
    principal: Principal,
    batch: Iterable[Read],
    *,
    at: datetime,
) -> None:
    """Each of ``batch`` as a row, in the caller's transaction (one INSERT of many rows)."""
    values = [_values(principal, read, at) for read in batch]
    if values:
        await session.execute(insert(table), values)


def _values(principal: Principal, read: Read, at: datetime) -> dict[str, Any]:
    return {
        "at": at,
        "subject": principal.subject,
        "organisation": principal.organisation,
        "organisation_kind": principal.kind.value,
        "roles": sorted(r.value for r in principal.roles),
        "operation": read.operation,
        "purpose": read.purpose,
        "council": read.council,
        "resident_ids": list(dict.fromkeys(read.resident_ids)),
        "case_ids": list(dict.fromkeys(read.case_ids)),
        "data_categories": list(read.data_categories),
    }


async def trail(
    session: AsyncSession,
    table: Table,
    *,
    councils: Iterable[str] | None,
    query: TrailQuery,
) -> Sequence[Any]:
    """The newest audit rows as ``query`` says, within ``councils`` (None: every council,
    for operators)."""
    statement = select(table).order_by(table.c.id.desc()).limit(query.limit)
    if councils is not None:
        statement = statement.where(table.c.council.in_(list(councils)))
    if query.resident_id is not None:
        statement = statement.where(table.c.resident_ids.contains([query.resident_id]))
    if query.case_id is not None:
        statement = statement.where(table.c.case_ids.contains([query.case_id]))
    if query.subject is not None:
        statement = statement.where(table.c.subject == query.subject)
    if query.organisation is not None:
        statement = statement.where(table.c.organisation == query.organisation)
    if query.since is not None:
        statement = statement.where(table.c.at >= query.since)
    if query.until is not None:
        statement = statement.where(table.c.at < query.until)
    return await fetch_all(session, statement)


INFORMATION_GOVERNANCE = "information governance"  # the purpose of reading the trail itself


async def record_read(
    session: AsyncSession,
    table: Table,
    principal: Principal,
    operation: str,
    categories: Iterable[Category | str],
    seen: Iterable[Seen],
    *,
    purpose: str,
    at: datetime,
) -> None:
    """Record a read in the caller's transaction: a row per council whose residents it
    showed (each council's IG team sees its own), one when it showed none."""
    batch = reads(
        operation, categories, seen, purpose=purpose, own_council=reader_council(principal)
    )
    await record_reads(session, table, principal, batch, at=at)


async def read_trail(
    session: AsyncSession,
    table: Table,
    principal: Principal,
    query: TrailQuery,
    operation: str,
    *,
    at: datetime,
) -> list[AuditEntry]:
    """The trail as ``query`` says, within the caller's councils; the reading of it is
    itself a read, recorded against the resident or case it names."""
    rows = await trail(session, table, councils=councils_of(principal), query=query)
    named = query.resident_id or query.case_id
    seen = [Seen(reader_council(principal), query.resident_id, query.case_id)] if named else []
    await record_read(
        session,
        table,
        principal,
        operation,
        [Category.ACCESS_LOG],
        seen,
        purpose=INFORMATION_GOVERNANCE,
        at=at,
    )
    return [AuditEntry.of(row) for row in rows]


@dataclass(frozen=True)
class AuditEntry:
    """One row of the trail, as the IG team reads it."""

    at: datetime
    subject: str
    organisation: str
    organisation_kind: str
    roles: list[str]
    operation: str
    purpose: str
    council: str | None
    resident_ids: list[str]
    case_ids: list[str]
    data_categories: list[str]

    @classmethod
    def of(cls, row: Any) -> AuditEntry:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


CSV_COLUMNS = tuple(f.name for f in fields(AuditEntry))


def entries_csv(entries: Iterable[AuditEntry]) -> str:
    """The entries as CSV with a header row; lists joined by ``;``, times in ISO 8601.
    A cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) is
    quoted with a leading apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow([_cell(getattr(entry, name)) for name in CSV_COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        value = ";".join(str(v) for v in value)
    text = str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


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
