"""Erasure in the referrals service (``service_layer/erasure.py``): the facts that decide
whether it applies, deleting everything about a resident's records and cases in one
transaction, and the erasure requests with their confirmations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters import Row
from services.referrals.adapters.tables import (
    case_merges,
    case_needs,
    cases,
    consents,
    erasure_confirmations,
    erasure_requests,
    idempotency_keys,
    notes,
    offers,
    possible_duplicates,
    referrals,
    residents,
    routing_holds,
    subject_access_contributions,
    subject_access_requests,
    timeline,
)
from shared.db import fetch_all, fetch_one, oldest_first_deletion, rows_affected
from shared.messaging.tables import outbox


async def case_facts(session: AsyncSession, case_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Each case's status, needs, urgency and risk level, with its offers' statuses: the
    cases and offers locked (by id) until the transaction ends, so no change to them (a
    safeguarding concern raised, an offer accepted) slips between the refusal's check and
    the erasure."""
    rows = await fetch_all(
        session,
        select(cases.c.id, cases.c.status, cases.c.needs, cases.c.urgency, cases.c.risk_level)
        .where(cases.c.id.in_(case_ids))
        .order_by(cases.c.id)
        .with_for_update(),
    )
    statuses = await fetch_all(
        session,
        select(offers.c.case_id, offers.c.status)
        .where(offers.c.case_id.in_(case_ids))
        .order_by(offers.c.id)
        .with_for_update(),
    )
    by_case: dict[str, list[str]] = {}
    for offer in statuses:
        by_case.setdefault(str(offer["case_id"]), []).append(offer["status"])
    return [{**row, "offer_statuses": by_case.get(str(row["id"]), [])} for row in rows]


async def offer_ids(session: AsyncSession, case_ids: Sequence[str]) -> list[str]:
    rows = await fetch_all(session, select(offers.c.id).where(offers.c.case_id.in_(case_ids)))
    return [str(r["id"]) for r in rows]


async def subject_access_request_ids(
    session: AsyncSession, resident_ids: Sequence[str]
) -> list[str]:
    rows = await fetch_all(
        session,
        select(subject_access_requests.c.id).where(
            subject_access_requests.c.resident_id.in_(resident_ids)
        ),
    )
    return [str(r["id"]) for r in rows]


async def referral_ids(session: AsyncSession, resident_ids: Sequence[str]) -> list[str]:
    rows = await fetch_all(
        session, select(referrals.c.id).where(referrals.c.resident_id.in_(resident_ids))
    )
    return [str(r["id"]) for r in rows]


async def erase(
    session: AsyncSession, resident_ids: Sequence[str], case_ids: Sequence[str]
) -> dict[str, int]:
    """Delete every record about these residents and their cases, children first; how many
    of each kind."""
    erased: dict[str, int] = {}

    async def gone(kind: str, statement: Any) -> None:
        erased[kind] = erased.get(kind, 0) + await rows_affected(session, statement)

    duplicates = select(possible_duplicates.c.id).where(
        or_(
            possible_duplicates.c.resident_id.in_(resident_ids),
            possible_duplicates.c.candidate_id.in_(resident_ids),
        )
    )
    await gone(
        "routing_holds",
        delete(routing_holds).where(
            or_(
                routing_holds.c.case_id.in_(case_ids),
                routing_holds.c.other_case_id.in_(case_ids),
                routing_holds.c.duplicate_id.in_(duplicates),
            )
        ),
    )
    requests = select(subject_access_requests.c.id).where(
        subject_access_requests.c.resident_id.in_(resident_ids)
    )
    await gone(
        "subject_access_contributions",
        delete(subject_access_contributions).where(
            subject_access_contributions.c.request_id.in_(requests)
        ),
    )
    await gone(
        "subject_access_requests",
        delete(subject_access_requests).where(
            subject_access_requests.c.resident_id.in_(resident_ids)
        ),
    )
    for kind, table in (
        ("needs", case_needs),
        ("offers", offers),
        ("consents", consents),
        ("notes", notes),
        ("timeline", timeline),
    ):
        await gone(kind, delete(table).where(table.c.case_id.in_(case_ids)))
    await gone(
        "referrals",
        delete(referrals).where(
            or_(referrals.c.resident_id.in_(resident_ids), referrals.c.case_id.in_(case_ids))
        ),
    )
    await gone(
        "merges",
        delete(case_merges).where(
            or_(
                case_merges.c.merged_resident_id.in_(resident_ids),
                case_merges.c.into_resident_id.in_(resident_ids),
                case_merges.c.merged_case_id.in_(case_ids),
                case_merges.c.survivor_case_id.in_(case_ids),
            )
        ),
    )
    await gone(
        "possible_duplicates",
        delete(possible_duplicates).where(possible_duplicates.c.id.in_(duplicates)),
    )
    await session.execute(
        update(cases).where(cases.c.merged_into_case.in_(case_ids)).values(merged_into_case=None)
    )
    await gone("cases", delete(cases).where(cases.c.id.in_(case_ids)))
    await session.execute(
        update(residents).where(residents.c.merged_into.in_(resident_ids)).values(merged_into=None)
    )
    await gone("residents", delete(residents).where(residents.c.id.in_(resident_ids)))
    return erased


async def delete_idempotent_responses_naming(
    session: AsyncSession, identifiers: Iterable[str]
) -> int:
    """Stored responses to retried requests (a referral's answer names its case)."""
    patterns = [f"%{i}%" for i in identifiers]
    if not patterns:
        return 0
    text_of = cast(idempotency_keys.c.response, Text)
    return await rows_affected(
        session, delete(idempotency_keys).where(or_(*(text_of.like(p) for p in patterns)))
    )


