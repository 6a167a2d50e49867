"""The events the partners service consumes: cases ready for routing, consent withdrawn,
cases closed."""

from __future__ import annotations

from services.partners.placement import route_case, stop_case
from shared.events.catalogue import event_name
from shared.events.payloads import CaseClosed, CaseReadyForRouting, ConsentWithdrawn
from shared.messaging.consumer import Delivery, Handler


async def on_ready_for_routing(delivery: Delivery) -> None:
    event = delivery.payload
    assert isinstance(event, CaseReadyForRouting)
    await route_case(
        delivery.session,
        delivery.outbox,
        delivery.settings,
        case_id=event.case_id,
        council=event.council,
        packet=event.packet.model_dump(mode="json"),
        lawful_basis=event.lawful_basis.value,
        consent_kinds=[k.value for k in event.consent_partner_kinds],
        now=delivery.event.time,
    )


async def on_consent_withdrawn(delivery: Delivery) -> None:
    event = delivery.payload
    assert isinstance(event, ConsentWithdrawn)
    await stop_case(
        delivery.session,
        delivery.outbox,
        delivery.settings,
        event.case_id,
        "the resident withdrew consent",
        now=event.withdrawn_at,
    )


async def on_case_closed(delivery: Delivery) -> None:
    event = delivery.payload
    assert isinstance(event, CaseClosed)
    reason = "the council withdrew the case" if event.withdrawn else "the council closed the case"
    await stop_case(
        delivery.session,
        delivery.outbox,
        delivery.settings,
        event.case_id,
        reason,
        now=event.closed_at,
    )


EVENT_HANDLERS: dict[str, Handler] = {
    event_name(CaseReadyForRouting): on_ready_for_routing,
    event_name(ConsentWithdrawn): on_consent_withdrawn,
    event_name(CaseClosed): on_case_closed,
}
