"""Retention (UK GDPR Article 5(1)(e)): what the referrals service keeps no longer than
needed, swept by its worker (``timers.py``), a batch at a time (settings: ``retention_…``,
``audit_retention_days``; docs/information-governance.md, Retention).

- A resident whose every case (and every case of the records merged into them) has been
  closed or withdrawn for ``retention_closed_case_years`` is erased exactly as an erasure
  request erases them, on the ground ``no_longer_necessary``: everything here, and partners
  and risk told by the same event (``service_layer/erasure.py``). Not while a subject
  access request about them is in progress.
- Subject access requests and their exports go ``retention_subject_access_days`` after
  they completed.
- Stored answers to Idempotency-Keys go after ``idempotency_key_days`` (each names the case
  and referral it made).
- Audit rows go after ``audit_retention_days`` (the trail's own function does it), and the
  consumers' inbox rows after ``inbox_retention_days`` (``shared/retention.py``).

What is kept for statistics is the erasure requests' counts, which name no one."""

from __future__ import annotations

from datetime import timedelta

from services.referrals.adapters import erasure as db
from services.referrals.adapters import subject_access as sar_db
from services.referrals.service_layer.erasure import erase_resident
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared.erasure import ErasureGround
from shared.retention import sweep_audit_and_inbox

RETENTION = "retention sweep"


async def sweep_retention(uow: ReferralsUnitOfWork) -> int:
    """One pass: up to a batch of each kind; how many records (residents, requests, stored
    answers, audit and inbox rows) went."""
    return (
        await erase_residents_past_retention(uow)
        + await delete_old_subject_access(uow)
        + await delete_old_idempotent_responses(uow)
        + await sweep_audit_and_inbox(uow)
    )


async def erase_residents_past_retention(uow: ReferralsUnitOfWork) -> int:
    """Up to a batch of residents, each erased in its own transaction (one failing, or a
    big one, holds back no other), each claimed first: locked, still due, or skipped if
    another worker's sweep (or a merge) holds it, so no resident is erased twice."""
    settings = uow.settings
    cutoff = uow.now() - timedelta(days=365 * settings.retention_closed_case_years)
    async with uow.transaction() as session:
        due = [
            str(r["id"])
            for r in await db.residents_due(session, cutoff, settings.retention_batch_size)
        ]
    erased = 0
    for candidate in due:
        async with uow.transaction() as session:
            resident = await db.claim_resident_due(session, candidate, cutoff)
            if resident is None:
                continue
            resident_id = str(resident["id"])
            resident_ids = [resident_id, *await sar_db.merged_into(session, resident_id)]
            await erase_resident(
                uow,
                council=resident["council"],
                resident_id=resident_id,
                resident_ids=resident_ids,
                case_ids=await sar_db.case_ids_of(session, resident_ids),
                ground=ErasureGround.NO_LONGER_NECESSARY,
                requested_by=RETENTION,
                requested_by_org=uow.settings.service_name,
            )
            erased += 1
    return erased


async def delete_old_subject_access(uow: ReferralsUnitOfWork) -> int:
    cutoff = uow.now() - timedelta(days=uow.settings.retention_subject_access_days)
    async with uow.transaction() as session:
        return await db.delete_subject_access_before(
            session, cutoff, uow.settings.retention_batch_size
        )


async def delete_old_idempotent_responses(uow: ReferralsUnitOfWork) -> int:
    cutoff = uow.now() - timedelta(days=uow.settings.idempotency_key_days)
    async with uow.transaction() as session:
        return await db.delete_idempotent_responses_before(
            session, cutoff, uow.settings.retention_batch_size
        )
