"""Route requests (one per need of a case) and the candidates for one need, in the
database."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, insert, null, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.partners.adapters.agreements import of_organizations
from services.partners.adapters.tables import offers, organizations, requests, services
from services.partners.domain.offers import ACTIVE_STATUSES, ON_RECORD_STATUSES, TAKEN_STATUSES
from services.partners.domain.placement import RouteRequest, RouteRequestStatus
from services.partners.domain.routing import Candidate
from shared.db import fetch_all, fetch_one, update_where
from shared.vocabulary import LawfulBasis, Need, OfferStatus, PartnerKind


def _request(row: RowMapping) -> RouteRequest:
    return RouteRequest(
        id=row["id"],
        case_id=row["case_id"],
        need=Need(row["need"]),
        council=row["council"],
        packet=row["packet"],
        lawful_basis=LawfulBasis(row["lawful_basis"]),
        consent_kinds=frozenset(PartnerKind(k) for k in row["consent_kinds"]),
        agreement_reference=row["agreement_reference"],
        status=RouteRequestStatus(row["status"]),
        attempts=row["attempts"],
        urgency=(row["packet"] or {}).get("urgency"),
        waiting_since=row["waiting_since"],
    )


async def request_by_id(session: AsyncSession, request_id: str) -> RouteRequest:
    """A route request, locked while it is placed."""
    row = await fetch_one(
        session, select(requests).where(requests.c.id == request_id).with_for_update()
    )
    if row is None:
        raise LookupError(f"route request {request_id} does not exist")
    return _request(row)


async def request_for(session: AsyncSession, case_id: str, need: str) -> RouteRequest | None:
    """The request for one need of a case, locked, if there is one."""
    row = await fetch_one(
        session,
        select(requests)
        .where(requests.c.case_id == case_id, requests.c.need == need)
        .with_for_update(),
    )
    return _request(row) if row is not None else None


async def add_request(session: AsyncSession, request_id: str, **values: Any) -> None:
    await session.execute(insert(requests).values(id=request_id, **values))


async def update_request(session: AsyncSession, request_id: str, **values: Any) -> None:
    await update_where(session, requests, {"id": request_id}, values)


async def close_requests(session: AsyncSession, case_id: str, now: datetime) -> None:
    """Every need of the case closed and its packet deleted, so partners lose access."""
    await session.execute(
        update(requests)
        .where(requests.c.case_id == case_id)
        .values(
            status=RouteRequestStatus.CLOSED.value,
            packet=null(),  # SQL NULL, not JSON null
            updated_at=now,
        )
    )


async def queued(
    session: AsyncSession, needs: Collection[str] | None, limit: int, council: str | None = None
) -> list[str]:
    """The needs waiting for a place (most urgent, then longest waiting, first), then the
    unroutable ones (oldest first), of ``needs`` (None: every need) and of ``council``'s
    cases (None: every council's); rows another worker holds are skipped."""
    waiting = requests.c.status == RouteRequestStatus.WAITING.value
    query = (
        select(requests.c.id)
        .where(
            requests.c.status.in_(
                [RouteRequestStatus.WAITING.value, RouteRequestStatus.UNROUTABLE.value]
            )
        )
        .order_by(
            waiting.desc(),
            requests.c.queue_rank.asc().nulls_last(),
            requests.c.waiting_since.asc().nulls_last(),
            requests.c.updated_at,
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if needs is not None:
        query = query.where(requests.c.need.in_(sorted(needs)))
    if council is not None:
        query = query.where(requests.c.council == council)
    return [row["id"] for row in await fetch_all(session, query)]


def _status_in(statuses: frozenset[OfferStatus]) -> ColumnElement[bool]:
    return offers.c.status.in_(sorted(statuses))


# Built once (every placement asks): the service bound.
_CAPACITY = (
    select(services.c.capacity, services.c.paused)
    .where(services.c.id == bindparam("service_id"))
    .with_for_update()
)
_LOAD = (
    select(func.count())
    .select_from(offers)
    .where(offers.c.service_id == bindparam("service_id"), _status_in(ACTIVE_STATUSES))
)


async def has_room(session: AsyncSession, service_id: str) -> bool:
    """Whether the service can take one more offer now, with its row locked until the
    transaction ends: a second placement on the same service waits here, then counts the
    first one's offer (the race for the last place has one winner)."""
    row = await fetch_one(session, _CAPACITY, {"service_id": service_id})
    if row is None or row["paused"]:
        return False
    load = await session.scalar(_LOAD, {"service_id": service_id})
    return (load or 0) < row["capacity"]


async def needs_of_service(session: AsyncSession, service_id: str) -> list[str]:
    row = await fetch_one(session, select(services.c.needs).where(services.c.id == service_id))
    return list(row["needs"]) if row is not None else []


async def gaps(session: AsyncSession, council: str | None) -> Sequence[RowMapping]:
    """Needs currently unroutable or waiting for a place, counted by council, need, status
    and reason, with the oldest (since when), most cases first; one council's, or all."""
    since = func.min(func.coalesce(requests.c.waiting_since, requests.c.updated_at))
    query = (
        select(
            requests.c.council,
            requests.c.need,
            requests.c.status,
            requests.c.unroutable_reason.label("reason"),
            func.count().label("cases"),
            since.label("since"),
        )
        .where(
            requests.c.status.in_(
                [RouteRequestStatus.UNROUTABLE.value, RouteRequestStatus.WAITING.value]
            )
        )
        .group_by(
            requests.c.council, requests.c.need, requests.c.status, requests.c.unroutable_reason
        )
        .order_by(func.count().desc(), requests.c.council, requests.c.need)
    )
    if council is not None:
        query = query.where(requests.c.council == council)
    return await fetch_all(session, query)


def _candidates() -> Select[Any]:
    meets_need = services.c.needs.contains(bindparam("needs", type_=services.c.needs.type))
    counts = (
        select(
            offers.c.service_id,
            func.count().filter(_status_in(ACTIVE_STATUSES)).label("load"),
            func.count().filter(_status_in(ON_RECORD_STATUSES)).label("made"),
            func.count().filter(_status_in(TAKEN_STATUSES)).label("accepted"),
        )
        .where(offers.c.service_id.in_(select(services.c.id).where(meets_need)))
        .group_by(offers.c.service_id)
        .subquery()
    )
    return (
        select(
            services,
            organizations.c.name.label("organization_name"),
            organizations.c.kind.label("organization_kind"),
            func.coalesce(counts.c.load, 0).label("load"),
            func.coalesce(counts.c.made, 0).label("made"),
            func.coalesce(counts.c.accepted, 0).label("accepted"),
        )
        .join(organizations, organizations.c.id == services.c.organization_id)
        .outerjoin(counts, counts.c.service_id == services.c.id)
        .where(meets_need)
    )


# Built once (every need routed asks): the need bound, as an array of one.
_CANDIDATES = _candidates()


async def candidates(session: AsyncSession, need: str) -> list[Candidate]:
    """The services meeting ``need``, with their load, record and their organisations'
    agreements (the routing function does the rest). Only their offers are counted, in one
    pass."""
    rows = await fetch_all(session, _CANDIDATES, {"needs": [need]})
    agreements = await of_organizations(session, {r["organization_id"] for r in rows})
    return [
        Candidate(
            service_id=r["id"],
            service_name=r["name"],
            organization_id=r["organization_id"],
            organization_name=r["organization_name"],
            organization_kind=PartnerKind(r["organization_kind"]),
            active=r["status"] == "active",
            paused=r["paused"],
            needs=frozenset(Need(n) for n in r["needs"]),
            councils=frozenset(r["councils"]),
            districts=frozenset(r["postcode_districts"]),
            minimum_age=r["minimum_age"],
            maximum_age=r["maximum_age"],
            languages=frozenset(r["languages"]),
            interpretation=r["interpretation"],
            agreements=tuple(agreements.get(r["organization_id"], ())),
            capacity=r["capacity"],
            load=r["load"],
            offers_made=r["made"],
            offers_accepted=r["accepted"],
        )
        for r in rows
    ]
