"""What the partners worker sweeps: offers past their deadline, webhook and email deliveries
due, reminders of deadlines drawing near,
accepted offers past their follow-up deadline, gaps in service."""

from __future__ import annotations

from services.partners.service_layer.gaps import detect_gaps
from services.partners.service_layer.notifications import deliver_due_emails, queue_reminders
from services.partners.service_layer.offers import mark_overdue_offers
from services.partners.service_layer.placement import expire_due_offers, offer_waiting_needs
from services.partners.service_layer.retention import sweep_retention
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from services.partners.service_layer.webhooks import deliver_due_webhooks
from shared.service import Timer


async def expire_offers(uow: PartnersUnitOfWork) -> int:
    return await expire_due_offers(uow)


async def deliver_webhooks(uow: PartnersUnitOfWork) -> int:
    return await deliver_due_webhooks(uow)


async def deliver_emails(uow: PartnersUnitOfWork) -> int:
    return await deliver_due_emails(uow)


async def remind_partners(uow: PartnersUnitOfWork) -> int:
    return await queue_reminders(uow)


async def mark_overdue(uow: PartnersUnitOfWork) -> int:
    return await mark_overdue_offers(uow)


async def offer_waiting(uow: PartnersUnitOfWork) -> int:
    return await offer_waiting_needs(uow)


async def say_gaps(uow: PartnersUnitOfWork) -> int:
    return await detect_gaps(uow)


TIMERS = [
    Timer("offer deadlines", expire_offers, every_seconds=5.0),
    # every 2 s: a partner's email or webhook a second later, for half the idle queries
    Timer("webhook deliveries", deliver_webhooks, every_seconds=2.0),
    Timer("email deliveries", deliver_emails, every_seconds=2.0),
    Timer("offer reminders", remind_partners, every_seconds=30.0),
    Timer("overdue offers", mark_overdue, every_seconds=60.0),
    # a safety net: places are offered when they free, this catches any need left waiting
    Timer("waiting needs", offer_waiting, every_seconds=60.0),
    # gaps in service: needs waiting too long said once; gaps no need is in any more closed
    Timer("gaps in service", say_gaps, every_seconds=60.0),
    # retention: ended offers long past, old audit rows
    Timer("retention", sweep_retention, every_seconds=3600.0),
]
