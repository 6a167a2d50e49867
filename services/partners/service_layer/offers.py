"""The partner inbox: a partner sees only the offers made to it, answers them, and records
progress and outcomes. After declining (or once an offer is withdrawn or expired) it sees
nothing more of the case."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.partners.adapters import offers as store
from services.partners.adapters.offers import InboxRow
from services.partners.domain import offers as lifecycle
from services.partners.domain.offers import Offer
from services.partners.service_layer.audit import NO_PACKET, PACKET, Reader, audited, principal_of
from services.partners.service_layer.notifications import (
    OFFER_OVERDUE,
    OfferNotice,
    queue_offer_email,
)
from services.partners.service_layer.placement import (
    offer_fields,
    offer_freed_place,
    place,
)
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from services.partners.service_layer.webhooks import queue_webhook
from services.partners.service_layer.working_time import service_deadline_rules
from shared.audit import Category, Seen
from shared.auth import Principal
from shared.errors import Invalid, NotFound
from shared.events.payloads import (
    OfferAccepted,
    OfferDeclined,
    OfferOverdue,
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
    # accepted or in progress: when it must next show progress, and whether it is past that
    follow_up_by: datetime | None = None
    overdue: bool = False


MAX_NOTE = 1000  # characters of a partner's note on an offer, however it is sent


def _refuse_a_long_note(note: str | None) -> None:
    """A note as the use cases take it, from the API or the web inbox alike."""
    if note is not None and len(note) > MAX_NOTE:
        raise Invalid("note", f"is longer than {MAX_NOTE:,} characters")


@dataclass(frozen=True)
class Decline:
    reason: DeclineReason
    note: str | None = None


@dataclass(frozen=True)
class RecordOutcome:
    outcome: Outcome
    note: str | None = None


def _inbox_offer(row: InboxRow, now: datetime) -> InboxOffer:
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
        follow_up_by=offer.follow_up_by,
        overdue=lifecycle.is_overdue(offer.status, offer.follow_up_by, now),
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


async def _audit_offers(
    uow: PartnersUnitOfWork,
    principal: Principal,
    operation: str,
    rows: list[InboxRow],
    shown: list[InboxOffer],
) -> None:
    """The read of these offers, in the caller's transaction: the packet's categories if any
    packet was shown, the need and progress otherwise."""
    categories: tuple[Category, ...] = NO_PACKET
    if any(o.packet is not None for o in shown):
        categories = (*PACKET, Category.PROGRESS)
    seen = [Seen(row.council, case_id=row.offer.case_id) for row in rows]
    await audited(uow, principal, operation, categories, seen)


async def list_offers(uow: PartnersUnitOfWork, reader: Reader) -> list[InboxOffer]:
    """The partner's offers in hand and those it closed in the last ``partner_inbox_closed_days``
    (an older one is still shown by its id: ``get_offer``), soonest deadline first.
    ``reader``: who reads (audited), of the partner whose offers these are."""
    principal = principal_of(reader)
    async with uow.snapshot():
        now = uow.now()
        closed_since = now - timedelta(days=uow.settings.partner_inbox_closed_days)
        rows = await store.inbox(uow.session, principal.organisation, closed_since)
        shown = [_inbox_offer(row, now) for row in rows]
        await _audit_offers(uow, principal, "list_offers", rows, shown)
    return shown


async def get_offer(uow: PartnersUnitOfWork, reader: Reader, offer_id: str) -> InboxOffer:
    async with uow.snapshot():
        return await _shown(uow, principal_of(reader), offer_id, "get_offer")


async def _shown(
    uow: PartnersUnitOfWork, principal: Principal, offer_id: str, operation: str
) -> InboxOffer:
    """One offer as its partner sees it, its read audited (in the caller's transaction)."""
    row = await store.visible_to(uow.session, principal.organisation, offer_id)
    if row is None:
        raise NotFound("offer not found")
    shown = _inbox_offer(row, uow.now())
    await _audit_offers(uow, principal, operation, [row], [shown])
    return shown


async def _mine(uow: PartnersUnitOfWork, partner_id: str, offer_id: str) -> Offer:
    """The partner's offer, locked for the change about to be made."""
    return (await _mine_with_packet(uow, partner_id, offer_id)).offer


async def _mine_with_packet(uow: PartnersUnitOfWork, partner_id: str, offer_id: str) -> InboxRow:
    row = await store.visible_to(uow.session, partner_id, offer_id, lock=True)
    if row is None:
        raise NotFound("offer not found")
    return row


async def _follow_up(uow: PartnersUnitOfWork, row: InboxRow, now: datetime) -> datetime:
    urgency = (row.packet or {}).get("urgency")
    rules = await service_deadline_rules(uow.session, uow.settings, row.offer.service_id)
    return lifecycle.follow_up_by(now, urgency, rules)


async def _move(
    uow: PartnersUnitOfWork, offer: Offer, target: OfferStatus, now: datetime, **values: Any
) -> None:
    status = lifecycle.transition(offer.status, target)
    await store.update_offer(uow.session, offer.id, now=now, status=status.value, **values)


async def accept_offer(uow: PartnersUnitOfWork, reader: Reader, offer_id: str) -> InboxOffer:
    """Accepted; the answer shows the offer and its packet (audited)."""
    principal = principal_of(reader)
    partner_id = principal.organisation
    async with uow.transaction():
        row, now = await _mine_with_packet(uow, partner_id, offer_id), uow.now()
        offer = row.offer
        follow_up = await _follow_up(uow, row, now)
        await _move(uow, offer, OfferStatus.ACCEPTED, now, follow_up_by=follow_up)
        await uow.outbox.add(
            uow.session, OfferAccepted(**offer_fields(offer, now)), subject=offer.case_id
        )
        return await _shown(uow, principal, offer_id, "accept_offer")


async def decline_offer(
    uow: PartnersUnitOfWork, partner_id: str, offer_id: str, command: Decline
) -> None:
    """Declined, and handed on to the next partner; this one sees no more of the case."""
    _refuse_a_long_note(command.note)
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
        await offer_freed_place(uow, offer.service_id, now=now)


async def record_progress(
    uow: PartnersUnitOfWork, reader: Reader, offer_id: str, note: str | None
) -> InboxOffer:
    """The partner is working with the resident; the answer shows the offer (audited)."""
    _refuse_a_long_note(note)
    principal = principal_of(reader)
    partner_id = principal.organisation
    async with uow.transaction():
        row, now = await _mine_with_packet(uow, partner_id, offer_id), uow.now()
        offer = row.offer
        # progress resets the follow-up clock, and an overdue offer is no longer overdue
        await _move(
            uow,
            offer,
            OfferStatus.IN_PROGRESS,
            now,
            note=note,
            follow_up_by=await _follow_up(uow, row, now),
            overdue_at=None,
        )
        await uow.outbox.add(
            uow.session,
            OfferProgressRecorded(**offer_fields(offer, now), note=note),
            subject=offer.case_id,
        )
        return await _shown(uow, principal, offer_id, "record_progress")


async def record_outcome(
    uow: PartnersUnitOfWork, reader: Reader, offer_id: str, command: RecordOutcome
) -> InboxOffer:
    """The outcome recorded; the answer shows the offer (audited)."""
    _refuse_a_long_note(command.note)
    principal = principal_of(reader)
    partner_id = principal.organisation
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
        await offer_freed_place(uow, offer.service_id, now=now)  # its place is free again
        return await _shown(uow, principal, offer_id, "record_outcome")


async def mark_overdue_offers(uow: PartnersUnitOfWork, *, limit: int = 100) -> int:
    """Accepted and in-progress offers past their follow-up deadline: marked overdue (once
    per deadline), the council told (an event) and the partner reminded (a webhook and an
    email). How many."""
    async with uow.transaction():
        now = uow.now()
        due = await store.past_follow_up(uow.session, lifecycle.FOLLOW_UP_STATUSES, now, limit)
        for row in due:
            offer = store.offer_of(row)
            assert offer.follow_up_by is not None  # selected by it
            await store.update_offer(uow.session, offer.id, now=now, overdue_at=now)
            await uow.outbox.add(
                uow.session,
                OfferOverdue(**offer_fields(offer, now), follow_up_by=offer.follow_up_by),
                subject=offer.case_id,
            )
            await queue_webhook(
                uow,
                offer.organization_id,
                offer.id,
                "offer.overdue",
                {"offer_id": offer.id, "follow_up_by": offer.follow_up_by.isoformat()},
                now=now,
            )
            notice = OfferNotice(
                OFFER_OVERDUE, offer.id, offer.need, row["urgency"] or "", offer.follow_up_by
            )
            await queue_offer_email(uow, offer.organization_id, notice, now=now)
    return len(due)


@dataclass(frozen=True)
class OverdueCount:
    council: str
    partner_id: str
    offers: int


async def overdue_counts(uow: PartnersUnitOfWork, council: str | None) -> list[OverdueCount]:
    """Overdue offers by council and partner: one council's (``council``), or all (None)."""
    rows = await store.overdue_counts(uow.session, lifecycle.FOLLOW_UP_STATUSES, uow.now())
    return [
        OverdueCount(r["council"], r["organization_id"], r["offers"])
        for r in rows
        if council is None or r["council"] == council
    ]
