"""The events the risk service consumes: referrals received (assessed at once, with whatever
signals it holds for the resident), cases opened and closed, and residents merged."""

from __future__ import annotations

from services.risk.domain.rules import ReferralFacts
from services.risk.service_layer import assessments, profiles
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared.events.payloads import CaseClosed, CaseOpened, ReferralReceived, ResidentsMerged
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
