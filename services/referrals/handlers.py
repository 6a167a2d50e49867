"""The events the referrals service consumes: risk assessments and flags, what partners do
with the offers of a case (and a need waiting for a place), and the gaps in service they
detect. Each handler turns its event into a use case call; it runs inside the consumer's
transaction, after the inbox has recorded the event, so a repeat delivery never reaches it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from services.referrals.service_layer import cases, gaps, subject_access
from services.referrals.service_layer import erasure as _erasure
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared.erasure import guarded as _guarded
from shared.events.payloads import (
    CaseUnroutable,
    GapDetected,
    NeedWaiting,
    OfferAccepted,
    OfferDeclined,
    OfferExpired,
    OfferOverdue,
    OfferProgressRecorded,
    OfferWithdrawn,
    OutcomeRecorded,
    PartnersErasureConfirmed,
    PartnersSubjectAccessContributed,
    Reason,
    ReferralOffered,
    ResidentFlagged,
    RiskAssessed,
    RiskErasureConfirmed,
    RiskSubjectAccessContributed,
)
from shared.messaging.handlers import EventHandlers
from shared.subject_access import PARTNERS, RISK
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


@EVENT_HANDLERS.on(OfferOverdue)
async def on_offer_overdue(event: OfferOverdue, uow: ReferralsUnitOfWork) -> None:
    overdue = cases.OverdueOffer(
        offer_id=event.offer_id,
        case_id=event.case_id,
        need=event.need,
        partner_id=event.partner_id,
        follow_up_by=event.follow_up_by,
        at=event.at,
    )
    await cases.record_offer_overdue(uow, overdue)


@EVENT_HANDLERS.on(CaseUnroutable)
async def on_case_unroutable(event: CaseUnroutable, uow: ReferralsUnitOfWork) -> None:
    unroutable = cases.Unroutable(
        case_id=event.case_id,
        reasons=tuple(event.reasons),
        at=event.at,
        needs=tuple(event.needs),
    )
    await cases.record_unroutable(uow, unroutable)


@EVENT_HANDLERS.on(NeedWaiting)
async def on_need_waiting(event: NeedWaiting, uow: ReferralsUnitOfWork) -> None:
    await cases.record_need_waiting(uow, cases.NeedWaiting(event.case_id, event.need, event.since))


@EVENT_HANDLERS.on(GapDetected)
async def on_gap_detected(event: GapDetected, uow: ReferralsUnitOfWork) -> None:
    gap = gaps.Gap(
        gap_id=event.gap_id,
        council=event.council,
        need=event.need.value,
        reason=event.reason.value,
        detail=event.detail,
        postcode_districts=tuple(event.postcode_districts),
        languages=tuple(event.languages),
        age_bands=tuple(event.age_bands),
        residents_waiting=event.residents_waiting,
        waiting_since=event.waiting_since,
        longest_wait_hours=event.longest_wait_hours,
        detected_at=event.detected_at,
    )
    await gaps.record_gap(uow, gap)


# -- subject access: the other services' answers, stored against the request --------------


@EVENT_HANDLERS.on(PartnersSubjectAccessContributed)
async def on_partners_subject_access(
    event: PartnersSubjectAccessContributed, uow: ReferralsUnitOfWork
) -> None:
    await subject_access.record_contribution(uow, PARTNERS, event)


@EVENT_HANDLERS.on(RiskSubjectAccessContributed)
async def on_risk_subject_access(
    event: RiskSubjectAccessContributed, uow: ReferralsUnitOfWork
) -> None:
    await subject_access.record_contribution(uow, RISK, event)


# -- erasure: the other services' confirmations; every other handler behind the tombstones --


@EVENT_HANDLERS.on(PartnersErasureConfirmed)
async def on_partners_erasure_confirmed(
    event: PartnersErasureConfirmed, uow: ReferralsUnitOfWork
) -> None:
    await _erasure.record_confirmation(uow, PARTNERS, event)


@EVENT_HANDLERS.on(RiskErasureConfirmed)
async def on_risk_erasure_confirmed(event: RiskErasureConfirmed, uow: ReferralsUnitOfWork) -> None:
    await _erasure.record_confirmation(uow, RISK, event)


# An event naming an erased case or resident key (replayed, or still in a topic) re-creates
# nothing: a flag for an erased resident's key opens no outreach case (shared/erasure.py).
EVENT_HANDLERS = _guarded(
    EVENT_HANDLERS, lambda uow: uow.settings.resident_key_secret.get_secret_value()
)

__all__ = ["EVENT_HANDLERS"]
