"""Retention (UK GDPR Article 5(1)(e)) in the partners service, swept by its worker
(``timers.py``) a batch at a time (docs/information-governance.md, Retention):

- offers declined, expired or withdrawn ``retention_ended_offer_days`` ago, once their need
  is no longer being routed, with their webhook and email deliveries;
- audit rows after ``audit_retention_days``.

Everything else about a case (its route requests and their packets, accepted offers and
their outcomes) goes when the council's retention erases the resident: the referrals
service's sweep announces it as an erasure, which this service applies as any other."""

from __future__ import annotations

from datetime import timedelta

from services.partners.adapters import erasure as db
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from shared.erasure import sweep_audit


async def sweep_retention(uow: PartnersUnitOfWork) -> int:
    settings = uow.settings
    async with uow.transaction() as session:
        offers = await db.delete_ended_offers_before(
            session,
            uow.now() - timedelta(days=settings.retention_ended_offer_days),
            settings.retention_batch_size,
        )
    async with uow.transaction() as session:
        audit = await sweep_audit(
            session,
            uow.now() - timedelta(days=settings.audit_retention_days),
            limit=settings.retention_batch_size,
        )
    return offers + audit
