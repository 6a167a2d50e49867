"""Placement use cases: routing each need of a case to a partner, handing it on when an
offer ends unanswered, and stopping a case. Routing decisions come from
``domain/routing.py``; this module applies them and says so (events, webhooks)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from services.partners.adapters import offers as offer_store
from services.partners.adapters import placement as store
from services.partners.domain import offers as lifecycle
from services.partners.domain.offers import Offer
from services.partners.domain.placement import (
    RESTARTABLE,
    RouteRequest,
    RouteRequestStatus,
    queue_rank,
    reason_to_give_up,
    should_wait,
)
from services.partners.domain.routing import NeedToRoute, route, why
from services.partners.service_layer import gaps
from services.partners.service_layer.notifications import (
    OFFER_EXPIRED,
    OFFER_MADE,
    OfferNotice,
    queue_offer_email,
)
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from services.partners.service_layer.webhooks import queue_webhook
from services.partners.service_layer.working_time import deadline_rules as deadline_rules
from services.partners.service_layer.working_time import service_deadline_rules
from shared.events.payloads import (
    CaseUnroutable,
    NeedWaiting,
    OfferExpired,
    OfferWithdrawn,
    ReferralOffered,
    RoutingReasons,
)
from shared.vocabulary import LawfulBasis, OfferStatus, PartnerKind


@dataclass(frozen=True)
class CaseToRoute:
    """A case ready for routing, as the referrals service shared it."""

    case_id: str
    council: str
    packet: dict[str, Any]  # the routing packet, as JSON
    lawful_basis: LawfulBasis
    consent_kinds: list[PartnerKind]
    ready_at: datetime  # when the referrals service said so: the offers' clock starts then
    agreement_reference: str | None = None  # the data-sharing agreement the case names


def offer_fields(offer: Offer, now: datetime) -> dict[str, Any]:
    """What every offer event says about its offer."""
    return {
        "offer_id": offer.id,
        "case_id": offer.case_id,
        "need": offer.need,
        "partner_id": offer.organization_id,
        "at": now,
    }


def _need_to_route(
    request: RouteRequest, tried: Iterable[str], now: datetime, zone: str
) -> NeedToRoute:
    packet = request.packet or {}
    return NeedToRoute(
        need=request.need,
        council=request.council,
        district=packet.get("postcode_district"),
        age=packet.get("age_years"),
        language=packet.get("preferred_language", "en"),
        interpreter_needed=packet.get("interpreter_needed", False),
        lawful_basis=request.lawful_basis,
        consent_kinds=request.consent_kinds,
        at=now,
        today=now.astimezone(ZoneInfo(zone)).date(),  # agreements' dates are local days
        excluded_organizations=frozenset(tried),
        agreement_reference=request.agreement_reference,
    )


async def place(uow: PartnersUnitOfWork, request_id: str, *, now: datetime) -> Offer | None:
    """Inside the caller's transaction: offer the need to the best candidate not yet tried.
    Every service that could take it full (or paused): the need waits in the queue for a
    place (``need waiting`` tells the referrals service, once a waiting episode). None that
    could, or too many tries: it goes back to the council as unroutable, with the reason in
    plain words (said once, however often it is tried again)."""
    session, settings = uow.session, uow.settings
    request = await store.request_by_id(session, request_id)
    need = request.need
    tried = await offer_store.organizations_offered(session, request_id)
    to_route = _need_to_route(request, tried, now, settings.working_time_zone)
    candidates = await store.candidates(session, need.value)
    decision = route(to_route, candidates)
    # The chosen service's row is locked and its load counted again: a placement racing
    # for its last place waits for this one and then sees it full; route again without it.
    for _ in range(len(candidates)):
        chosen_now = decision.chosen
        if chosen_now is None or await store.has_room(session, chosen_now.candidate.service_id):
            break
        decision = route(to_route, await store.candidates(session, need.value))
    if should_wait(decision, request.attempts, settings.max_offers_per_need):
        # A new waiting episode starts now (the referrals service is told, once); a need
        # already waiting keeps its place and its start.
        episode = request.status is not RouteRequestStatus.WAITING
        since = now if episode or request.waiting_since is None else request.waiting_since
        await store.update_request(
            session,
            request_id,
            status=RouteRequestStatus.WAITING.value,
            waiting_since=since,
            queue_rank=queue_rank(request.urgency),
            unroutable_reason=decision.unroutable_reason,  # why it waits, in plain words
            unroutable_since=None,
            updated_at=now,
        )
        if episode:
            await uow.outbox.add(
                session,
                NeedWaiting(case_id=request.case_id, need=need, since=since),
                subject=request.case_id,
            )
        return None
    give_up = reason_to_give_up(decision, need, request.attempts, settings.max_offers_per_need)
    if give_up is not None:
        already = request.status is RouteRequestStatus.UNROUTABLE
        began = {} if already else {"unroutable_since": now}  # a retry keeps when it began
        await store.update_request(
            session,
            request_id,
            status=RouteRequestStatus.UNROUTABLE.value,
            unroutable_reason=give_up,
            waiting_since=None,
            updated_at=now,
            **began,
        )
        if not already:
            await uow.outbox.add(
                session,
                CaseUnroutable(case_id=request.case_id, needs=[need], reasons=[give_up], at=now),
                subject=request.case_id,
            )
            await gaps.note_unroutable(uow, request.council, need, now=now)  # once a gap
        return None
    chosen = decision.chosen
    assert chosen is not None  # reason_to_give_up gives a reason whenever none was chosen
    packet = request.packet or {}
    service = chosen.candidate
    rules = await service_deadline_rules(session, settings, service.service_id)
    respond_by = lifecycle.respond_by(now, packet.get("urgency"), rules)
    reasons = why(decision)
    assert reasons is not None  # a candidate was chosen
    routing_reasons = RoutingReasons(
        score=reasons.score,
        passed=list(reasons.passed),
        ranking=list(reasons.ranking),
        excluded=list(reasons.excluded),
    )
    offer = await offer_store.add(
        session,
        id=uow.new_id(),
        request_id=request_id,
        case_id=request.case_id,
        need=need.value,
        service_id=service.service_id,
        organization_id=service.organization_id,
        status=OfferStatus.OFFERED.value,
        respond_by=respond_by,
        attempt=request.attempts + 1,
        decision={
            "score": chosen.score,
            "reasons": list(chosen.reasons),
            "excluded": decision.excluded,
            "why": routing_reasons.model_dump(mode="json"),
        },
        created_at=now,
        updated_at=now,
    )
    await store.update_request(
        session,
        request_id,
        status=RouteRequestStatus.PLACED.value,
        attempts=offer.attempt,
        waiting_since=None,
        unroutable_since=None,
        queue_rank=None,
        updated_at=now,
    )
    await uow.outbox.add(
        session,
        ReferralOffered(
            offer_id=offer.id,
            case_id=offer.case_id,
            need=need,
            partner_id=service.organization_id,
            partner_name=service.organization_name,
            service_id=service.service_id,
            service_name=service.service_name,
            respond_by=respond_by,
            attempt=offer.attempt,
            routing_reasons=routing_reasons,
            at=now,
        ),
        subject=offer.case_id,
    )
    await queue_webhook(
        uow,
        service.organization_id,
        offer.id,
        "offer.made",
        {
            "offer_id": offer.id,
            "need": need.value,
            "respond_by": respond_by.isoformat(),
            "inbox_url": f"{settings.public_base_url}/v1/inbox/offers/{offer.id}",
            "packet": request.packet,
        },
        now=now,
    )
    urgency = str(packet.get("urgency") or "")
    notice = OfferNotice(OFFER_MADE, offer.id, need, urgency, respond_by)
    await queue_offer_email(uow, service.organization_id, notice, now=now)
    return offer


async def offer_waiting(
    uow: PartnersUnitOfWork,
    needs: Iterable[str] | None,
    *,
    now: datetime,
    limit: int = 50,
    council: str | None = None,
) -> int:
    """Inside the caller's transaction, after a place may have freed or a service may have
    become able to take a need (an outcome, a decline, an expiry, a withdrawal, a resume, a
    capacity raise, a new or changed service or agreement): the needs waiting for ``needs``
    (None: all) in ``council``'s cases (None: every council's; an agreement is one
    council's), most urgent and longest waiting first, then the unroutable ones, are tried
    again. How many were offered."""
    wanted = None if needs is None else set(needs)
    placed = 0
    for request_id in await store.queued(uow.session, wanted, limit, council):
        if await place(uow, request_id, now=now) is not None:
            placed += 1
    return placed


async def offer_freed_place(uow: PartnersUnitOfWork, service_id: str, *, now: datetime) -> int:
    """Inside the caller's transaction: a place at ``service_id`` may have freed."""
    needs = await store.needs_of_service(uow.session, service_id)
    return await offer_waiting(uow, needs, now=now)


