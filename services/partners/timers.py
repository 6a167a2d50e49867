"""What the partners worker sweeps: offers past their deadline, webhook deliveries due."""

from __future__ import annotations

from services.partners.service_layer.placement import expire_due_offers
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from services.partners.service_layer.webhooks import deliver_due_webhooks
from shared.service import Timer


async def expire_offers(uow: PartnersUnitOfWork) -> int:
    return await expire_due_offers(uow)


async def deliver_webhooks(uow: PartnersUnitOfWork) -> int:
    return await deliver_due_webhooks(uow)


TIMERS = [
    Timer("offer deadlines", expire_offers, every_seconds=5.0),
    Timer("webhook deliveries", deliver_webhooks, every_seconds=1.0),
]
