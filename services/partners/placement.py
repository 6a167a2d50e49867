"""Placing each need of a case with a partner, and handing it on, inside the caller's
transaction. Routing decisions come from ``domain/routing.py``; this module applies them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, insert, null, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.partners.adapters.tables import (
    agreements,
    deliveries,
    offers,
    organizations,
    requests,
    services,
    webhooks,
)
from services.partners.domain.routing import Candidate, NeedToRoute, route
from services.partners.settings import PartnersSettings
from shared.events.payloads import CaseUnroutable, OfferExpired, OfferWithdrawn, ReferralOffered
from shared.messaging.outbox import Outbox
from shared.vocabulary import LawfulBasis, Need, PartnerKind

ACTIVE_OFFER = ("offered", "accepted", "in_progress")
TAKEN = ("accepted", "in_progress", "outcome_recorded")  # counts as accepted


def new_id() -> str:
    return str(uuid.uuid4())


async def candidates(session: AsyncSession, need: str) -> list[Candidate]:
    """The services meeting ``need``, with their load and record (the routing function does
    the rest). Only their offers are counted, in one pass."""
    meets_need = services.c.needs.contains([need])
    counts = (
        select(
            offers.c.service_id,
            func.count().filter(offers.c.status.in_(ACTIVE_OFFER)).label("load"),
            func.count().filter(offers.c.status != "withdrawn").label("made"),
            func.count().filter(offers.c.status.in_(TAKEN)).label("accepted"),
        )
        .where(offers.c.service_id.in_(select(services.c.id).where(meets_need)))
        .group_by(offers.c.service_id)
        .subquery()
    )
    rows = (
        (
            await session.execute(
                select(
                    services,
                    organizations.c.name.label("organization_name"),
                    organizations.c.kind.label("organization_kind"),
                    agreements.c.lawful_bases,
                    agreements.c.data_categories,
                    func.coalesce(counts.c.load, 0).label("load"),
                    func.coalesce(counts.c.made, 0).label("made"),
                    func.coalesce(counts.c.accepted, 0).label("accepted"),
                )
                .join(organizations, organizations.c.id == services.c.organization_id)
                .outerjoin(agreements, agreements.c.organization_id == organizations.c.id)
                .outerjoin(counts, counts.c.service_id == services.c.id)
                .where(meets_need)
            )
        )
        .mappings()
        .all()
    )
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
            allowed_bases=frozenset(LawfulBasis(b) for b in (r["lawful_bases"] or [])),
            allowed_categories=frozenset(r["data_categories"] or []),
            capacity=r["capacity"],
            load=r["load"],
            offers_made=r["made"],
            offers_accepted=r["accepted"],
        )
        for r in rows
    ]


async def enqueue_webhook(
    session: AsyncSession,
    organization_id: str,
    offer_id: str | None,
    event: str,
    body: dict[str, Any],
    now: datetime,
) -> None:
    """Written with the change it reports; sent by the worker, so delivery never blocks."""
    registered = await session.scalar(
        select(webhooks.c.organization_id).where(webhooks.c.organization_id == organization_id)
    )
    if registered is None:
        return
    await session.execute(
        insert(deliveries).values(
            id=new_id(),
            organization_id=organization_id,
            offer_id=offer_id,
            event=event,
            body={"event": event, "occurred_at": now.isoformat(), **body},
            status="pending",
            attempts=0,
            next_attempt_at=now,
        )
    )


def _need_to_route(request: RowMapping, tried: Sequence[str]) -> NeedToRoute:
    packet = request["packet"] or {}
    return NeedToRoute(
        need=Need(request["need"]),
        council=request["council"],
        district=packet.get("postcode_district"),
        age=packet.get("age_years"),
        language=packet.get("preferred_language", "en"),
        interpreter_needed=packet.get("interpreter_needed", False),
        lawful_basis=LawfulBasis(request["lawful_basis"]),
        consent_kinds=frozenset(PartnerKind(k) for k in request["consent_kinds"]),
        excluded_organizations=frozenset(tried),
    )


async def place(
    session: AsyncSession,
    outbox: Outbox,
    settings: PartnersSettings,
    request_id: str,
    *,
    now: datetime,
) -> RowMapping | None:
    """Offer the need to the best candidate not yet tried; none left, or too many tries:
    the need goes back to the council as unroutable, with the reason in plain words."""
    request = (
        (
            await session.execute(
                select(requests).where(requests.c.id == request_id).with_for_update()
            )
        )
        .mappings()
        .one()
    )
    tried = (
        (
            await session.execute(
                select(offers.c.organization_id).where(offers.c.request_id == request_id)
            )
        )
        .scalars()
        .all()
    )
    decision = route(_need_to_route(request, tried), await candidates(session, request["need"]))
    chosen = decision.chosen
    if chosen is None or request["attempts"] >= settings.max_offers_per_need:
        reason = (
            decision.unroutable_reason
            if chosen is None
            else f"{request['attempts']} partners were offered "
            f"{request['need'].replace('_', ' ')} and none took it"
        )
        await session.execute(
            update(requests)
            .where(requests.c.id == request_id)
            .values(status="unroutable", unroutable_reason=reason, updated_at=now)
        )
        await outbox.add(
            session,
            CaseUnroutable(
                case_id=request["case_id"], needs=[Need(request["need"])], reasons=[reason], at=now
            ),
            subject=request["case_id"],
        )
        return None
    urgency = (request["packet"] or {}).get("urgency", "medium")
    respond_by = now + timedelta(hours=settings.response_hours.get(urgency, 72))
    service = chosen.candidate
    offer = (
        (
            await session.execute(
                insert(offers)
                .values(
                    id=new_id(),
                    request_id=request_id,
                    case_id=request["case_id"],
                    need=request["need"],
                    service_id=service.service_id,
                    organization_id=service.organization_id,
                    status="offered",
                    respond_by=respond_by,
                    attempt=request["attempts"] + 1,
                    decision={
                        "score": chosen.score,
                        "reasons": list(chosen.reasons),
                        "excluded": decision.excluded,
                    },
                    created_at=now,
                    updated_at=now,
                )
                .returning(offers)
            )
        )
        .mappings()
        .one()
    )
    await session.execute(
        update(requests)
        .where(requests.c.id == request_id)
        .values(status="placed", attempts=request["attempts"] + 1, updated_at=now)
    )
    await outbox.add(
        session,
        ReferralOffered(
            offer_id=offer["id"],
            case_id=request["case_id"],
            need=Need(request["need"]),
            partner_id=service.organization_id,
            partner_name=service.organization_name,
            service_id=service.service_id,
            service_name=service.service_name,
            respond_by=respond_by,
            attempt=offer["attempt"],
            at=now,
        ),
        subject=request["case_id"],
    )
    await enqueue_webhook(
        session,
        service.organization_id,
        offer["id"],
        "offer.made",
        {
            "offer_id": offer["id"],
            "need": request["need"],
            "respond_by": respond_by.isoformat(),
            "inbox_url": f"{settings.public_base_url}/v1/inbox/offers/{offer['id']}",
            "packet": request["packet"],
        },
        now,
    )
    return offer


async def route_case(
    session: AsyncSession,
    outbox: Outbox,
    settings: PartnersSettings,
    *,
    case_id: str,
    council: str,
    packet: dict[str, Any],
    lawful_basis: str,
    consent_kinds: list[str],
    now: datetime,
) -> None:
    """A case ready for routing: one request per need; new or unroutable ones are placed."""
    for need in packet["needs"]:
        existing = (
            (
                await session.execute(
                    select(requests)
                    .where(requests.c.case_id == case_id, requests.c.need == need)
                    .with_for_update()
                )
            )
            .mappings()
            .first()
        )
        values = {
            "packet": packet,
            "lawful_basis": lawful_basis,
            "consent_kinds": consent_kinds,
            "council": council,
            "updated_at": now,
        }
        if existing is None:
            request_id = new_id()
            await session.execute(
                insert(requests).values(
                    id=request_id,
                    case_id=case_id,
                    need=need,
                    status="open",
                    attempts=0,
                    created_at=now,
                    **values,
                )
            )
        elif existing["status"] in ("unroutable", "closed"):
            request_id = existing["id"]
            await session.execute(
                update(requests)
                .where(requests.c.id == request_id)
                .values(status="open", attempts=0, **values)
            )
        else:
            await session.execute(
                update(requests).where(requests.c.id == existing["id"]).values(**values)
            )
            continue
        await place(session, outbox, settings, request_id, now=now)


def offer_fields(offer: RowMapping, now: datetime) -> dict[str, Any]:
    """What every offer event says about its offer."""
    return {
        "offer_id": offer["id"],
        "case_id": offer["case_id"],
        "need": Need(offer["need"]),
        "partner_id": offer["organization_id"],
        "at": now,
    }


async def end_offer(
    session: AsyncSession,
    outbox: Outbox,
    offer: RowMapping,
    status: str,
    event: BaseModel,
    *,
    webhook: dict[str, Any],
    now: datetime,
    **values: Any,
) -> None:
    """An offer ended by something other than the partner (withdrawn, expired): the new
    status, its event, and the partner told by webhook."""
    await session.execute(
        update(offers)
        .where(offers.c.id == offer["id"])
        .values(status=status, updated_at=now, **values)
    )
    await outbox.add(session, event, subject=offer["case_id"])
    await enqueue_webhook(
        session,
        offer["organization_id"],
        offer["id"],
        f"offer.{status}",
        {"offer_id": offer["id"], **webhook},
        now,
    )


async def withdraw_offers(
    session: AsyncSession,
    outbox: Outbox,
    settings: PartnersSettings,
    offer_rows: Sequence[RowMapping],
    reason: str,
    *,
    now: datetime,
) -> None:
    for offer in offer_rows:
        await end_offer(
            session,
            outbox,
            offer,
            "withdrawn",
            OfferWithdrawn(**offer_fields(offer, now), reason=reason),
            webhook={"reason": reason},
            now=now,
            note=reason,
        )


async def stop_case(
    session: AsyncSession,
    outbox: Outbox,
    settings: PartnersSettings,
    case_id: str,
    reason: str,
    *,
    now: datetime,
) -> None:
    """Consent withdrawn or case closed: open offers are withdrawn and the packet deleted,
    so partners lose access."""
    await session.execute(
        update(requests)
        .where(requests.c.case_id == case_id)
        .values(status="closed", packet=null(), updated_at=now)  # SQL NULL, not JSON null
    )
    open_offers = (
        (
            await session.execute(
                select(offers)
                .where(offers.c.case_id == case_id, offers.c.status.in_(ACTIVE_OFFER))
                .with_for_update()
            )
        )
        .mappings()
        .all()
    )
    await withdraw_offers(session, outbox, settings, open_offers, reason, now=now)


async def expire_due_offers(
    session: AsyncSession,
    outbox: Outbox,
    settings: PartnersSettings,
    *,
    now: datetime,
    limit: int = 100,
) -> int:
    """Offers not answered in time: expired, and the need handed on."""
    due = (
        (
            await session.execute(
                select(offers)
                .where(offers.c.status == "offered", offers.c.respond_by <= now)
                .order_by(offers.c.respond_by)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        .mappings()
        .all()
    )
    for offer in due:
        await end_offer(
            session,
            outbox,
            offer,
            "expired",
            OfferExpired(**offer_fields(offer, now)),
            webhook={},
            now=now,
        )
        await place(session, outbox, settings, offer["request_id"], now=now)
    return len(due)