async def offer_waiting_needs(uow: PartnersUnitOfWork) -> int:
    """The worker's safety net: every waiting (or unroutable) need tried again."""
    async with uow.transaction():
        return await offer_waiting(uow, None, now=uow.now())


async def route_case(uow: PartnersUnitOfWork, case: CaseToRoute) -> None:
    """A case ready for routing: one request per need; new ones, and ones that had become
    unroutable or closed, are placed; the others keep their offer and get the new packet."""
    async with uow.transaction():
        session, now = uow.session, case.ready_at
        values = {
            "packet": case.packet,
            "lawful_basis": case.lawful_basis.value,
            "consent_kinds": [kind.value for kind in case.consent_kinds],
            "agreement_reference": case.agreement_reference,
            "council": case.council,
            "updated_at": now,
        }
        for need in case.packet["needs"]:
            existing = await store.request_for(session, case.case_id, need)
            if existing is None:
                request_id = uow.new_id()
                await store.add_request(
                    session,
                    request_id,
                    case_id=case.case_id,
                    need=need,
                    status=RouteRequestStatus.OPEN.value,
                    attempts=0,
                    created_at=now,
                    **values,
                )
            elif existing.status in RESTARTABLE:
                request_id = existing.id
                await store.update_request(
                    session,
                    request_id,
                    status=RouteRequestStatus.OPEN.value,
                    attempts=0,
                    **values,
                )
            else:
                await store.update_request(session, existing.id, **values)
                continue
            await place(uow, request_id, now=now)


