"""Queries over cases and what hangs off them: consent, timeline, notes, mirrored offers."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, false, func, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters import Row
from services.referrals.adapters.holds import case_is_held
from services.referrals.adapters.needs import (
    has_need_in,
    has_overdue_offer,
    need_statuses,
    overdue_count,
)
from services.referrals.adapters.scope import cases_visible_to
from services.referrals.adapters.tables import (
    cases,
    consents,
    notes,
    offers,
    referrals,
    residents,
    timeline,
)
from services.referrals.domain.actors import Actor
from services.referrals.domain.lifecycle import OPEN_STATUSES
from shared.auth import Principal
from shared.db import bound, bound_columns, fetch_all, fetch_one, update_returning

# -- cases -------------------------------------------------------------------------------

# The statements every referral runs, built once: building and keying a statement for each
# referral cost more CPU than the database's work on it. Each value is bound.
_LOCK_OPEN_CASE_OF = (
    select(cases)
    .where(
        cases.c.resident_id == bindparam("resident_id"),
        cases.c.council == bindparam("council"),
        cases.c.status.in_([s.value for s in OPEN_STATUSES]),
    )
    .with_for_update()
)
_INSERT_CASE = cases.insert().returning(cases)
_ADD_TIMELINE = timeline.insert()
_CURRENT_CONSENT = (
    select(consents)
    .where(consents.c.case_id == bindparam("case_id"))
    .order_by(consents.c.created_at.desc(), consents.c.given_at.desc())
    .limit(1)
)
_INSERT_CONSENT = consents.insert()


async def lock_case(session: AsyncSession, case_id: str) -> Row | None:
    return await fetch_one(session, select(cases).where(cases.c.id == case_id).with_for_update())


async def case(session: AsyncSession, case_id: str) -> Row | None:
    return await fetch_one(session, select(cases).where(cases.c.id == case_id))


async def visible_case(
    session: AsyncSession, principal: Principal, case_id: str, *, lock: bool = False
) -> Row | None:
    """The case if the principal may see it (tenancy in the query), locked if asked."""
    found = await fetch_one(
        session, select(cases.c.id).where(cases.c.id == case_id, cases_visible_to(principal))
    )
    if found is None:
        return None
    return await (lock_case if lock else case)(session, found["id"])


async def lock_open_case_of(session: AsyncSession, resident_id: str, council: str) -> Row | None:
    """The resident's one open case in the council, locked; None if there is none. One
    statement: a case closed while we waited for its lock is no longer open when PostgreSQL
    checks the condition again on the row as it now stands (a new case is opened instead)."""
    return await fetch_one(
        session, _LOCK_OPEN_CASE_OF, {"resident_id": resident_id, "council": council}
    )


async def open_case_of(session: AsyncSession, resident_id: str, council: str) -> Row | None:
    """The resident's one open case in the council (not locked); None if there is none."""
    return await fetch_one(
        session,
        select(cases).where(
            cases.c.resident_id == resident_id,
            cases.c.council == council,
            cases.c.status.in_([s.value for s in OPEN_STATUSES]),
        ),
    )


async def insert_case(session: AsyncSession, **values: Any) -> Row:
    inserted = await fetch_one(session, _INSERT_CASE, values)
    assert inserted is not None  # INSERT … RETURNING returns the row
    return inserted


async def update_case(session: AsyncSession, case_id: str, **values: Any) -> Row:
    updated = await update_returning(session, cases, {"id": case_id}, values)
    if updated is None:
        raise LookupError(f"case {case_id} is missing")
    return updated


_HELD = case_is_held()
_QUEUE = select(
    cases,
    residents.c.given_name,
    residents.c.family_name,
    _HELD.label("held"),
    need_statuses().label("need_statuses"),
    overdue_count().label("overdue_offers"),
).join(residents, residents.c.id == cases.c.resident_id)


async def queue(
    session: AsyncSession,
    principal: Principal,
    *,
    statuses: Sequence[str] = (),
    risk_levels: Sequence[str] = (),
    need: str | None = None,
    need_statuses: Sequence[str] = (),
    overdue: bool | None = None,
    council: str | None = None,
    assigned_to: str | None = None,
    origin: str | None = None,
    opened_from: datetime | None = None,
    opened_before: datetime | None = None,
    after: tuple[bool, int, datetime, str] | None = None,
    limit: int,
) -> Sequence[Row]:
    """Visible cases with their resident's name: those with a need held for a possible
    duplicate first, then most urgent, then oldest; keyset paged from ``after`` (held,
    priority, opened, id)."""
    query = _QUEUE.where(cases_visible_to(principal))
    if statuses:
        query = query.where(cases.c.status.in_(statuses))
    if risk_levels:
        query = query.where(cases.c.risk_level.in_(risk_levels))
    if need:
        query = query.where(cases.c.needs.contains([need]))
    if need_statuses:
        query = query.where(has_need_in(need_statuses))
    if overdue is not None:
        query = query.where(has_overdue_offer() if overdue else ~has_overdue_offer())
    if council:
        query = query.where(cases.c.council == council)
    if assigned_to:
        query = query.where(cases.c.assigned_to == assigned_to)
    if origin:
        query = query.where(cases.c.origin == origin)
    if opened_from:
        query = query.where(cases.c.created_at >= opened_from)
    if opened_before:
        query = query.where(cases.c.created_at < opened_before)
    if after:
        held, priority, created, case_id = after
        same_rank = and_(_HELD if held else ~_HELD)
        query = query.where(
            or_(
                and_(~_HELD) if held else false(),
                and_(same_rank, cases.c.priority < priority),
                and_(same_rank, cases.c.priority == priority, cases.c.created_at > created),
                and_(
                    same_rank,
                    cases.c.priority == priority,
                    cases.c.created_at == created,
                    cases.c.id > case_id,
                ),
            )
        )
    return await fetch_all(
        session,
        query.order_by(_HELD.desc(), cases.c.priority.desc(), cases.c.created_at, cases.c.id).limit(
            limit
        ),
    )