# -- requests and confirmations -------------------------------------------------------------


async def insert_request(session: AsyncSession, **values: Any) -> None:
    await session.execute(insert(erasure_requests).values(**values))


async def request(
    session: AsyncSession, request_id: str, councils: Iterable[str] | None, *, lock: bool = False
) -> Row | None:
    """The request, if of one of ``councils`` (None: any); ``lock``: its row locked, so
    confirmations arriving together are counted one after another and the last completes it."""
    statement = select(erasure_requests).where(erasure_requests.c.id == request_id)
    if councils is not None:
        statement = statement.where(erasure_requests.c.council.in_(list(councils)))
    return await fetch_one(session, statement.with_for_update() if lock else statement)


async def add_confirmation(
    session: AsyncSession,
    *,
    request_id: str,
    service: str,
    confirmed_at: datetime,
    erased: dict[str, int],
) -> bool:
    statement = (
        pg_insert(erasure_confirmations)
        .values(request_id=request_id, service=service, confirmed_at=confirmed_at, erased=erased)
        .on_conflict_do_nothing(index_elements=["request_id", "service"])
    )
    return await rows_affected(session, statement) == 1


async def confirmations(session: AsyncSession, request_id: str) -> Sequence[Row]:
    return await fetch_all(
        session,
        select(erasure_confirmations)
        .where(erasure_confirmations.c.request_id == request_id)
        .order_by(erasure_confirmations.c.confirmed_at),
    )


async def mark_complete(session: AsyncSession, request_id: str, at: datetime) -> None:
    await session.execute(
        update(erasure_requests)
        .where(erasure_requests.c.id == request_id, erasure_requests.c.completed_at.is_(None))
        .values(completed_at=at)
    )


async def delete_request_events(session: AsyncSession, request_id: str, event_type: str) -> int:
    """The request's own event, once every service has confirmed it: it names the case ids
    and keys, and must not be replayed from the outbox after its work is done."""
    return await rows_affected(
        session,
        delete(outbox).where(outbox.c.message_key == request_id, outbox.c.event_type == event_type),
    )


# -- retention ------------------------------------------------------------------------------

# Started from the cases ended before the cutoff (``ix_cases_ended_at``): each names its
# resident, or the survivor its record was merged into; then every case of that resident
# and of her merged records must have ended before it. Not from every resident: the sweep
# runs every hour over years of residents, and nearly none is due.
_DUE = """
    SELECT r.id, r.council FROM residents r
    WHERE r.merged_into IS NULL
      AND r.id IN (
        SELECT COALESCE(m.merged_into, m.id) FROM cases c JOIN residents m ON m.id = c.resident_id
        WHERE c.status IN ('closed', 'withdrawn')
          AND COALESCE(c.closed_at, c.withdrawn_at, c.updated_at) < :cutoff)
      AND NOT EXISTS (
        SELECT 1 FROM cases c JOIN residents m ON m.id = c.resident_id
        WHERE (m.id = r.id OR m.merged_into = r.id)
          AND (c.status NOT IN ('closed', 'withdrawn')
               OR COALESCE(c.closed_at, c.withdrawn_at, c.updated_at) >= :cutoff))
      AND NOT EXISTS (
        SELECT 1 FROM subject_access_requests s
        WHERE s.resident_id = r.id AND s.completed_at IS NULL)
"""
_RESIDENTS_DUE = text(_DUE + " ORDER BY r.id LIMIT :batch")
_CLAIM_DUE = text(_DUE + " AND r.id = CAST(:id AS uuid) FOR UPDATE OF r SKIP LOCKED")


async def residents_due(session: AsyncSession, cutoff: datetime, batch: int) -> list[Row]:
    """Residents (not merged away) whose every case, and every case of the records merged
    into them, ended before ``cutoff``, with no subject access request in progress."""
    return list(await fetch_all(session, _RESIDENTS_DUE.bindparams(cutoff=cutoff, batch=batch)))


async def claim_resident_due(
    session: AsyncSession, resident_id: str, cutoff: datetime
) -> Row | None:
    """The resident, locked until the transaction ends, if still due (``residents_due``)
    and not locked by another transaction (another worker's sweep, a merge): None
    otherwise, at once (SKIP LOCKED), so two sweeps never erase the same resident."""
    return await fetch_one(session, _CLAIM_DUE.bindparams(cutoff=cutoff, id=resident_id))


async def delete_subject_access_before(session: AsyncSession, cutoff: datetime, batch: int) -> int:
    """Subject access requests (and their exports) completed, or made if never completed,
    before ``cutoff``: at most ``batch``."""
    due = (
        select(subject_access_requests.c.id)
        .where(
            func.coalesce(
                subject_access_requests.c.completed_at, subject_access_requests.c.requested_at
            )
            < cutoff
        )
        .order_by(subject_access_requests.c.id)
        .limit(batch)
    )
    ids = [str(r["id"]) for r in await fetch_all(session, due)]
    if not ids:
        return 0
    await session.execute(
        delete(subject_access_contributions).where(
            subject_access_contributions.c.request_id.in_(ids)
        )
    )
    return await rows_affected(
        session, delete(subject_access_requests).where(subject_access_requests.c.id.in_(ids))
    )


_OLD_ANSWERS = oldest_first_deletion(idempotency_keys, "created_at")


async def delete_idempotent_responses_before(
    session: AsyncSession, cutoff: datetime, batch: int
) -> int:
    """Stored answers to Idempotency-Keys written before ``cutoff``, oldest first: at most
    ``batch``."""
    return await rows_affected(session, _OLD_ANSWERS, {"before": cutoff, "limit": batch})
