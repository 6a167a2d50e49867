"""Erasure (UK GDPR Article 17): a council's information-governance team (or an operator)
erases a resident, on one of the grounds of Article 17(1).

- ``request_erasure``: refused, with the reason, where an Article 17(3) exemption applies
  (``domain/erasure.py``: an open case with a safeguarding concern or a live offer); the
  refusal is audited. Otherwise, in one transaction, the referrals service deletes the
  resident (and the records merged into it), its cases, referrals, consents, needs, offers,
  notes, timeline, possible duplicates, merges, subject access requests and the stored
  answers to retried requests naming them; deletes its outbox rows naming them (so a replay
  of the outbox cannot resend them); replaces their ids in the audit trail by tombstone
  hashes (the reads stay, whose they were does not); records tombstones (keyed hashes) of
  the resident ids, case ids and keys, so a replayed event re-creates nothing
  (``shared/erasure.py``, ``guarded``); and announces the erasure to partners and risk with
  only the case ids and pseudonymous keys. In the same transaction it has the relay forget
  the data keys of every aggregate the resident's events were keyed by (cases, records,
  keys, subject access requests): every copy of those events on every topic is
  crypto-shredded (``shared/messaging/sealing.py``); and it unlinks her reporting rows.
- ``record_confirmation``: partners' and risk's confirmations, once each; when both are in,
  the request is complete, its own outbox event (which names the case ids and keys) is
  deleted and its key forgotten: the request on the topic opens no more.
- ``erasure_status``: which services have confirmed, which are pending.

The request holds no identifier of the resident: its tombstone hash only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters import Row
from services.referrals.adapters import erasure as db
from services.referrals.adapters import subject_access as sar_db
from services.referrals.adapters.residents import lock_residents
from services.referrals.domain.erasure import CaseFacts, refusal
from services.referrals.service_layer import audit, reporting
from services.referrals.service_layer.resident_index import keys_of
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared import erasure as shared_erasure
from shared.audit import Category, councils_of
from shared.auth import Principal
from shared.erasure import REFERRALS, SERVICES, ErasureGround
from shared.errors import Conflict, NotFound
from shared.events.catalogue import event_name
from shared.events.payloads import ErasureConfirmed, ErasureRequested

PURPOSE = "erasure (UK GDPR Article 17)"


@dataclass(frozen=True)
class ErasureRequest:
    id: str
    council: str
    ground: ErasureGround
    requested_by: str
    requested_by_org: str
    requested_at: datetime
    completed_at: datetime | None
    erased: dict[str, int]
    confirmed: tuple[str, ...]
    pending: tuple[str, ...]


def _secret(uow: ReferralsUnitOfWork) -> str:
    return uow.settings.resident_key_secret.get_secret_value()


async def request_erasure(
    uow: ReferralsUnitOfWork, principal: Principal, resident_id: str, ground: ErasureGround
) -> ErasureRequest:
    """Erase the resident (of the caller's council; an operator: any), or say why not."""
    refused = await _erase_or_refuse(uow, principal, resident_id, ground)
    if isinstance(refused, str):
        raise Conflict(f"erasure does not apply: {refused}")
    return refused


async def _erase_or_refuse(
    uow: ReferralsUnitOfWork, principal: Principal, resident_id: str, ground: ErasureGround
) -> ErasureRequest | str:
    async with uow.transaction() as session:
        resident = await sar_db.resident_in(session, resident_id, councils_of(principal))
        if resident is None:
            raise NotFound("resident")
        # A record merged away is the same person as the one it was merged into: erase
        # that one, with every record merged into it (this one among them).
        resident_id, resident_ids = await _locked_person(session, resident_id)
        council = resident["council"]
        case_ids = await sar_db.case_ids_of(session, resident_ids)
        facts = [
            CaseFacts(
                status=row["status"],
                needs=tuple(row["needs"] or ()),
                urgency=row["urgency"],
                risk_level=row["risk_level"],
                offer_statuses=tuple(row["offer_statuses"]),
            )
            for row in await db.case_facts(session, case_ids)
        ]
        resident_hash = shared_erasure.tombstone(_secret(uow), resident_id)
        why_not = refusal(facts)
        if why_not is not None:
            # The refusal is recorded (and committed: the caller raises after the
            # transaction), against the resident's id as any read is.
            await audit.audited(
                uow,
                principal,
                "erasure_refused",
                [Category.PROGRESS],
                [audit.Seen(council, resident_id)],
                purpose=PURPOSE,
            )
            return why_not
        request_id = await erase_resident(
            uow,
            council=council,
            resident_id=resident_id,
            resident_ids=resident_ids,
            case_ids=case_ids,
            ground=ground,
            requested_by=principal.subject,
            requested_by_org=principal.organisation,
        )
        await audit.audited(
            uow,
            principal,
            "erasure_request",
            [Category.PROGRESS],
            [audit.Seen(council, resident_hash)],
            purpose=PURPOSE,
        )
        row = await db.request(session, request_id, None)
        assert row is not None
        return _request(row, [REFERRALS])


async def _locked_person(session: AsyncSession, resident_id: str) -> tuple[str, list[str]]:
    """The record the resident lives on and every record merged into it, their rows locked
    (by id, as a merge locks them) before anything of theirs is read: an erasure of the same
    person at the same moment, or a merge, waits for this one and then finds what it left
    (NotFound once she is erased), never rows half gone. Followed again after each wait,
    until what is locked is the whole person."""
    locked: set[str] = set()
    while True:
        survivor = await sar_db.surviving_record(session, resident_id)
        records = [survivor, *await sar_db.merged_into(session, survivor)]
        if set(records) <= locked:
            return survivor, records
        found = await lock_residents(session, records)
        if survivor not in found:
            raise NotFound("resident")  # erased (or merged and erased) meanwhile
        locked |= set(found)


async def erase_resident(
    uow: ReferralsUnitOfWork,
    *,
    council: str,
    resident_id: str,
    resident_ids: list[str],
    case_ids: list[str],
    ground: ErasureGround,
    requested_by: str,
    requested_by_org: str,
) -> str:
    """Erase the resident (and the records merged into it) in the caller's transaction;
    the request's id."""
    session, secret, now = uow.session, _secret(uow), uow.now()
    resident_hash = shared_erasure.tombstone(secret, resident_id)
    keys: list[str] = []
    for rid in resident_ids:
        keys.extend(k for k in await keys_of(uow, rid) if k not in keys)
    offer_ids = await db.offer_ids(session, case_ids)
    referral_ids = await db.referral_ids(session, resident_ids)
    requests = await db.subject_access_request_ids(session, resident_ids)
    request_id = uow.new_id()
    # Once this commits, the relay forgets the data keys of every aggregate her events were
    # keyed by, and sends none of hers written before (this request's own event, below,
    # goes after): every copy on every topic is shred.
    subjects = [*resident_ids, *case_ids, *keys, *requests]
    await uow.outbox.forget(session, subjects, before=request_id)
    erased = await db.erase(session, resident_ids, case_ids)
    # Her reporting rows keep their figures, unlinked from her here (the same database),
    # not left to the reporting consumer reading this erasure's event.
    await reporting.unlink(uow, session, case_ids=case_ids, resident_keys=keys)
    named = [*resident_ids, *case_ids, *keys, *offer_ids, *referral_ids]
    erased["outbox_events"] = await shared_erasure.delete_outbox_rows_naming(session, named)
    erased["idempotent_responses"] = await db.delete_idempotent_responses_naming(
        session, [*resident_ids, *case_ids, *referral_ids]
    )
    erased["audit_rows_pseudonymised"] = await shared_erasure.pseudonymise_audit(
        session, secret, [*resident_ids, *case_ids]
    )
    await shared_erasure.record_tombstones(
        session, secret, [*resident_ids, *case_ids, *keys], at=now
    )
    await db.insert_request(
        session,
        id=request_id,
        council=council,
        resident_hash=resident_hash,
        ground=ground.value,
        requested_by=requested_by,
        requested_by_org=requested_by_org,
        requested_at=now,
        erased=erased,
    )
    await db.add_confirmation(
        session, request_id=request_id, service=REFERRALS, confirmed_at=now, erased=erased
    )
    await uow.outbox.add(
        session,
        ErasureRequested(
            request_id=request_id,
            council=council,
            case_ids=case_ids,
            resident_keys=keys,
            ground=ground.value,
            requested_at=now,
        ),
        subject=request_id,
    )
    return request_id


async def record_confirmation(
    uow: ReferralsUnitOfWork, service: str, confirmation: ErasureConfirmed
) -> bool:
    """A service's confirmation, stored once (False: a replay, or no such request)."""
    async with uow.transaction() as session:
        if await db.request(session, confirmation.request_id, None, lock=True) is None:
            return False
        added = await db.add_confirmation(
            session,
            request_id=confirmation.request_id,
            service=service,
            confirmed_at=confirmation.confirmed_at,
            erased=confirmation.erased,
        )
        if added:
            confirmed = {
                c["service"] for c in await db.confirmations(session, confirmation.request_id)
            }
            if confirmed >= set(SERVICES):
                await db.mark_complete(session, confirmation.request_id, uow.now())
                await db.delete_request_events(
                    session, confirmation.request_id, event_name(ErasureRequested)
                )
                await uow.outbox.forget(
                    session, [confirmation.request_id], before=confirmation.request_id
                )
        return added


async def erasure_status(
    uow: ReferralsUnitOfWork, principal: Principal, request_id: str
) -> ErasureRequest:
    async with uow.snapshot() as session:
        row = await db.request(session, request_id, councils_of(principal))
        if row is None:
            raise NotFound("erasure request")
        rows = await db.confirmations(session, request_id)
        await audit.audited(
            uow,
            principal,
            "erasure_status",
            [Category.PROGRESS],
            [audit.Seen(row["council"], row["resident_hash"])],
            purpose=PURPOSE,
        )
        return _request(row, [c["service"] for c in rows])


def _request(row: Row, confirmed: list[str]) -> ErasureRequest:
    done = [s for s in SERVICES if s in confirmed]
    erased: dict[str, Any] = row["erased"]
    return ErasureRequest(
        id=str(row["id"]),
        council=row["council"],
        ground=ErasureGround(row["ground"]),
        requested_by=row["requested_by"],
        requested_by_org=row["requested_by_org"],
        requested_at=row["requested_at"],
        completed_at=row["completed_at"],
        erased=erased,
        confirmed=tuple(done),
        pending=tuple(s for s in SERVICES if s not in confirmed),
    )
