"""The events the risk service consumes: referrals received (assessed at once, with whatever
signals it holds for the resident), cases opened and closed, residents merged (and un-merged), and
partners' outcomes (the loop closes: help that arrived marks the signals it addressed as
handled)."""

from __future__ import annotations

from services.risk.domain.rules import ReferralFacts
from services.risk.service_layer import assessments, outcomes, profiles, subject_access
from services.risk.service_layer import erasure as _erasure
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared.erasure import guarded as _guarded
from shared.events.payloads import (
    CaseClosed,
    CaseOpened,
    ErasureRequested,
    OutcomeRecorded,
    ReferralReceived,
    ResidentsMerged,
    ResidentsUnmerged,
    SubjectAccessRequested,
)
from shared.messaging.handlers import EventHandlers

EVENT_HANDLERS = EventHandlers[RiskUnitOfWork]()


@EVENT_HANDLERS.on(ReferralReceived)
async def on_referral_received(event: ReferralReceived, uow: RiskUnitOfWork) -> None:
    await assessments.assess_referral(
        uow,
        assessments.ReferralToAssess(
            case_id=event.case_id,
            council=event.council,
            resident_keys=event.resident_keys,
            referral=ReferralFacts(
                circumstances=tuple(c.value for c in event.circumstances),
                needs=tuple(n.value for n in event.needs),
                urgency=event.urgency.value,
                age=event.age_years,
            ),
            received_at=event.received_at,
        ),
    )


@EVENT_HANDLERS.on(CaseOpened)
async def on_case_opened(event: CaseOpened, uow: RiskUnitOfWork) -> None:
    await assessments.record_case_opened(
        uow, case_id=event.case_id, council=event.council, resident_keys=event.resident_keys
    )


@EVENT_HANDLERS.on(CaseClosed)
async def on_case_closed(event: CaseClosed, uow: RiskUnitOfWork) -> None:
    await assessments.record_case_closed(uow, event.case_id)


@EVENT_HANDLERS.on(ResidentsMerged)
async def on_residents_merged(event: ResidentsMerged, uow: RiskUnitOfWork) -> None:
    await profiles.relink_profiles(
        uow,
        profiles.ResidentsMerge(
            council=event.council,
            merged_keys=tuple(event.merged_resident_keys),
            into_keys=tuple(event.into_resident_keys),
        ),
    )


@EVENT_HANDLERS.on(OutcomeRecorded)
async def on_outcome_recorded(event: OutcomeRecorded, uow: RiskUnitOfWork) -> None:
    await outcomes.record_outcome(
        uow,
        outcomes.OutcomeToRecord(
            case_id=event.case_id, need=event.need, outcome=event.outcome, recorded_at=event.at
        ),
    )


@EVENT_HANDLERS.on(ResidentsUnmerged)
async def on_residents_unmerged(event: ResidentsUnmerged, uow: RiskUnitOfWork) -> None:
    await profiles.split_profiles(
        uow,
        profiles.ResidentsUnmerge(
            council=event.council,
            restored_keys=tuple(event.restored_resident_keys),
            into_keys=tuple(event.into_resident_keys),
            restored_case_ids=tuple(event.restored_case_ids),
            reopened_case_id=event.restored_case_id,
        ),
    )


@EVENT_HANDLERS.on(SubjectAccessRequested)
async def on_subject_access_requested(event: SubjectAccessRequested, uow: RiskUnitOfWork) -> None:
    await subject_access.answer_subject_access(uow, event)


# -- erasure; every other handler behind the tombstones ------------------------------------


@EVENT_HANDLERS.on(ErasureRequested)
async def on_erasure_requested(event: ErasureRequested, uow: RiskUnitOfWork) -> None:
    await _erasure.erase(uow, event)


# An event naming an erased case or key (replayed, or still in a topic) re-creates nothing:
# a replayed case-opened opens no profile (shared/erasure.py).
EVENT_HANDLERS = _guarded(EVENT_HANDLERS, _erasure.secret_of, exempt=[ErasureRequested])
