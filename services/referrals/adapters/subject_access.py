"""Subject access requests, their contributions, and what the referrals service holds about
a resident (``service_layer/subject_access.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Table,
    Text,
    Uuid,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters import Row
from services.referrals.adapters.tables import (
    audit_log,
    case_merges,
    case_needs,
    cases,
    consents,
    metadata,
    notes,
    offers,
    possible_duplicates,
    referrals,
    residents,
    subject_access_contributions,
    subject_access_requests,
    timeline,
)
from shared.db import fetch_all, fetch_one, rows_affected
from shared.events.payloads import AccessRead
from shared.subject_access import reads_about

# A request's deadline extended by two further months (Article 12(3)): at most once (the
# primary key), with why, when the resident was told, and who extended it; deleted with its
# request (an erasure, the retention sweep). Revision 0013.
subject_access_extensions = Table(
    "subject_access_extensions",
    metadata,
    Column(
        "request_id",
        Uuid(as_uuid=False),
        ForeignKey("subject_access_requests.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("due_by", Date, nullable=False),  # the extended deadline
    Column("reason", Text, nullable=False),
    Column("resident_told_on", Date, nullable=False),
    Column("extended_by", Text, nullable=False),
    Column("extended_by_org", Text, nullable=False),
    Column("extended_at", DateTime(timezone=True), nullable=False),
)
_extension = subject_access_extensions.c


async def resident_in(
    session: AsyncSession, resident_id: str, councils: Iterable[str] | None
) -> Row | None:
    """The resident, if in one of ``councils`` (None: any council)."""
    statement = select(residents.c.id, residents.c.council).where(residents.c.id == resident_id)
    if councils is not None:
        statement = statement.where(residents.c.council.in_(list(councils)))
    return await fetch_one(session, statement)


async def surviving_record(session: AsyncSession, resident_id: str) -> str:
    """The record a resident id now lives on: itself, or (a record merged away) the one it
    was merged into, followed to the end (a survivor may itself have been merged since)."""
    seen = [resident_id]
    while True:
        into = await session.scalar(
            select(residents.c.merged_into).where(residents.c.id == seen[-1])
        )
        if into is None or str(into) in seen:
            return seen[-1]
        seen.append(str(into))


async def merged_into(session: AsyncSession, resident_id: str) -> list[str]:
    """The records merged into this resident (the same person, recorded twice), and those
    merged into them before, to any depth."""
    found: list[str] = []
    frontier = [resident_id]
    while frontier:
        rows = await fetch_all(
            session, select(residents.c.id).where(residents.c.merged_into.in_(frontier))
        )
        frontier = [str(r["id"]) for r in rows if str(r["id"]) not in (resident_id, *found)]
        found.extend(frontier)
    return found


async def case_ids_of(session: AsyncSession, resident_ids: Sequence[str]) -> list[str]:
    rows = await fetch_all(
        session,
        select(cases.c.id).where(cases.c.resident_id.in_(resident_ids)).order_by(cases.c.id),
    )
    return [str(row["id"]) for row in rows]


async def _rows(session: AsyncSession, table: Table, *where: Any) -> Sequence[Row]:
    order = [table.c[name] for name in ("created_at", "at", "id") if name in table.c][:1]
    return await fetch_all(session, select(table).where(*where).order_by(*order))


async def held(
    session: AsyncSession, resident_ids: Sequence[str], case_ids: Sequence[str]
) -> dict[str, Sequence[Row]]:
    """Every record the service holds about these residents and their cases, by kind."""
    return {
        "residents": await _rows(session, residents, residents.c.id.in_(resident_ids)),
        "cases": await _rows(session, cases, cases.c.id.in_(case_ids)),
        "referrals": await _rows(
            session,
            referrals,
            or_(referrals.c.resident_id.in_(resident_ids), referrals.c.case_id.in_(case_ids)),
        ),
        "consents": await _rows(session, consents, consents.c.case_id.in_(case_ids)),
        "needs": await _rows(session, case_needs, case_needs.c.case_id.in_(case_ids)),
        "offers": await _rows(session, offers, offers.c.case_id.in_(case_ids)),
        "notes": await _rows(session, notes, notes.c.case_id.in_(case_ids)),
        "timeline": await _rows(session, timeline, timeline.c.case_id.in_(case_ids)),
        "possible_duplicates": await _rows(
            session,
            possible_duplicates,
            or_(
                possible_duplicates.c.resident_id.in_(resident_ids),
                possible_duplicates.c.candidate_id.in_(resident_ids),
            ),
        ),
        "merges": await _rows(
            session,
            case_merges,
            or_(
                case_merges.c.merged_resident_id.in_(resident_ids),
                case_merges.c.into_resident_id.in_(resident_ids),
            ),
        ),
    }


async def reads(
    session: AsyncSession, resident_ids: Sequence[str], case_ids: Sequence[str]
) -> list[AccessRead]:
    return await reads_about(session, audit_log, resident_ids=resident_ids, case_ids=case_ids)


# -- requests and contributions -------------------------------------------------------------


async def insert_request(
    session: AsyncSession,
    *,
    id: str,
    council: str,
    resident_id: str,
    requested_by: str,
    requested_by_org: str,
    requested_at: datetime,
    due_by: date,
) -> None:
    await session.execute(
        insert(subject_access_requests).values(
            id=id,
            council=council,
            resident_id=resident_id,
            requested_by=requested_by,
            requested_by_org=requested_by_org,
            requested_at=requested_at,
            due_by=due_by,
        )
    )


async def request(
    session: AsyncSession, request_id: str, councils: Iterable[str] | None
) -> Row | None:
    """The request, if of one of ``councils`` (None: any council), with its extension's
    fields (``extended_due_by``, ``extension_reason``, …; None if not extended)."""
    statement = (
        select(
            subject_access_requests,
            _extension.due_by.label("extended_due_by"),
            _extension.reason.label("extension_reason"),
            _extension.resident_told_on,
            _extension.extended_by,
            _extension.extended_by_org,
            _extension.extended_at,
        )
        .select_from(subject_access_requests.outerjoin(subject_access_extensions))
        .where(subject_access_requests.c.id == request_id)
    )
    if councils is not None:
        statement = statement.where(subject_access_requests.c.council.in_(list(councils)))
    return await fetch_one(session, statement)


async def add_contribution(
    session: AsyncSession,
    *,
    request_id: str,
    service: str,
    contributed_at: datetime,
    sections: dict[str, Any],
    reads: list[dict[str, Any]],
    part: int = 1,
    parts: int = 1,
) -> bool:
    """Store a part of a service's contribution; False if it was stored already (a replay)."""
    statement = (
        pg_insert(subject_access_contributions)
        .values(
            request_id=request_id,
            service=service,
            part=part,
            parts=parts,
            contributed_at=contributed_at,
            sections=sections,
            reads=reads,
        )
        .on_conflict_do_nothing(index_elements=["request_id", "service", "part"])
    )
    return await rows_affected(session, statement) == 1


