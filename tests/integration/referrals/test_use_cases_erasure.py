"""Erasure in the referrals service, on a real migrated PostgreSQL (no broker, no HTTP):
refused (and audited) where Article 17(3) applies; otherwise everything about the resident
goes in one transaction, the audit trail keeps the reads under tombstone hashes, the
request is announced with case ids and keys only and completes when partners and risk
confirm; a replayed flag for the erased resident opens nothing; the audit trail's trigger
still refuses every other change."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.referrals.adapters import erasure as erasure_db
from services.referrals.handlers import EVENT_HANDLERS
from services.referrals.service_layer import (
    cases,
    erasure,
    intake,
    residents,
    retention,
    subject_access,
)
from shared.erasure import ErasureGround, sweep_audit, tombstone
from shared.errors import Conflict, NotFound
from shared.events.envelope import utc_now
from shared.events.payloads import (
    PartnersErasureConfirmed,
    ResidentFlagged,
    RiskErasureConfirmed,
)
from shared.identity import seal_identity
from shared.retention import sweep_audit_and_inbox
from shared.vocabulary import Need, RiskLevel
from tests.integration.referrals.conftest import ReferralsDatabase
from tests.integration.referrals.usecase_helpers import AMINA, ig, new_referral

pytestmark = pytest.mark.integration


async def _refer(db: ReferralsDatabase, urgency: RiskLevel = RiskLevel.HIGH, **facts: Any) -> str:
    referral = replace(new_referral(resident=replace(AMINA, **facts)), urgency=urgency)
    async with db.unit_of_work() as uow:
        receipt = await intake.receive_referral(uow, db.caller(), referral)
    assert receipt.case_id is not None
    return receipt.case_id


async def _resident_of(db: ReferralsDatabase, case_id: str) -> str:
    (row,) = await db.rows("SELECT resident_id FROM cases WHERE id = :c", c=case_id)
    return str(row["resident_id"])


async def _tables_naming(db: ReferralsDatabase, *identifiers: str) -> set[str]:
    tables = [
        r["table_name"]
        for r in await db.rows(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
    ]
    found = set()
    for table in tables:
        for row in await db.rows(f'SELECT t::text AS t FROM "{table}" t'):
            if any(i.lower() in row["t"].lower() for i in identifiers):
                found.add(table)
    return found


async def test_a_crisis_case_is_not_erased_and_the_refusal_is_audited(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    case_id = await _refer(db, urgency=RiskLevel.CRISIS)
    resident = await _resident_of(db, case_id)
    async with db.unit_of_work() as uow:
        with pytest.raises(Conflict, match=r"safeguarding.*Article 17\(3\)\(b\)"):
            await erasure.request_erasure(uow, ig(db.council), resident, ErasureGround.OBJECTION)
    assert await db.count("cases", "id = :c", c=case_id) == 1
    assert await db.count("audit_log", "operation = 'erasure_refused'") == 1
    assert await db.count("erasure_requests") == 0
    async with db.unit_of_work() as uow:
        with pytest.raises(NotFound):
            await erasure.request_erasure(
                uow, ig(db.other_council), resident, ErasureGround.OBJECTION
            )


async def test_erasure_removes_every_record_and_completes_when_the_others_confirm(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    case_id = await _refer(db)
    other_case = await _refer(db, given_name="Zainab", family_name="Begum", phone="07700 900999")
    resident = await _resident_of(db, case_id)
    async with db.unit_of_work() as uow:
        sar = await subject_access.request_subject_access(uow, ig(db.council), resident)
    assert await db.count("audit_log", "resident_ids ? :r", r=resident) >= 1
    secret = db.settings.resident_key_secret.get_secret_value()

    async with db.unit_of_work() as uow:
        request = await erasure.request_erasure(
            uow, ig(db.council), resident, ErasureGround.CONSENT_WITHDRAWN
        )
    assert request.confirmed == ("referrals",) and request.pending == ("partners", "risk")
    assert request.erased["residents"] == 1 and request.erased["cases"] == 1
    assert request.erased["subject_access_requests"] == 1

    # Nothing of hers in any table: her names, contact, ids (the SAR's too).
    assert await _tables_naming(db, resident, sar.id, "Okafor", "07700 900123") == set()
    # Her case id only in the erasure's own event, until the others have confirmed it.
    assert await _tables_naming(db, case_id) == {"outbox"}
    assert await db.count("outbox", "envelope::text LIKE :c", c=f"%{case_id}%") == 1
    assert await _tables_naming(db, other_case, "Begum") >= {"cases", "residents", "outbox"}
    # The reads stay in the trail, under her tombstone.
    assert await db.count("audit_log", "resident_ids ? :h", h=tombstone(secret, resident)) >= 2
    assert await db.count("erased_identifiers", "hash = :h", h=tombstone(secret, case_id)) == 1
    (announced,) = await db.events("referrals.erasure.requested")
    assert announced["case_ids"] == [case_id] and announced["resident_keys"]
    assert announced["ground"] == "consent_withdrawn"

    # A flag of her from before the erasure, replayed: the guard applies nothing.
    (key, *_) = announced["resident_keys"]
    flag = ResidentFlagged(
        resident_key=key,
        council=db.council,
        level=RiskLevel.HIGH,
        score=80,
        suggested_needs=[Need.FOOD],
        ruleset_version="test",
        sealed_identity=seal_identity(secret, {"given_name": "Amina", "family_name": "Okafor"}),
        flagged_at=utc_now(),
    )
    handler = dict(EVENT_HANDLERS)[ResidentFlagged]
    before = request.requested_at - timedelta(minutes=5)
    async with db.applying(flag, subject=key, written_at=before) as uow:
        await handler(flag, uow)
    assert await _tables_naming(db, "Okafor") == set()

    for cls in (PartnersErasureConfirmed, RiskErasureConfirmed):
        confirmed = cls(request_id=request.id, council=db.council, confirmed_at=utc_now())
        service = "partners" if cls is PartnersErasureConfirmed else "risk"
        async with db.unit_of_work() as uow:
            assert await erasure.record_confirmation(uow, service, confirmed)
        async with db.unit_of_work() as uow:
            assert not await erasure.record_confirmation(uow, service, confirmed)  # a replay
    async with db.unit_of_work() as uow:
        done = await erasure.erasure_status(uow, ig(db.council), request.id)
    assert done.pending == () and done.completed_at is not None
    # Its work done, the request's own event (naming her cases and keys) leaves the outbox.
    assert await db.events("referrals.erasure.requested") == []
    assert await _tables_naming(db, case_id, key) == set()
    async with db.unit_of_work() as uow:
        with pytest.raises(NotFound):
            await erasure.erasure_status(uow, ig(db.other_council), request.id)

    # Flagged again after the erasure (the same key: the same person): an outreach case.
    async with db.applying(flag, subject=key, written_at=utc_now()) as uow:
        await handler(flag, uow)
    assert await db.count("cases", "origin = 'flag'") == 1


async def test_the_audit_trail_still_refuses_every_other_change(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    case_id = await _refer(db)
    resident = await _resident_of(db, case_id)
    async with db.unit_of_work() as uow:
        await subject_access.request_subject_access(uow, ig(db.council), resident)
    for statement in (
        "UPDATE audit_log SET subject = 'someone else'",
        "UPDATE audit_log SET resident_ids = '[]'::jsonb",
        "DELETE FROM audit_log",
        # the erasure's setting lets through a change of the ids only, nothing else
        "SELECT set_config('upstream.audit_erasure', 'on', true); "
        "UPDATE audit_log SET subject = 'someone else'",
        # ... and only to tombstone hashes, none dropped
        "SELECT set_config('upstream.audit_erasure', 'on', true); "
        "UPDATE audit_log SET resident_ids = '[\"someone else\"]'::jsonb",
        "SELECT set_config('upstream.audit_erasure', 'on', true); "
        "UPDATE audit_log SET resident_ids = '[]'::jsonb",
        # the retention setting lets through rows older than its cutoff only
        "SELECT set_config('upstream.audit_retention_before', "
        "(now() - interval '1 day')::text, true); DELETE FROM audit_log",
        "SELECT set_config('upstream.audit_retention', 'on', true); DELETE FROM audit_log",
    ):
        async with db.engine.connect() as connection:
            with pytest.raises(DBAPIError, match="append-only"):
                for part in statement.split("; "):
                    await connection.execute(text(part))
    rows = await db.count("audit_log")
    async with db.unit_of_work() as uow, uow.transaction() as session:
        assert await sweep_audit(session, utc_now() - timedelta(days=1), limit=100) == 0
    async with db.unit_of_work() as uow, uow.transaction() as session:
        assert await sweep_audit(session, utc_now() + timedelta(days=1), limit=1) == 1
    assert await db.count("audit_log") == rows - 1


async def test_retention_erases_residents_whose_cases_ended_long_ago_and_old_exports(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    old_case = await _refer(db)
    recent_case = await _refer(db, given_name="Zainab", family_name="Begum", phone="07700 900999")
    for case_id in (old_case, recent_case):
        async with db.unit_of_work() as uow:
            await cases.withdraw_case(uow, db.caller(), case_id, "no longer needed")
    resident = await _resident_of(db, old_case)
    async with db.unit_of_work() as uow:
        sar = await subject_access.request_subject_access(uow, ig(db.council), resident)

    years = db.settings.retention_closed_case_years
    later = utc_now() + timedelta(days=365 * years + 1)
    # The other case ended just inside the period: move it forward.
    async with db.engine.begin() as connection:
        await connection.execute(
            text("UPDATE cases SET withdrawn_at = :t, updated_at = :t WHERE id = :c"),
            {"t": later - timedelta(days=30), "c": recent_case},
        )
    async with db.unit_of_work() as uow:
        uow.clock = lambda: later
        # The open subject access request holds her back; its own retention then lets go.
        assert await retention.erase_residents_past_retention(uow) == 0
        assert await retention.delete_old_subject_access(uow) == 1
    # Another worker's sweep holds her (claimed, locked): this sweep skips her, at once.
    async with db.unit_of_work() as other, other.transaction() as session:
        cutoff = later - timedelta(days=365 * years)
        assert await erasure_db.claim_resident_due(session, resident, cutoff) is not None
        async with db.unit_of_work() as uow:
            uow.clock = lambda: later
            assert await retention.erase_residents_past_retention(uow) == 0
    async with db.unit_of_work() as uow:
        uow.clock = lambda: later
        assert await retention.erase_residents_past_retention(uow) == 1
        assert await retention.erase_residents_past_retention(uow) == 0
    assert await db.count("cases", "id = :c", c=old_case) == 0
    assert await db.count("cases", "id = :c", c=recent_case) == 1
    assert await db.count("subject_access_requests", "id = :s", s=sar.id) == 0
    (announced,) = await db.events("referrals.erasure.requested")
    assert announced["case_ids"] == [old_case] and announced["ground"] == "no_longer_necessary"

    rows, applied = await db.count("audit_log"), await db.count("inbox")
    async with db.unit_of_work() as uow:
        assert await sweep_audit_and_inbox(uow) == 0
        uow.clock = lambda: utc_now() + timedelta(days=db.settings.audit_retention_days + 1)
        assert await sweep_audit_and_inbox(uow) == rows
    # The inbox goes by the database's clock, which wrote its rows, not the service's.
    assert await db.count("inbox") == applied


async def test_a_merged_away_record_stands_for_the_record_it_was_merged_into(
    referrals_database: ReferralsDatabase,
) -> None:
    """Subject access and erasure by the id of a record merged into another reach the
    person: the surviving record and every record merged into it."""
    db = referrals_database
    kept = await _resident_of(db, await _refer(db))
    gone = await _resident_of(
        db, await _refer(db, given_name="Amina", family_name="Okafor-Bello", phone="07700 900555")
    )
    assert kept != gone
    async with db.unit_of_work() as uow:
        await residents.merge_resident(uow, db.caller(), gone, kept)
    async with db.unit_of_work() as uow:
        sar = await subject_access.request_subject_access(uow, ig(db.council), gone)
    (row,) = await db.rows(
        "SELECT resident_id FROM subject_access_requests WHERE id = :s", s=sar.id
    )
    assert str(row["resident_id"]) == kept
    async with db.unit_of_work() as uow:
        request = await erasure.request_erasure(uow, ig(db.council), gone, ErasureGround.OBJECTION)
    assert request.erased["residents"] == 2
    assert await db.count("residents", "id IN (:a, :b)", a=kept, b=gone) == 0


async def test_the_refusals_facts_are_read_under_lock(
    referrals_database: ReferralsDatabase,
) -> None:
    """Until the erasure's transaction ends, nothing changes the cases it judged (a
    safeguarding concern raised, an offer accepted meanwhile waits)."""
    db = referrals_database
    case_id = await _refer(db)
    async with db.unit_of_work() as uow, uow.transaction() as session:
        (facts,) = await erasure_db.case_facts(session, [case_id])
        assert facts["status"]
        async with db.engine.connect() as other:
            with pytest.raises(DBAPIError, match="could not obtain lock"):
                await other.execute(
                    text("SELECT 1 FROM cases WHERE id = :c FOR UPDATE NOWAIT"), {"c": case_id}
                )


async def test_confirmations_arriving_together_complete_the_request(
    referrals_database: ReferralsDatabase,
) -> None:
    """Partners' and risk's confirmations committed at once (two consumers, two
    transactions): the second to take the request's lock sees the first, and completes it."""
    db = referrals_database
    for n, given_name in enumerate(("Amina", "Zainab", "Hafsa")):
        case_id = await _refer(db, given_name=given_name, phone=f"07700 90055{n}")
        async with db.unit_of_work() as uow:
            request = await erasure.request_erasure(
                uow, ig(db.council), await _resident_of(db, case_id), ErasureGround.OBJECTION
            )

        async def confirm(cls: type, service: str, request_id: str = request.id) -> bool:
            confirmed = cls(request_id=request_id, council=db.council, confirmed_at=utc_now())
            async with db.unit_of_work() as uow:
                return await erasure.record_confirmation(uow, service, confirmed)

        assert await asyncio.gather(
            confirm(PartnersErasureConfirmed, "partners"), confirm(RiskErasureConfirmed, "risk")
        ) == [True, True]
        async with db.unit_of_work() as uow:
            done = await erasure.erasure_status(uow, ig(db.council), request.id)
        assert done.pending == () and done.completed_at is not None, given_name
