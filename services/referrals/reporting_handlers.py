"""The events the ``referrals-reporting`` consumer group turns into the reporting model: the
referrals service's own case events, what partners do with the offers and their services'
capacity, and risk's flags and assessments (docs/referrals.md, Reporting). A consumer
group of its own: it reads every topic from the start when first deployed, catches up
after a restart, and a slow report never holds up the cases. Each handler runs in the
consumer's transaction after the inbox row (a repeat delivery never reaches it), and each
write is an order-independent upsert."""

from __future__ import annotations

from dataclasses import replace

from services.referrals.domain.reporting import DryRunRuleFact
from services.referrals.service_layer import reporting
from services.referrals.service_layer.reporting import OfferMilestone
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared.erasure import guarded as _guarded
from shared.events.payloads import (
    CaseClosed,
    CaseOpened,
    CaseReadyForRouting,
    CaseUnroutable,
    ConsentWithdrawn,
    ErasureRequested,
    FlaggedIdentity,
    NeedWaiting,
    OfferAccepted,
    OfferDeclined,
    OfferExpired,
    OfferWithdrawn,
    OutcomeRecorded,
    ReferralOffered,
    ReferralReceived,
    ResidentFlagged,
    RiskAssessed,
    RulesetDryRunCompleted,
    ServiceCapacityChanged,
)
from shared.identity import unseal_identity
from shared.messaging.handlers import EventHandlers

REPORTING_GROUP = "referrals-reporting"
REPORTING_HANDLERS = EventHandlers[ReferralsUnitOfWork]()


@REPORTING_HANDLERS.on(CaseOpened)
async def on_case_opened(event: CaseOpened, uow: ReferralsUnitOfWork) -> None:
    await reporting.case_opened(
        uow,
        case_id=event.case_id,
        council=event.council,
        origin=event.origin,
        resident_keys=event.resident_keys,
        opened_at=event.opened_at,
        flagged_at=event.flagged_at,
    )


@REPORTING_HANDLERS.on(ReferralReceived)
async def on_referral_received(event: ReferralReceived, uow: ReferralsUnitOfWork) -> None:
    await reporting.referral_received(
        uow,
        referral_id=event.referral_id,
        case_id=event.case_id,
        council=event.council,
        source=event.referrer_kind,
        resident_keys=event.resident_keys,
        needs=[n.value for n in event.needs],
        age_years=event.age_years,
        received_at=event.received_at,
    )


@REPORTING_HANDLERS.on(CaseReadyForRouting)
async def on_case_ready(event: CaseReadyForRouting, uow: ReferralsUnitOfWork) -> None:
    # The packet's coarse attributes only: its name, contact and summary are not read.
    packet = event.packet
    await reporting.case_ready_for_routing(
        uow,
        case_id=event.case_id,
        council=event.council,
        needs=[n.value for n in packet.needs],
        age_years=packet.age_years,
        language=packet.preferred_language,
        area=packet.postcode_district,
    )


@REPORTING_HANDLERS.on(CaseClosed)
async def on_case_closed(event: CaseClosed, uow: ReferralsUnitOfWork) -> None:
    await reporting.case_closed(
        uow,
        case_id=event.case_id,
        council=event.council,
        outcome=event.outcome.value if event.outcome else None,
        withdrawn=event.withdrawn,
        closed_at=event.closed_at,
    )


@REPORTING_HANDLERS.on(ConsentWithdrawn)
async def on_consent_withdrawn(event: ConsentWithdrawn, uow: ReferralsUnitOfWork) -> None:
    await reporting.consent_withdrawn(
        uow, case_id=event.case_id, council=event.council, at=event.withdrawn_at
    )


def _milestone(
    event: ReferralOffered
    | OfferAccepted
    | OfferDeclined
    | OfferExpired
    | OfferWithdrawn
    | OutcomeRecorded,
) -> OfferMilestone:
    return OfferMilestone(
        offer_id=event.offer_id,
        case_id=event.case_id,
        need=event.need.value,
        partner_id=event.partner_id,
    )


@REPORTING_HANDLERS.on(ReferralOffered)
async def on_offered(event: ReferralOffered, uow: ReferralsUnitOfWork) -> None:
    await reporting.offer_milestone(uow, replace(_milestone(event), offered_at=event.at))


@REPORTING_HANDLERS.on(OfferAccepted)
async def on_accepted(event: OfferAccepted, uow: ReferralsUnitOfWork) -> None:
    await reporting.offer_milestone(uow, replace(_milestone(event), accepted_at=event.at))


@REPORTING_HANDLERS.on(OfferDeclined)
async def on_declined(event: OfferDeclined, uow: ReferralsUnitOfWork) -> None:
    await reporting.offer_milestone(
        uow, replace(_milestone(event), declined_at=event.at, decline_reason=event.reason.value)
    )


