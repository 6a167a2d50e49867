"""The events the risk service consumes: cases opened and closed, and referrals received
(which it assesses at once, with whatever signals it holds for the resident)."""

from __future__ import annotations

from services.risk.assessing import assess_case, close_case, open_case
from services.risk.rulebook import RULEBOOK
from shared.events.catalogue import event_name
from shared.events.payloads import CaseClosed, CaseOpened, ReferralReceived
from shared.messaging.consumer import Delivery, Handler


async def on_referral_received(delivery: Delivery) -> None:
    event = delivery.payload
    assert isinstance(event, ReferralReceived)
    referral = {
        "circumstances": [c.value for c in event.circumstances],
        "needs": [n.value for n in event.needs],
        "urgency": event.urgency.value,
        "age": event.age_years,
    }
    await open_case(
        delivery.session,
        case_id=event.case_id,
        council=event.council,
        keys=event.resident_keys,
        referral=referral,
    )
    ruleset = await RULEBOOK.current(delivery.session)
    await assess_case(
        delivery.session, delivery.outbox, event.case_id, ruleset=ruleset, now=event.received_at
    )


async def on_case_opened(delivery: Delivery) -> None:
    event = delivery.payload
    assert isinstance(event, CaseOpened)
    await open_case(
        delivery.session,
        case_id=event.case_id,
        council=event.council,
        keys=event.resident_keys,
        referral=None,
    )


async def on_case_closed(delivery: Delivery) -> None:
    event = delivery.payload
    assert isinstance(event, CaseClosed)
    await close_case(delivery.session, event.case_id)


EVENT_HANDLERS: dict[str, Handler] = {
    event_name(ReferralReceived): on_referral_received,
    event_name(CaseOpened): on_case_opened,
    event_name(CaseClosed): on_case_closed,
}
