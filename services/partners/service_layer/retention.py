"""Retention (UK GDPR Article 5(1)(e)) in the partners service, swept by its worker
(``timers.py``) a batch at a time (docs/information-governance.md, Retention):

- offers declined, expired or withdrawn ``retention_ended_offer_days`` ago, once their need
  is no longer being routed, with their webhook and email deliveries;
- sign-in links and web sessions ``retention_sign_in_days`` after they expired (each names
  a member of a partner's staff by e-mail address);
- audit rows after ``audit_retention_days``, and the consumers' inbox rows after
  ``inbox_retention_days`` (``shared/retention.py``).

Everything else about a case (its route requests and their packets, accepted offers and
their outcomes) goes when the council's retention erases the resident: the referrals
service's sweep announces it as an erasure, which this service applies as any other."""

from __future__ import annotations

from datetime import timedelta

from services.partners.adapters import erasure as db
from services.partners.adapters import web_access
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from shared.retention import sweep_audit_and_inbox


async def sweep_retention(uow: PartnersUnitOfWork) -> int:
    settings = uow.settings
    async with uow.transaction() as session:
        offers = await db.delete_ended_offers_before(
            session,
            uow.now() - timedelta(days=settings.retention_ended_offer_days),
            settings.retention_batch_size,
        )
    async with uow.transaction() as session:
        sign_ins = await web_access.delete_sign_ins_expired_before(
            session,
            uow.now() - timedelta(days=settings.retention_sign_in_days),
            settings.retention_batch_size,
        )
    return offers + sign_ins + await sweep_audit_and_inbox(uow)