@REPORTING_HANDLERS.on(OfferExpired)
async def on_expired(event: OfferExpired, uow: ReferralsUnitOfWork) -> None:
    await reporting.offer_milestone(uow, replace(_milestone(event), expired_at=event.at))


@REPORTING_HANDLERS.on(OfferWithdrawn)
async def on_withdrawn(event: OfferWithdrawn, uow: ReferralsUnitOfWork) -> None:
    await reporting.offer_milestone(uow, replace(_milestone(event), withdrawn_at=event.at))


@REPORTING_HANDLERS.on(OutcomeRecorded)
async def on_outcome(event: OutcomeRecorded, uow: ReferralsUnitOfWork) -> None:
    await reporting.offer_milestone(
        uow, replace(_milestone(event), outcome=event.outcome.value, outcome_at=event.at)
    )


@REPORTING_HANDLERS.on(CaseUnroutable)
async def on_unroutable(event: CaseUnroutable, uow: ReferralsUnitOfWork) -> None:
    await reporting.needs_unroutable(
        uow, case_id=event.case_id, needs=[n.value for n in event.needs], at=event.at
    )


@REPORTING_HANDLERS.on(NeedWaiting)
async def on_need_waiting(event: NeedWaiting, uow: ReferralsUnitOfWork) -> None:
    await reporting.need_waiting(
        uow, case_id=event.case_id, need=event.need.value, since=event.since
    )


@REPORTING_HANDLERS.on(ResidentFlagged)
async def on_resident_flagged(event: ResidentFlagged, uow: ReferralsUnitOfWork) -> None:
    if event.council not in uow.settings.councils:
        return  # as the cases consumer: a council this deployment does not serve
    secret = uow.settings.resident_key_secret.get_secret_value()
    # Opened for the age band and postcode district only; nothing else of it is kept.
    who = FlaggedIdentity.model_validate(unseal_identity(secret, event.sealed_identity))
    await reporting.resident_flagged(
        uow,
        reporting.Flag(
            resident_key=event.resident_key,
            council=event.council,
            level=event.level.value,
            ruleset_version=event.ruleset_version,
            rule_ids=tuple(r.rule_id for r in event.reasons),
            returning=event.returning,
            needs=tuple(n.value for n in event.suggested_needs),
            flagged_at=event.flagged_at,
            date_of_birth=who.date_of_birth,
            postcode=who.postcode,
        ),
    )


@REPORTING_HANDLERS.on(RiskAssessed)
async def on_risk_assessed(event: RiskAssessed, uow: ReferralsUnitOfWork) -> None:
    await reporting.risk_assessed(
        uow,
        case_id=event.case_id,
        level=event.level.value,
        ruleset_version=event.ruleset_version,
        rule_ids=[r.rule_id for r in event.reasons],
        assessed_at=event.assessed_at,
    )


@REPORTING_HANDLERS.on(RulesetDryRunCompleted)
async def on_dry_run_completed(event: RulesetDryRunCompleted, uow: ReferralsUnitOfWork) -> None:
    if event.council not in uow.settings.councils:
        return  # as the flags: a council this deployment does not serve
    await reporting.dry_run_completed(
        uow,
        reporting.DryRun(
            council=event.council,
            candidate_version=event.candidate_version,
            in_force_version=event.in_force_version,
            ran_at=event.ran_at,
            residents=event.residents,
            residents_changing_level=event.residents_changing_level,
            levels_in_force={level.value: n for level, n in event.levels_in_force.items()},
            levels_candidate={level.value: n for level, n in event.levels_candidate.items()},
            rules=[
                DryRunRuleFact(r.rule_id, in_force=r.in_force, candidate=r.candidate)
                for r in event.rules
            ],
        ),
    )


@REPORTING_HANDLERS.on(ServiceCapacityChanged)
async def on_capacity_changed(event: ServiceCapacityChanged, uow: ReferralsUnitOfWork) -> None:
    await reporting.capacity_changed(
        uow,
        reporting.CapacityChange(
            service_id=event.service_id,
            partner_id=event.partner_id,
            needs=[n.value for n in event.needs],
            capacity=event.capacity,
            paused=event.paused,
            at=event.at,
        ),
    )


@REPORTING_HANDLERS.on(ErasureRequested)
async def on_erasure_requested(event: ErasureRequested, uow: ReferralsUnitOfWork) -> None:
    await reporting.forget(uow, case_ids=event.case_ids, resident_keys=event.resident_keys)


# Behind the tombstones like the cases consumer: an event about an erased case or key
# re-creates no reporting row. The erasure itself is exempt (it names erased identifiers).
REPORTING_HANDLERS = _guarded(
    REPORTING_HANDLERS,
    lambda uow: uow.settings.resident_key_secret.get_secret_value(),
    exempt=[ErasureRequested],
)

__all__ = ["REPORTING_GROUP", "REPORTING_HANDLERS"]
