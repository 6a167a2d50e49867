"""The events the referrals service consumes: risk assessments and flags, and what
partners do with the offers of a case. Each runs inside the consumer's transaction,
after the inbox has recorded the event, so a repeat delivery never reaches it."""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping

from services.referrals.adapters.tables import cases, offers
from services.referrals.cases import (
    PARTNERS_SERVICE,
    RISK_SERVICE,
    add_timeline,
    lock_case,
    move_if_allowed,
    record_assessment,
    route_if_allowed,
)
from services.referrals.domain.lifecycle import CaseStatus
from services.referrals.domain.sharing import case_outcome, priority
from services.referrals.intake import (
    ResidentFacts,
    find_or_create_resident,
    open_case,
    open_case_of,
)
from shared.events.catalogue import event_name
from shared.events.payloads import (
    CaseUnroutable,
    FlaggedIdentity,
    OfferAccepted,
    OfferDeclined,
    OfferExpired,
    OfferProgressRecorded,
    OfferWithdrawn,
    OutcomeRecorded,
    ReferralOffered,
    ResidentFlagged,
    RiskAssessed,
)
from shared.identity import unseal_identity
from shared.messaging.consumer import Delivery, Handler
from shared.vocabulary import LawfulBasis, Outcome

log = logging.getLogger(__name__)

# Offer states that still need something from a partner.
_PENDING = {"offered", "accepted", "in_progress"}


async def _case(delivery: Delivery, case_id: str) -> RowMapping | None:
    case = await lock_case(delivery.session, case_id)
    if case is None:
        log.warning(
            "event for a case this service does not hold; ignored",
            extra={"case_id": case_id, "event_type": delivery.event.type},
        )
    return case


async def on_risk_assessed(delivery: Delivery) -> None:
    event = delivery.payload
    assert isinstance(event, RiskAssessed)
    case = await _case(delivery, event.case_id)
    if case is None:
        return
    case = await record_assessment(
        delivery.session,
        case,
        level=event.level,
        score=event.score,
        reasons=[r.model_dump() for r in event.reasons],
        suggested_needs=[n.value for n in event.suggested_needs],
        ruleset_version=event.ruleset_version,
        now=event.assessed_at,
    )
    if case["status"] == CaseStatus.RECEIVED:
        case = await move_if_allowed(
            delivery.session,
            delivery.outbox,
            case,
            CaseStatus.ASSESSED,
            actor=RISK_SERVICE,
            now=event.assessed_at,
            reason=f"risk {event.level.value}",
        )
        await route_if_allowed(
            delivery.session, delivery.outbox, case, actor=RISK_SERVICE, now=event.assessed_at
        )


async def on_resident_flagged(delivery: Delivery) -> None:
    """An outreach case for the council team: public task, waiting for consent. Nothing goes
    to a partner until a caseworker records the resident's consent."""
    event = delivery.payload
    assert isinstance(event, ResidentFlagged)
    if event.council not in delivery.settings.councils:
        log.warning(
            "flag for a council this deployment does not serve; ignored",
            extra={"council": event.council},
        )
        return
    secret = delivery.settings.resident_key_secret.get_secret_value()
    who = FlaggedIdentity.model_validate(unseal_identity(secret, event.sealed_identity))
    facts = ResidentFacts(
        given_name=who.given_name,
        family_name=who.family_name,
        date_of_birth=who.date_of_birth,
        postcode=who.postcode,
        uprn=who.uprn,
        address=who.address,
        phone=who.phone,
        email=who.email,
        council_reference=who.council_reference,
        preferred_contact="phone" if who.phone else "email" if who.email else "letter",
    )
    session, now = delivery.session, event.flagged_at
    resident_id, _ = await find_or_create_resident(session, event.council, facts, now=now)
    case = await open_case_of(session, resident_id, event.council)
    if case is None:
        needs = [n.value for n in event.suggested_needs]
        case = await open_case(
            session,
            delivery.outbox,
            resident_id=resident_id,
            council=event.council,
            origin="flag",
            status=CaseStatus.AWAITING_CONSENT,
            keys=[event.resident_key],
            actor=RISK_SERVICE,
            now=now,
            values={
                "priority": priority(event.level, event.level),
                "urgency": event.level.value,
                "needs": needs,
                "circumstances": [],
                "lawful_basis": LawfulBasis.PUBLIC_TASK.value,
                "status_reason": "flagged by the risk rules; seek the resident's consent",
            },
        )
    await record_assessment(
        session,
        case,
        level=event.level,
        score=event.score,
        reasons=[r.model_dump() for r in event.reasons],
        suggested_needs=[n.value for n in event.suggested_needs],
        ruleset_version=event.ruleset_version,
        now=now,
    )


async def _record_offer(delivery: Delivery, offer_id: str, values: dict) -> None:
    statement = pg_insert(offers).values(id=offer_id, **values)
    await delivery.session.execute(
        statement.on_conflict_do_update(
            index_elements=[offers.c.id],
            set_={k: statement.excluded[k] for k in values if k not in ("case_id", "need")},
        )
    )


