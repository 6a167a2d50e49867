"""The events the partners service consumes: cases ready for routing, consent withdrawn,
cases closed. Each becomes one placement use case."""

from __future__ import annotations

from services.partners.service_layer import erasure as _erasure
from services.partners.service_layer.placement import CaseToRoute, route_case, stop_case
from services.partners.service_layer.subject_access import answer_subject_access
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from shared.erasure import guarded as _guarded
from shared.events.payloads import (
    CaseClosed,
    CaseReadyForRouting,
    ConsentWithdrawn,
    ErasureRequested,
    SharingStopped,
    SubjectAccessRequested,
)
from shared.messaging.handlers import EventHandlers

EVENT_HANDLERS = EventHandlers[PartnersUnitOfWork]()


@EVENT_HANDLERS.on(CaseReadyForRouting)
async def on_case_ready_for_routing(event: CaseReadyForRouting, uow: PartnersUnitOfWork) -> None:
    case = CaseToRoute(
        case_id=event.case_id,
        council=event.council,
        packet=event.packet.model_dump(mode="json"),
        lawful_basis=event.lawful_basis,
        consent_kinds=list(event.consent_partner_kinds),
        agreement_reference=event.data_sharing_agreement,
        ready_at=uow.event.time if uow.event else uow.now(),  # the envelope's time
    )
    await route_case(uow, case)


# What the partner is told when sharing stops (expiry is not the resident's doing).
_STOPPED_BECAUSE = {
    SharingStopped.WITHDRAWN: "the resident withdrew consent",
    SharingStopped.EXPIRED: "the resident's consent expired",
    SharingStopped.BASIS_CHANGED: "the council no longer shares this case",
}


@EVENT_HANDLERS.on(ConsentWithdrawn)
async def on_consent_withdrawn(event: ConsentWithdrawn, uow: PartnersUnitOfWork) -> None:
    await stop_case(uow, event.case_id, _STOPPED_BECAUSE[event.reason], at=event.withdrawn_at)


@EVENT_HANDLERS.on(CaseClosed)
async def on_case_closed(event: CaseClosed, uow: PartnersUnitOfWork) -> None:
    reason = "the council withdrew the case" if event.withdrawn else "the council closed the case"
    await stop_case(uow, event.case_id, reason, at=event.closed_at)


@EVENT_HANDLERS.on(SubjectAccessRequested)
async def on_subject_access_requested(
    event: SubjectAccessRequested, uow: PartnersUnitOfWork
) -> None:
    await answer_subject_access(uow, event)


# -- erasure; every other handler behind the tombstones ------------------------------------


@EVENT_HANDLERS.on(ErasureRequested)
async def on_erasure_requested(event: ErasureRequested, uow: PartnersUnitOfWork) -> None:
    await _erasure.erase(uow, event)


# An event naming an erased case (replayed, or still in a topic) re-creates nothing: a
# ready-for-routing of an erased case routes nothing (shared/erasure.py).
EVENT_HANDLERS = _guarded(EVENT_HANDLERS, _erasure.secret_of, exempt=[ErasureRequested])
