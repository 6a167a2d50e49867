"""The partner inbox: a partner sees only the offers made to it, answers them, and records
progress and outcomes. After declining (or once an offer is withdrawn or expired) it sees
nothing more of the case."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.partners.adapters import offers as store
from services.partners.adapters.offers import InboxRow
from services.partners.domain import offers as lifecycle
from services.partners.domain.offers import Offer
from services.partners.service_layer.placement import offer_fields, place
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from shared.errors import NotFound
from shared.events.payloads import (
    OfferAccepted,
    OfferDeclined,
    OfferProgressRecorded,
    OutcomeRecorded,
)
from shared.vocabulary import DeclineReason, Need, OfferStatus, Outcome


@dataclass(frozen=True)
class InboxOffer:
    """An offer as its partner sees it: the packet only while the offer is open."""

    id: str
    case_id: str
    need: Need
    service_id: str
    service_name: str
    status: OfferStatus
    respond_by: datetime
    outcome: Outcome | None
    packet: dict[str, Any] | None
    # why this partner, as far as it is about the partner itself (the filters it passed and
    # the ranking factors; never the other candidates)
    routing_reasons: list[str] | None = None


@dataclass(frozen=True)
class Decline:
    reason: DeclineReason
    note: str | None = None


@dataclass(frozen=True)
class RecordOutcome:
    outcome: Outcome
    note: str | None = None


def _inbox_offer(row: InboxRow) -> InboxOffer:
    offer = row.offer
    return InboxOffer(
        id=offer.id,
        case_id=offer.case_id,
        need=offer.need,
        service_id=offer.service_id,
        service_name=row.service_name,
        status=offer.status,
        respond_by=offer.respond_by,
        outcome=offer.outcome,
        packet=row.packet if offer.status in lifecycle.ACTIVE_STATUSES else None,
        routing_reasons=_about_the_partner(row.decision),
    )


def _about_the_partner(decision: dict[str, Any] | None) -> list[str] | None:
    why = (decision or {}).get("why")
    if not why:
        return None
    return [*why.get("passed", []), *why.get("ranking", [])]


async def gone_status(
    uow: PartnersUnitOfWork, partner_id: str, offer_id: str
) -> OfferStatus | None:
    """Whether one of the partner's offers has gone (declined, expired, withdrawn), for a
    page that says so and shows nothing of the case; None if the offer is not the partner's
    or has not gone."""
    status = await store.status_for(uow.session, partner_id, offer_id)
    return status if status in lifecycle.GONE_STATUSES else None


async def list_offers(uow: PartnersUnitOfWork, partner_id: str) -> list[InboxOffer]:
    """The partner's offers, soonest deadline first."""
    return [_inbox_offer(row) for row in await store.inbox(uow.session, partner_id)]


async def get_offer(uow: PartnersUnitOfWork, partner_id: str, offer_id: str) -> InboxOffer:
    row = await store.visible_to(uow.session, partner_id, offer_id)
    if row is None:
        raise NotFound("offer not found")
    return _inbox_offer(row)


async def _mine(uow: PartnersUnitOfWork, partner_id: str, offer_id: str) -> Offer:
    """The partner's offer, locked for the change about to be made."""
    row = await store.visible_to(uow.session, partner_id, offer_id, lock=True)
    if row is None:
        raise NotFound("offer not found")
    return row.offer


async def _move(
    uow: PartnersUnitOfWork, offer: Offer, target: OfferStatus, now: datetime, **values: Any
) -> None:
    status = lifecycle.transition(offer.status, target)
    await store.update_offer(uow.session, offer.id, now=now, status=status.value, **values)


async def accept_offer(uow: PartnersUnitOfWork, partner_id: str, offer_id: str) -> InboxOffer:
    async with uow.transaction():
        offer, now = await _mine(uow, partner_id, offer_id), uow.now()
        await _move(uow, offer, OfferStatus.ACCEPTED, now)
        await uow.outbox.add(
            uow.session, OfferAccepted(**offer_fields(offer, now)), subject=offer.case_id
        )
        return await get_offer(uow, partner_id, offer_id)


async def decline_offer(
    uow: PartnersUnitOfWork, partner_id: str, offer_id: str, command: Decline
) -> None:
    """Declined, and handed on to the next partner; this one sees no more of the case."""
    async with uow.transaction():
        offer, now = await _mine(uow, partner_id, offer_id), uow.now()
        await _move(
            uow,
            offer,
            OfferStatus.DECLINED,
            now,
            decline_reason=command.reason.value,
            note=command.note,
        )
        await uow.outbox.add(
            uow.session,
            OfferDeclined(**offer_fields(offer, now), reason=command.reason, note=command.note),
            subject=offer.case_id,
        )
        await place(uow, offer.request_id, now=now)


async def record_progress(
    uow: PartnersUnitOfWork, partner_id: str, offer_id: str, note: str | None
) -> InboxOffer:
    """The partner is working with the resident."""
    async with uow.transaction():
        offer, now = await _mine(uow, partner_id, offer_id), uow.now()
        await _move(uow, offer, OfferStatus.IN_PROGRESS, now, note=note)
        await uow.outbox.add(
            uow.session,
            OfferProgressRecorded(**offer_fields(offer, now), note=note),
            subject=offer.case_id,
        )
        return await get_offer(uow, partner_id, offer_id)


async def record_outcome(
    uow: PartnersUnitOfWork, partner_id: str, offer_id: str, command: RecordOutcome
) -> InboxOffer:
    async with uow.transaction():
        offer, now = await _mine(uow, partner_id, offer_id), uow.now()
        await _move(
            uow,
            offer,
            OfferStatus.OUTCOME_RECORDED,
            now,
            outcome=command.outcome.value,
            note=command.note,
        )
        await uow.outbox.add(
            uow.session,
            OutcomeRecorded(**offer_fields(offer, now), outcome=command.outcome, note=command.note),
            subject=offer.case_id,
        )
        return await get_offer(uow, partner_id, offer_id)