async def on_offer_made(delivery: Delivery) -> None:
    event = delivery.payload
    assert isinstance(event, ReferralOffered)
    case = await _offer_changed(
        delivery,
        "offered",
        f"offered to {event.partner_name} ({event.service_name}), "
        f"answer by {event.respond_by:%d %b %H:%M}",
        partner_name=event.partner_name,
        service_name=event.service_name,
        respond_by=event.respond_by,
    )
    if case is not None and case["status"] in (CaseStatus.READY_FOR_ROUTING, CaseStatus.UNROUTABLE):
        await move_if_allowed(
            delivery.session,
            delivery.outbox,
            case,
            CaseStatus.OFFERED,
            actor=PARTNERS_SERVICE,
            now=event.at,
        )


async def _offer_changed(
    delivery: Delivery, state: str, action: str, **values: object
) -> RowMapping | None:
    event = delivery.payload
    assert isinstance(
        event,
        ReferralOffered
        | OfferAccepted
        | OfferDeclined
        | OfferExpired
        | OfferWithdrawn
        | OfferProgressRecorded
        | OutcomeRecorded,
    )
    case = await _case(delivery, event.case_id)
    if case is None:
        return None
    await _record_offer(
        delivery,
        event.offer_id,
        {
            "case_id": event.case_id,
            "need": event.need.value,
            "partner_id": event.partner_id,
            "status": state,
            "updated_at": event.at,
            **values,
        },
    )
    await add_timeline(
        delivery.session,
        case["id"],
        PARTNERS_SERVICE,
        f"{event.need.value}: {action}",
        now=event.at,
        detail=str(values.get("note") or values.get("decline_reason") or "") or None,
    )
    return case


async def on_offer_accepted(delivery: Delivery) -> None:
    case = await _offer_changed(delivery, "accepted", "offer accepted by the partner")
    if case is not None and case["status"] == CaseStatus.OFFERED:
        await move_if_allowed(
            delivery.session,
            delivery.outbox,
            case,
            CaseStatus.ACCEPTED,
            actor=PARTNERS_SERVICE,
            now=delivery.payload.at,
        )  # type: ignore[attr-defined]


async def on_offer_declined(delivery: Delivery) -> None:
    event = delivery.payload
    assert isinstance(event, OfferDeclined)
    # The partners service hands the need on by itself; the case stays as it is.
    await _offer_changed(
        delivery,
        "declined",
        "offer declined, handed on",
        decline_reason=event.reason.value,
        note=event.note,
    )


async def on_offer_expired(delivery: Delivery) -> None:
    await _offer_changed(delivery, "expired", "no answer in time, handed on")


async def on_offer_withdrawn(delivery: Delivery) -> None:
    event = delivery.payload
    assert isinstance(event, OfferWithdrawn)
    await _offer_changed(delivery, "withdrawn", "offer withdrawn", note=event.reason)


async def on_progress(delivery: Delivery) -> None:
    event = delivery.payload
    assert isinstance(event, OfferProgressRecorded)
    case = await _offer_changed(
        delivery, "in_progress", "partner working with the resident", note=event.note
    )
    if case is not None and case["status"] == CaseStatus.ACCEPTED:
        await move_if_allowed(
            delivery.session,
            delivery.outbox,
            case,
            CaseStatus.IN_PROGRESS,
            actor=PARTNERS_SERVICE,
            now=event.at,
        )


async def on_outcome(delivery: Delivery) -> None:
    """Once every offer still in play has an outcome, the case closes with the best one."""
    event = delivery.payload
    assert isinstance(event, OutcomeRecorded)
    case = await _offer_changed(
        delivery,
        "outcome_recorded",
        f"outcome recorded: {event.outcome.value}",
        outcome=event.outcome.value,
        note=event.note,
    )
    if case is None:
        return
    rows = (
        await delivery.session.execute(
            select(offers.c.status, offers.c.outcome).where(offers.c.case_id == case["id"])
        )
    ).all()
    if any(row.status in _PENDING for row in rows):
        return
    outcome = case_outcome(Outcome(row.outcome) for row in rows if row.outcome)
    if outcome is not None:
        await move_if_allowed(
            delivery.session,
            delivery.outbox,
            case,
            CaseStatus.CLOSED,
            actor=PARTNERS_SERVICE,
            now=event.at,
            outcome=outcome,
            reason="every offer has an outcome",
        )


async def on_unroutable(delivery: Delivery) -> None:
    event = delivery.payload
    assert isinstance(event, CaseUnroutable)
    case = await _case(delivery, event.case_id)
    if case is None:
        return
    await delivery.session.execute(
        update(cases)
        .where(cases.c.id == case["id"])
        .values(unroutable_reasons=event.reasons, updated_at=event.at)
    )
    await move_if_allowed(
        delivery.session,
        delivery.outbox,
        case,
        CaseStatus.UNROUTABLE,
        actor=PARTNERS_SERVICE,
        now=event.at,
        reason="; ".join(event.reasons),
    )


EVENT_HANDLERS: dict[str, Handler] = {
    event_name(RiskAssessed): on_risk_assessed,
    event_name(ResidentFlagged): on_resident_flagged,
    event_name(ReferralOffered): on_offer_made,
    event_name(OfferAccepted): on_offer_accepted,
    event_name(OfferDeclined): on_offer_declined,
    event_name(OfferExpired): on_offer_expired,
    event_name(OfferWithdrawn): on_offer_withdrawn,
    event_name(OfferProgressRecorded): on_progress,
    event_name(OutcomeRecorded): on_outcome,
    event_name(CaseUnroutable): on_unroutable,
}

__all__ = ["EVENT_HANDLERS"]
