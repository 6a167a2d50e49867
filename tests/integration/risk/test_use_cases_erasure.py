"""Erasure and retention in the risk service, on a real migrated PostgreSQL: an erasure
request's keys and cases reach the resident's profile, which goes with everything it held
(keys, signals, cases, assessments, outcomes, handled signals) and the outbox rows naming
them (her flag); the reads stay under tombstone hashes; a replayed case-opened of hers
re-creates no profile; signals long expired go in the retention sweep."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from services.risk.handlers import EVENT_HANDLERS
from services.risk.service_layer import assessments, erasure, outcomes, retention
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared.db import session_factory
from shared.erasure import lock_key, tombstone
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import utc_now
from shared.events.payloads import CaseOpened, ErasureRequested, ReferralReceived
from shared.messaging.outbox import Outbox
from shared.vocabulary import Need, Outcome, RiskLevel
from tests.integration.risk.conftest import RiskDatabase
from tests.integration.risk.test_use_cases_outcomes import LONG_AGO, THEN, keys_of, notice, send

pytestmark = pytest.mark.integration


async def _naming(db: RiskDatabase, *identifiers: str) -> set[str]:
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
            if any(i in row["t"] for i in identifiers):
                found.add(table)
    return found


async def test_erasure_deletes_the_profile_and_all_it_held_and_a_replay_opens_nothing(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    await send(
        db,
        [notice(db, "Amina", "section_8", LONG_AGO), notice(db, "Tomasz", "section_21", LONG_AGO)],
        THEN,
    )
    case_id = str(uuid.uuid4())
    amina = keys_of(db, "Amina")
    async with db.unit_of_work() as uow:
        await assessments.record_case_opened(
            uow, case_id=case_id, council=db.council, resident_keys=amina
        )
    async with db.unit_of_work() as uow:
        await outcomes.record_outcome(
            uow,
            outcomes.OutcomeToRecord(
                case_id, Need.HOUSING, Outcome.SUPPORT_PROVIDED, THEN + timedelta(days=1)
            ),
        )
    async with db.unit_of_work() as uow:
        await assessments.explain_resident(uow, amina[0], council=db.council)
    (profile,) = await db.rows("SELECT profile_id FROM profile_keys WHERE key = :k", k=amina[0])
    profile_id = str(profile["profile_id"])
    assert await _naming(db, profile_id) >= {"profiles", "signals", "outcomes", "audit_log"}

    request = ErasureRequested(
        request_id=str(uuid.uuid4()),
        council=db.council,
        case_ids=[case_id],
        resident_keys=amina[:1],  # one key is enough: the profile's every key goes
        ground="objection",
        requested_at=utc_now(),
    )
    async with db.unit_of_work() as uow:
        confirmed = await erasure.erase(uow, request)
    assert confirmed.erased["profiles"] == 1 and confirmed.erased["signals"] == 1
    assert confirmed.erased["handled_signals"] == 1 and confirmed.erased["outcomes"] == 1

    assert await _naming(db, profile_id, case_id, *amina) == set()
    assert await db.count("profiles") == 1  # Tomasz's
    secret = db.settings.resident_key_secret.get_secret_value()
    assert await db.count("audit_log", "resident_ids ? :h", h=tombstone(secret, profile_id)) == 1
    assert await db.count("erased_identifiers") == len({case_id, *amina})

    # Her case opened again (an old event replayed): no profile, no case.
    opened = CaseOpened(
        case_id=case_id,
        council=db.council,
        origin="referral",
        resident_keys=amina,
        opened_at=utc_now(),
    )
    event = CATALOGUE.envelope(opened, source="/upstream/referrals", subject=case_id)
    async with session_factory(db.engine)() as session, session.begin():
        uow = RiskUnitOfWork(
            session=session,
            outbox=Outbox(CATALOGUE, source=db.settings.source),
            settings=db.settings,
            rulesets=db.rulesets,
            event=event,
        )
        await dict(EVENT_HANDLERS)[CaseOpened](opened, uow)
    assert await _naming(db, profile_id, case_id, *amina) == set()

    # An old referral of hers (another case, written before the erasure) still in a topic:
    # refused on her keys' tombstones.
    old_case = str(uuid.uuid4())
    await _apply(db, _referral(db, old_case, amina), request.requested_at - timedelta(minutes=5))
    assert await _naming(db, old_case, *amina) == set()

    # Referred again after the erasure (the same keys, a new case): assessed like anyone.
    new_case = str(uuid.uuid4())
    await _apply(db, _referral(db, new_case, amina), request.requested_at + timedelta(minutes=5))
    assert await db.count("assessments", "case_id = :c", c=new_case) == 1
    assert await db.count("profile_keys", "key = :k", k=amina[0]) == 1


def _referral(db: RiskDatabase, case_id: str, keys: list[str]) -> ReferralReceived:
    return ReferralReceived(
        case_id=case_id,
        referral_id=str(uuid.uuid4()),
        council=db.council,
        resident_keys=keys,
        needs=[Need.FOOD],
        urgency=RiskLevel.MEDIUM,
        received_at=utc_now(),
    )


async def _apply(db: RiskDatabase, payload: ReferralReceived, written_at: datetime) -> None:
    event = CATALOGUE.envelope(
        payload, source="/upstream/referrals", subject=payload.case_id, time=written_at
    )
    async with session_factory(db.engine)() as session, session.begin():
        uow = RiskUnitOfWork(
            session=session,
            outbox=Outbox(CATALOGUE, source=db.settings.source),
            settings=db.settings,
            rulesets=db.rulesets,
            event=event,
        )
        await dict(EVENT_HANDLERS)[ReferralReceived](payload, uow)


async def test_retention_deletes_signals_long_expired(risk_database: RiskDatabase) -> None:
    db = risk_database
    await send(db, [notice(db, "Amina", "section_8", LONG_AGO)], THEN)
    (signal,) = await db.rows("SELECT expires_on FROM signals")
    async with db.unit_of_work() as uow:
        assert await retention.sweep_retention(uow) == 0
        after = signal["expires_on"] + timedelta(days=db.settings.retention_expired_signal_days + 1)
        uow.clock = lambda: datetime.combine(after, time(12), UTC)
        assert await retention.sweep_retention(uow) == 1
    assert await db.count("signals") == 0


async def test_an_erasure_and_an_event_about_the_same_keys_take_turns(
    risk_database: RiskDatabase,
) -> None:
    """Both hold each identifier's advisory lock until their transaction ends (whichever
    worker runs them): while an erasure is under way, an event about her waits."""
    db = risk_database
    secret = db.settings.resident_key_secret.get_secret_value()
    key, case_id = "a" * 64, str(uuid.uuid4())
    request = ErasureRequested(
        request_id=str(uuid.uuid4()),
        council=db.council,
        case_ids=[case_id],
        resident_keys=[key],
        ground="objection",
        requested_at=utc_now(),
    )
    envelope = CATALOGUE.envelope(request, source="/upstream/referrals", subject=case_id)

    async def free(identifier: str) -> bool:
        async with session_factory(db.engine)() as other, other.begin():
            lock = sa.func.pg_try_advisory_xact_lock(lock_key(tombstone(secret, identifier)))
            return bool(await other.scalar(sa.select(lock)))

    async with session_factory(db.engine)() as session, session.begin():
        uow = RiskUnitOfWork(
            session=session,
            outbox=Outbox(CATALOGUE, source=db.settings.source),
            settings=db.settings,
            rulesets=db.rulesets,
            event=envelope,
        )
        await erasure.erase(uow, request)
        assert not await free(key) and not await free(case_id)
    assert await free(key) and await free(case_id)

    # The guard takes the same locks before it reads the tombstones.
    referral = _referral(db, str(uuid.uuid4()), [key])
    event = CATALOGUE.envelope(referral, source="/upstream/referrals", subject=referral.case_id)
    async with session_factory(db.engine)() as session, session.begin():
        uow = RiskUnitOfWork(
            session=session,
            outbox=Outbox(CATALOGUE, source=db.settings.source),
            settings=db.settings,
            rulesets=db.rulesets,
            event=event,
        )
        await dict(EVENT_HANDLERS)[ReferralReceived](referral, uow)
        assert not await free(key) and not await free(referral.case_id)
