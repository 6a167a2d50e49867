"""Erasure (UK GDPR Article 17) in the partners service: on a council's erasure request it
deletes, in the consumer's transaction, the route requests (and their packets), offers and
deliveries of the resident's cases, and its outbox rows naming them, and has its relay
forget the data keys of the events it sent about them (``shared/messaging/sealing.py``);
replaces the case and offer ids in its audit trail by tombstone hashes; records tombstones
of the case ids, so a replayed ready-for-routing event routes nothing
(``shared/erasure.py``, ``guarded``); and confirms, with counts only."""

from __future__ import annotations

from services.partners.adapters import erasure as db
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from shared import erasure
from shared.events.payloads import ErasureRequested, PartnersErasureConfirmed


def secret_of(uow: PartnersUnitOfWork) -> str:
    return uow.settings.tombstone_secret.get_secret_value()


async def erase(uow: PartnersUnitOfWork, request: ErasureRequested) -> PartnersErasureConfirmed:
    secret = secret_of(uow)
    async with uow.transaction() as session:
        # Locked before anything is read: an event about these cases on another worker
        # either finished first (and is erased here) or waits and then sees the tombstones.
        await erasure.lock_identifiers(session, secret, request.case_ids)
        offer_ids = await db.offer_ids(session, request.council, request.case_ids)
        erased = await db.erase(session, request.council, request.case_ids, offer_ids)
        named = [*request.case_ids, *offer_ids]
        erased["outbox_events"] = await erasure.delete_outbox_rows_naming(session, named)
        # and the data keys of the events it sent, before its confirmation goes
        await uow.outbox.forget(session, named, before=request.request_id)
        erased["audit_rows_pseudonymised"] = await erasure.pseudonymise_audit(
            session, secret, named
        )
        await erasure.record_tombstones(session, secret, request.case_ids, at=request.requested_at)
        confirmed = PartnersErasureConfirmed(
            request_id=request.request_id,
            council=request.council,
            erased=erased,
            confirmed_at=uow.now(),
        )
        await uow.outbox.add(session, confirmed, subject=request.request_id)
    return confirmed