async def contributions(session: AsyncSession, request_id: str) -> Sequence[Row]:
    return await fetch_all(
        session,
        select(subject_access_contributions)
        .where(subject_access_contributions.c.request_id == request_id)
        .order_by(subject_access_contributions.c.service, subject_access_contributions.c.part),
    )


async def lock(session: AsyncSession, request_id: str) -> bool:
    """Lock the request's row (False: no such request), so answers from services arriving
    together are counted one after another: each sees the others' and the last completes it."""
    found = await fetch_one(
        session,
        select(subject_access_requests.c.id)
        .where(subject_access_requests.c.id == request_id)
        .with_for_update(),
    )
    return found is not None


async def mark_complete(session: AsyncSession, request_id: str, at: datetime) -> None:
    await session.execute(
        update(subject_access_requests)
        .where(
            subject_access_requests.c.id == request_id,
            subject_access_requests.c.completed_at.is_(None),
        )
        .values(completed_at=at)
    )


async def lock_request(session: AsyncSession, request_id: str) -> None:
    """Hold the request (``FOR UPDATE``) until the transaction ends: an extension decided on
    its state and an answer completing it take turns."""
    await session.execute(
        select(subject_access_requests.c.id)
        .where(subject_access_requests.c.id == request_id)
        .with_for_update()
    )


async def add_extension(
    session: AsyncSession,
    *,
    request_id: str,
    due_by: date,
    reason: str,
    resident_told_on: date,
    extended_by: str,
    extended_by_org: str,
    extended_at: datetime,
) -> bool:
    """Record the extension; False if the request has one already (once only)."""
    statement = (
        pg_insert(subject_access_extensions)
        .values(
            request_id=request_id,
            due_by=due_by,
            reason=reason,
            resident_told_on=resident_told_on,
            extended_by=extended_by,
            extended_by_org=extended_by_org,
            extended_at=extended_at,
        )
        .on_conflict_do_nothing(index_elements=["request_id"])
    )
    return await rows_affected(session, statement) == 1