async def overdue_counts(
    session: AsyncSession, principal: Principal, *, council: str | None = None
) -> Sequence[Row]:
    """Per council the principal may see: how many offers are overdue, on how many cases."""
    overdue = overdue_count()
    per_case = (
        select(cases.c.council, overdue.label("offers"))
        .where(cases_visible_to(principal), has_overdue_offer())
        .where(cases.c.council == council if council else true())
        .subquery()
    )
    return await fetch_all(
        session,
        select(
            per_case.c.council,
            func.sum(per_case.c.offers).label("offers"),
            func.count().label("cases"),
        )
        .group_by(per_case.c.council)
        .order_by(per_case.c.council),
    )


# -- timeline and notes ------------------------------------------------------------------


async def add_timeline(
    session: AsyncSession,
    case_id: str,
    actor: Actor,
    action: str,
    *,
    now: datetime,
    detail: str | None = None,
    status_from: str | None = None,
    status_to: str | None = None,
    referrer_visible: bool = False,
) -> None:
    await session.execute(
        _ADD_TIMELINE,
        {
            "case_id": case_id,
            "at": now,
            "actor": actor.subject,
            "actor_org": actor.organisation,
            "action": action,
            "detail": detail,
            "status_from": status_from,
            "status_to": status_to,
            "referrer_visible": referrer_visible,
        },
    )


async def timeline_of(session: AsyncSession, case_id: str) -> Sequence[Row]:
    return await fetch_all(
        session,
        select(
            timeline.c.at,
            timeline.c.actor,
            timeline.c.actor_org,
            timeline.c.action,
            timeline.c.detail,
            timeline.c.status_from,
            timeline.c.status_to,
        )
        .where(timeline.c.case_id == case_id)
        .order_by(timeline.c.id),
    )


async def insert_note(
    session: AsyncSession, *, id: str, case_id: str, author: Actor, text: str
) -> None:
    await session.execute(
        notes.insert().values(
            id=id, case_id=case_id, author=author.subject, author_org=author.organisation, text=text
        )
    )


async def notes_of(session: AsyncSession, case_id: str) -> Sequence[Row]:
    return await fetch_all(
        session,
        select(notes.c.author, notes.c.author_org, notes.c.text, notes.c.created_at)
        .where(notes.c.case_id == case_id)
        .order_by(notes.c.created_at),
    )


async def referrals_of(session: AsyncSession, case_id: str) -> Sequence[Row]:
    return await fetch_all(
        session,
        select(
            referrals.c.id,
            referrals.c.referrer_org,
            referrals.c.referrer_kind,
            referrals.c.needs,
            referrals.c.circumstances,
            referrals.c.circumstances_text,
            referrals.c.urgency,
            referrals.c.created_at,
        )
        .where(referrals.c.case_id == case_id)
        .order_by(referrals.c.created_at),
    )


# -- consent -----------------------------------------------------------------------------


async def current_consent(session: AsyncSession, case_id: str) -> Row | None:
    """The consent recorded last: it governs the case (withdrawn or not)."""
    return await fetch_one(session, _CURRENT_CONSENT, {"case_id": case_id})


async def insert_consent(session: AsyncSession, **values: Any) -> None:
    await session.execute(_INSERT_CONSENT, values)


async def mark_consent_withdrawn(
    session: AsyncSession, consent_id: str, *, by: str, now: datetime
) -> None:
    await session.execute(
        update(consents)
        .where(consents.c.id == consent_id)
        .values(withdrawn_at=now, withdrawn_by=by)
    )


async def lock_expired_consents(session: AsyncSession, now: datetime, limit: int) -> Sequence[Row]:
    """Consents past their expiry and not withdrawn, locked (other workers skip them)."""
    return await fetch_all(
        session,
        select(consents)
        .where(consents.c.expires_at <= now, consents.c.withdrawn_at.is_(None))
        .order_by(consents.c.expires_at)  # soonest first: read from ix_consents_expiring
        .limit(limit)
        .with_for_update(skip_locked=True),
    )


# -- offers, as partners report them ----------------------------------------------------


async def upsert_offer(session: AsyncSession, offer_id: str, values: dict[str, Any]) -> None:
    """Insert the offer or bring it up to date; its case and need never change."""
    await session.execute(_upsert_offer(tuple(values)), bound({"id": offer_id, **values}))


@functools.cache
def _upsert_offer(names: tuple[str, ...]) -> Any:
    """Built once for each set of columns, its values bound (each event built it anew)."""
    inserted = pg_insert(offers).values(bound_columns(offers, ("id", *names)))
    return inserted.on_conflict_do_update(
        index_elements=[offers.c.id],
        set_={k: inserted.excluded[k] for k in names if k not in ("case_id", "need")},
    )


async def offers_of(session: AsyncSession, case_id: str) -> Sequence[Row]:
    return await fetch_all(
        session, select(offers).where(offers.c.case_id == case_id).order_by(offers.c.updated_at)
    )
