"""What the partners worker sweeps: offers past their deadline, webhook deliveries due."""

from __future__ import annotations

from services.partners.placement import expire_due_offers
from services.partners.settings import PartnersSettings
from services.partners.webhooks import deliver_due
from shared.events.envelope import utc_now
from shared.service import Timer, TimerContext


async def expire_offers(context: TimerContext) -> int:
    assert isinstance(context.settings, PartnersSettings)
    async with context.sessions() as session, session.begin():
        return await expire_due_offers(session, context.outbox, context.settings, now=utc_now())


TIMERS = [
    Timer("offer deadlines", expire_offers, every_seconds=5.0),
    Timer("webhook deliveries", deliver_due, every_seconds=1.0),
]
