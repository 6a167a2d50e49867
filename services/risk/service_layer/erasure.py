"""Erasure (UK GDPR Article 17) in the risk service: on a council's erasure request it deletes,
in the consumer's transaction, the profiles the resident's keys and cases reach (their keys,
signals, cases, assessments, outcomes and handled signals) and its outbox rows naming them
(flags, assessments), and has its relay forget the data keys of every event it sent about
them (``shared/messaging/sealing.py``); replaces the profile and case ids in its audit trail
by tombstone hashes; records tombstones of every key the profiles held and of the case ids,
so a replayed case-opened or referral-received re-creates no profile (``shared/erasure.py``,
``guarded``); and confirms, with counts only."""

from __future__ import annotations

from services.risk.adapters import erasure as db
from services.risk.adapters import subject_access as sar_db
from services.risk.adapters.profiles import lock_council
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared import erasure
from shared.events.payloads import ErasureRequested, RiskErasureConfirmed


def secret_of(uow: RiskUnitOfWork) -> str:
    return uow.settings.resident_key_secret.get_secret_value()


async def erase(uow: RiskUnitOfWork, request: ErasureRequested) -> RiskErasureConfirmed:
    secret = secret_of(uow)
    async with uow.transaction() as session:
        # Locked before anything is read: an event about them on another worker either
        # finished first (and is erased here) or waits and then sees the tombstones.
        await erasure.lock_identifiers(session, secret, [*request.case_ids, *request.resident_keys])
        # And the council's profile writers' lock, which a signal import holds while it checks
        # the tombstones and stores a batch: the import either stored first (and is erased
        # here) or checks after this commits (and refuses her old rows).
        await lock_council(session, request.council)
        profile_ids = await sar_db.profile_ids(
            session, request.council, request.resident_keys, request.case_ids
        )
        keys = list(
            dict.fromkeys([*request.resident_keys, *await db.keys_of(session, profile_ids)])
        )
        await erasure.lock_identifiers(
            session, secret, [k for k in keys if k not in request.resident_keys]
        )
        signal_ids = await db.signal_ids(session, profile_ids)
        erased = await db.erase(session, request.council, profile_ids, request.case_ids)
        named = [*request.case_ids, *keys, *profile_ids, *signal_ids]
        erased["outbox_events"] = await erasure.delete_outbox_rows_naming(session, named)
        # Its own events too (flags keyed by keys referrals may never have held): their data
        # keys forgotten once this commits, and none of them written before sent.
        await uow.outbox.forget(session, named, before=request.request_id)
        erased["audit_rows_pseudonymised"] = await erasure.pseudonymise_audit(
            session, secret, [*profile_ids, *request.case_ids]
        )
        # At the erasure's time (referrals' clock, as are the events it is compared with):
        # what was written about these keys later is about the person referred again.
        await erasure.record_tombstones(
            session, secret, [*request.case_ids, *keys], at=request.requested_at
        )
        confirmed = RiskErasureConfirmed(
            request_id=request.request_id,
            council=request.council,
            erased=erased,
            confirmed_at=uow.now(),
        )
        await uow.outbox.add(session, confirmed, subject=request.request_id)
    return confirmed
