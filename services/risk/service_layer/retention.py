"""Retention (UK GDPR Article 5(1)(e)) in the risk service, swept by its worker
(``timers.py``) a batch at a time (docs/information-governance.md, Retention):

- signals ``retention_expired_signal_days`` after they expired (from the day a signal
  expires it no longer counts towards a level);
- audit rows after ``audit_retention_days``, and the consumers' inbox rows after
  ``inbox_retention_days`` (``shared/retention.py``).

A resident's profile, cases, assessments and outcomes go when the council's retention
erases the resident: the referrals service's sweep announces it as an erasure, which this
service applies as any other."""

from __future__ import annotations

from datetime import timedelta

from services.risk.adapters import erasure as db
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared.retention import sweep_audit_and_inbox


async def sweep_retention(uow: RiskUnitOfWork) -> int:
    settings = uow.settings
    async with uow.transaction() as session:
        signals = await db.delete_signals_expired_before(
            session,
            uow.now().date() - timedelta(days=settings.retention_expired_signal_days),
            settings.retention_batch_size,
        )
    return signals + await sweep_audit_and_inbox(uow)
