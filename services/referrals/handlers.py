"""The events the referrals service consumes: risk assessments and flags, and what
partners do with the offers of a case. Each handler turns its event into a use case call;
it runs inside the consumer's transaction, after the inbox has recorded the event, so a
repeat delivery never reaches it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from services.referrals.service_layer import cases
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared.events.payloads import (
    CaseUnroutable,
    OfferAccepted,
    OfferDeclined,
    OfferExpired,
    OfferProgressRecorded,
    OfferWithdrawn,
    OutcomeRecorded,
    Reason,
    ReferralOffered,
    ResidentFlagged,
    RiskAssessed,
)
from shared.messaging.handlers import EventHandlers
from shared.vocabulary import Need, OfferStatus, RiskLevel

EVENT_HANDLERS = EventHandlers[ReferralsUnitOfWork]()

OfferEvent = (
    ReferralOffered
    | OfferAccepted
    | OfferDeclined
    | OfferExpired
    | OfferWithdrawn
    | OfferProgressRecorded
    | OutcomeRecorded
)


def _finding(
    level: RiskLevel,
    score: int,
    reasons: list[Reason],
    suggested_needs: list[Need],
    ruleset_version: str,
    at: datetime,
) -> cases.RiskFinding:
    return cases.RiskFinding(
        level=level,
        score=score,
        reasons=tuple(cases.RuleReason(r.rule_id, r.explanation) for r in reasons),
        suggested_needs=tuple(suggested_needs),
        ruleset_version=ruleset_version,
        at=at,
    )


def _change(event: OfferEvent, status: OfferStatus) -> cases.OfferChange:
    return cases.OfferChange(
        offer_id=event.offer_id,
        case_id=event.case_id,
        need=event.need,
        partner_id=event.partner_id,
        status=status,
        at=event.at,
    )


@EVENT_HANDLERS.on(RiskAssessed)
async def on_risk_assessed(event: RiskAssessed, uow: ReferralsUnitOfWork) -> None:
    finding = _finding(
        event.level,
        event.score,
        event.reasons,
        event.suggested_needs,
        event.ruleset_version,
        event.assessed_at,
    )
    await cases.record_risk_assessment(uow, event.case_id, finding)


@EVENT_HANDLERS.on(ResidentFlagged)
async def on_resident_flagged(event: ResidentFlagged, uow: ReferralsUnitOfWork) -> None:
    finding = _finding(
        event.level,
        event.score,
        event.reasons,
        event.suggested_needs,
        event.ruleset_version,
        event.flagged_at,
    )
    flag = cases.ResidentFlag(
        council=event.council,
        resident_key=event.resident_key,
        sealed_identity=event.sealed_identity,
        finding=finding,
    )
    await cases.open_outreach_case(uow, flag)


@EVENT_HANDLERS.on(ReferralOffered)
async def on_offer_made(event: ReferralOffered, uow: ReferralsUnitOfWork) -> None:
    change = replace(
        _change(event, OfferStatus.OFFERED),
        partner_name=event.partner_name,
        service_name=event.service_name,
        respond_by=event.respond_by,
        routing_reasons=(
            event.routing_reasons.model_dump(mode="json") if event.routing_reasons else None
        ),
    )
    await cases.record_offer_change(uow, change)


@EVENT_HANDLERS.on(OfferAccepted)
async def on_offer_accepted(event: OfferAccepted, uow: ReferralsUnitOfWork) -> None:
    await cases.record_offer_change(uow, _change(event, OfferStatus.ACCEPTED))


@EVENT_HANDLERS.on(OfferDeclined)
async def on_offer_declined(event: OfferDeclined, uow: ReferralsUnitOfWork) -> None:
    change = replace(
        _change(event, OfferStatus.DECLINED), decline_reason=event.reason, note=event.note
    )
    await cases.record_offer_change(uow, change)


@EVENT_HANDLERS.on(OfferExpired)
async def on_offer_expired(event: OfferExpired, uow: ReferralsUnitOfWork) -> None:
    await cases.record_offer_change(uow, _change(event, OfferStatus.EXPIRED))


@EVENT_HANDLERS.on(OfferWithdrawn)
async def on_offer_withdrawn(event: OfferWithdrawn, uow: ReferralsUnitOfWork) -> None:
    await cases.record_offer_change(
        uow, replace(_change(event, OfferStatus.WITHDRAWN), note=event.reason)
    )


@EVENT_HANDLERS.on(OfferProgressRecorded)
async def on_offer_progress_recorded(
    event: OfferProgressRecorded, uow: ReferralsUnitOfWork
) -> None:
    await cases.record_offer_change(
        uow, replace(_change(event, OfferStatus.IN_PROGRESS), note=event.note)
    )


@EVENT_HANDLERS.on(OutcomeRecorded)
async def on_outcome_recorded(event: OutcomeRecorded, uow: ReferralsUnitOfWork) -> None:
    change = replace(
        _change(event, OfferStatus.OUTCOME_RECORDED), outcome=event.outcome, note=event.note
    )
    await cases.record_offer_change(uow, change)


@EVENT_HANDLERS.on(CaseUnroutable)
async def on_case_unroutable(event: CaseUnroutable, uow: ReferralsUnitOfWork) -> None:
    await cases.record_unroutable(
        uow, cases.Unroutable(case_id=event.case_id, reasons=tuple(event.reasons), at=event.at)
    )


__all__ = ["EVENT_HANDLERS"]
