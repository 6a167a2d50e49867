"""Offers in the database: the partner inbox's reads, status changes, and the sweeps that
find offers to expire or withdraw."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, insert, or_, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.partners.adapters.tables import CLOSED_OFFER, offers, requests, services
from services.partners.domain.offers import ACTIVE_STATUSES, VISIBLE_STATUSES, Offer
from shared.db import fetch_all, fetch_one
from shared.vocabulary import Need, OfferStatus, Outcome


def offer_of(row: RowMapping) -> Offer:
    return Offer(
        id=row["id"],
        request_id=row["request_id"],
        case_id=row["case_id"],
        need=Need(row["need"]),
        service_id=row["service_id"],
        organization_id=row["organization_id"],
        status=OfferStatus(row["status"]),
        respond_by=row["respond_by"],
        attempt=row["attempt"],
        outcome=Outcome(row["outcome"]) if row["outcome"] else None,
        follow_up_by=row["follow_up_by"],
    )


def _status_in(statuses: Collection[OfferStatus]) -> ColumnElement[bool]:
    return offers.c.status.in_(sorted(statuses))  # sorted: the same SQL every time


# The inbox shows an offer with its service's name and the case's packet.
_INBOX: Select[Any] = (
    select(
        offers,
        services.c.name.label("service_name"),
        requests.c.packet,
        requests.c.council.label("request_council"),
    )
    .join(services, services.c.id == offers.c.service_id)
    .join(requests, requests.c.id == offers.c.request_id)
)


@dataclass(frozen=True)
class InboxRow:
    offer: Offer
    service_name: str
    packet: dict[str, Any] | None  # None once the case stopped
    decision: dict[str, Any] | None = None  # the routing decision (score, reasons, why)
    council: str | None = None  # whose case (for the audit of the read)


def _inbox_row(row: RowMapping) -> InboxRow:
    return InboxRow(
        offer_of(row),
        row["service_name"],
        row["packet"],
        row["decision"],
        row["request_council"],
    )


# ix_offers_closed's condition in its own words (tables.py), qualified: the inbox joins
# route requests, which have a status too.
_IS_CLOSED = text(f"offers.{CLOSED_OFFER}")


def inbox_query(organization_id: str, closed_since: datetime) -> Select[Any]:
    """The offers a partner has in hand and those it closed since ``closed_since``, soonest
    deadline first. Each half read from its own index (``ix_offers_organization``,
    ``ix_offers_closed``), not from every offer the partner ever closed."""
    mine = offers.c.organization_id == organization_id
    return _INBOX.where(
        or_(
            and_(mine, _status_in(VISIBLE_STATUSES - {OfferStatus.OUTCOME_RECORDED})),
            and_(mine, _IS_CLOSED, offers.c.updated_at >= closed_since),
        )
    ).order_by(offers.c.respond_by)


async def inbox(
    session: AsyncSession, organization_id: str, closed_since: datetime
) -> list[InboxRow]:
    """``inbox_query``'s offers."""
    rows = await fetch_all(session, inbox_query(organization_id, closed_since))
    return [_inbox_row(row) for row in rows]


async def visible_to(
    session: AsyncSession, organization_id: str, offer_id: str, *, lock: bool = False
) -> InboxRow | None:
    """One offer as its partner sees it, or None if it is not the partner's to see."""
    query = _INBOX.where(
        offers.c.id == offer_id,
        offers.c.organization_id == organization_id,
        _status_in(VISIBLE_STATUSES),
    )
    row = await fetch_one(session, query.with_for_update(of=offers) if lock else query)
    return _inbox_row(row) if row is not None else None


async def add(session: AsyncSession, **values: Any) -> Offer:
    row = await fetch_one(session, insert(offers).values(**values).returning(offers))
    assert row is not None  # INSERT … RETURNING always returns the row
    return offer_of(row)


async def update_offer(
    session: AsyncSession, offer_id: str, *, now: datetime, **values: Any
) -> None:
    await session.execute(
        update(offers).where(offers.c.id == offer_id).values(updated_at=now, **values)
    )


async def organizations_offered(session: AsyncSession, request_id: str) -> list[str]:
    """Every partner this need has been offered to (never offered twice)."""
    rows = await fetch_all(
        session, select(offers.c.organization_id).where(offers.c.request_id == request_id)
    )
    return [row["organization_id"] for row in rows]


async def of_case(
    session: AsyncSession, case_id: str, statuses: Collection[OfferStatus]
) -> list[Offer]:
    """The case's offers in ``statuses``, locked for the change about to be made."""
    rows = await fetch_all(
        session,
        select(offers).where(offers.c.case_id == case_id, _status_in(statuses)).with_for_update(),
    )
    return [offer_of(row) for row in rows]


async def of_service(
    session: AsyncSession, service_id: str, statuses: Collection[OfferStatus]
) -> list[Offer]:
    rows = await fetch_all(
        session,
        select(offers)
        .where(offers.c.service_id == service_id, _status_in(statuses))
        .with_for_update(),
    )
    return [offer_of(row) for row in rows]


async def due(
    session: AsyncSession, statuses: Collection[OfferStatus], now: datetime, limit: int
) -> list[Offer]:
    """Offers in ``statuses`` past their deadline, earliest first; rows another worker holds
    are skipped."""
    rows = await fetch_all(
        session,
        select(offers)
        .where(_status_in(statuses), offers.c.respond_by <= now)
        .order_by(offers.c.respond_by)
        .limit(limit)
        .with_for_update(skip_locked=True),
    )
    return [offer_of(row) for row in rows]


async def past_follow_up(
    session: AsyncSession, statuses: Collection[OfferStatus], now: datetime, limit: int
) -> Sequence[RowMapping]:
    """Offers in ``statuses`` past their follow-up deadline and not yet marked overdue, with
    their case's urgency; rows another worker holds are skipped."""
    return await fetch_all(
        session,
        select(offers, requests.c.packet["urgency"].astext.label("urgency"))
        .join(requests, requests.c.id == offers.c.request_id)
        .where(_status_in(statuses), offers.c.overdue_at.is_(None), offers.c.follow_up_by <= now)
        .order_by(offers.c.follow_up_by)
        .limit(limit)
        .with_for_update(of=offers, skip_locked=True),
    )


async def overdue_counts(
    session: AsyncSession, statuses: Collection[OfferStatus], now: datetime
) -> Sequence[RowMapping]:
    """Overdue offers (in ``statuses``, past their follow-up deadline) by council and
    partner, most first."""
    return await fetch_all(
        session,
        select(
            requests.c.council,
            offers.c.organization_id,
            func.count().label("offers"),
        )
        .join(requests, requests.c.id == offers.c.request_id)
        .where(_status_in(statuses), offers.c.follow_up_by <= now)
        .group_by(requests.c.council, offers.c.organization_id)
        .order_by(func.count().desc()),
    )


async def active_count(session: AsyncSession, service_id: str) -> int:
    """Open offers and active referrals of a service: its load."""
    count = await session.scalar(
        select(func.count())
        .select_from(offers)
        .where(offers.c.service_id == service_id, _status_in(ACTIVE_STATUSES))
    )
    return count or 0


async def status_for(
    session: AsyncSession, organization_id: str, offer_id: str
) -> OfferStatus | None:
    """The status of one of the partner's offers, whatever it is (for the page that says an
    offer has gone); None if it is not the partner's."""
    row = await fetch_one(
        session,
        select(offers.c.status).where(
            offers.c.id == offer_id, offers.c.organization_id == organization_id
        ),
    )
    return OfferStatus(row["status"]) if row is not None else None