async def end_offer(
    uow: PartnersUnitOfWork,
    offer: Offer,
    target: OfferStatus,
    event: BaseModel,
    *,
    webhook: dict[str, Any],
    now: datetime,
    **values: Any,
) -> None:
    """Inside the caller's transaction: an offer ended by something other than the partner
    (withdrawn, expired): the new status, its event, and the partner told by webhook."""
    status = lifecycle.transition(offer.status, target)
    await offer_store.update_offer(uow.session, offer.id, now=now, status=status.value, **values)
    await uow.outbox.add(uow.session, event, subject=offer.case_id)
    await queue_webhook(
        uow,
        offer.organization_id,
        offer.id,
        f"offer.{status}",
        {"offer_id": offer.id, **webhook},
        now=now,
    )


async def withdraw_offers(
    uow: PartnersUnitOfWork, offers: Iterable[Offer], reason: str, *, now: datetime
) -> None:
    """Inside the caller's transaction: each offer withdrawn, with the reason."""
    for offer in offers:
        await end_offer(
            uow,
            offer,
            OfferStatus.WITHDRAWN,
            OfferWithdrawn(**offer_fields(offer, now), reason=reason),
            webhook={"reason": reason},
            now=now,
            note=reason,
        )


async def stop_case(uow: PartnersUnitOfWork, case_id: str, reason: str, *, at: datetime) -> None:
    """Consent withdrawn or case closed (``at``): open offers are withdrawn and the packet
    deleted, so partners lose access."""
    async with uow.transaction():
        await store.close_requests(uow.session, case_id, at)
        open_offers = await offer_store.of_case(uow.session, case_id, lifecycle.ACTIVE_STATUSES)
        await withdraw_offers(uow, open_offers, reason, now=at)
        for service_id in sorted({offer.service_id for offer in open_offers}):
            await offer_freed_place(uow, service_id, now=at)


async def expire_due_offers(uow: PartnersUnitOfWork, *, limit: int = 100) -> int:
    """Offers not answered in time: expired, and the need handed on. How many expired."""
    async with uow.transaction():
        now = uow.now()
        due = await offer_store.due(uow.session, lifecycle.PENDING_STATUSES, now, limit)
        for offer in due:
            await end_offer(
                uow,
                offer,
                OfferStatus.EXPIRED,
                OfferExpired(**offer_fields(offer, now)),
                webhook={},
                now=now,
            )
            notice = OfferNotice(OFFER_EXPIRED, offer.id, offer.need, "", offer.respond_by)
            await queue_offer_email(uow, offer.organization_id, notice, now=now)
            await place(uow, offer.request_id, now=now)
            await offer_freed_place(uow, offer.service_id, now=now)
    return len(due)
