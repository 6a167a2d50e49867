"""Each council's residents are its own, on a real migrated PostgreSQL: the same person sent
by two councils is two profiles, each council's signals deciding and explaining only its own
flags and assessments; and a deployment keyed before keys named the council keeps every
profile and signal through migration 0011."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from devtools.embedded import drop_database, ensure_database, with_database
from services.risk.bootstrap import SERVICE
from services.risk.domain.feeds import Row, check
from services.risk.domain.rules import ReferralFacts
from services.risk.domain.signals import fingerprint
from services.risk.service_layer import assessments, signals
from services.risk.service_layer import erasure as risk_erasure
from services.risk.service_layer.active_ruleset import ActiveRuleset
from services.risk.service_layer.reading import Keying, Ready, ready_row
from services.risk.settings import RiskSettings
from shared.db import async_url
from shared.erasure import tombstone
from shared.events.envelope import utc_now
from shared.events.payloads import ErasureRequested
from shared.identity import resident_keys
from shared.migrations import upgrade
from tests.integration.risk.conftest import RiskDatabase
from tests.integration.risk.test_use_cases_signals import RECENT, signal

pytestmark = pytest.mark.integration

HACKNEY = "E09000012"
AMINA = {"given_name": "Amina", "family_name": "Okafor", "date_of_birth": date(1984, 3, 2)}


def _operator() -> signals.Submitter:
    return signals.Submitter("operator", "op", own_council_only=False)


def _job_loss(council: str) -> dict[str, Any]:
    return {**signal(council, "job_loss"), "source": "dwp-feed"}


async def test_one_person_in_two_councils_is_two_residents(risk_database: RiskDatabase) -> None:
    db = risk_database
    newham = db.council
    arrears = signal(newham, "rent_arrears", weeks=3, amount="420")  # below the flag level
    notice = signal(HACKNEY, "eviction_notice", notice_type="section_8", notice_date=RECENT)
    async with db.unit_of_work() as uow:
        first = await signals.record_signals(uow, _operator(), [arrears, _job_loss(newham)])
    async with db.unit_of_work() as uow:
        # Hackney's feed: the same person, the same fact from the same source, and a notice.
        second = await signals.record_signals(uow, _operator(), [notice, _job_loss(HACKNEY)])
    # The same fact is each council's: stored for each, not taken for a file sent again.
    assert (first.rows_stored, second.rows_stored, second.rows_duplicate) == (2, 2, 0)
    profiles = await db.rows(
        "SELECT p.council, count(s.id) AS signals FROM profiles p "
        "JOIN signals s ON s.profile_id = p.id GROUP BY p.council"
    )
    assert {row["council"]: row["signals"] for row in profiles} == {HACKNEY: 2, newham: 2}

    # Hackney's notice flags Hackney's resident, for Hackney, by Hackney's signals alone.
    (flag,) = await db.events("risk.resident.flagged")
    assert flag["council"] == HACKNEY and flag["level"] == "crisis"
    assert [r["rule_id"] for r in flag["reasons"]] == ["eviction-notice"]
    secret = db.settings.resident_key_secret.get_secret_value()
    assert flag["resident_key"] == resident_keys(secret, council=HACKNEY, **AMINA)[0]

    # A Newham referral of the same person is assessed on Newham's signals: no notice.
    async with db.unit_of_work() as uow:
        assessed = await assessments.assess_referral(
            uow,
            assessments.ReferralToAssess(
                case_id=str(uuid.uuid4()),
                council=newham,
                resident_keys=resident_keys(secret, council=newham, postcode="E15 4HT", **AMINA),
                referral=ReferralFacts(needs=("housing",), urgency="low"),
                received_at=utc_now(),
            ),
        )
    assert "eviction-notice" not in [f.rule_id for f in assessed.fired]
    assert "rent-arrears" in [f.rule_id for f in assessed.fired]

    # Newham erases her: Hackney's resident stays, and Hackney's rows about her dated
    # before the erasure are still Hackney's to store.
    async with db.unit_of_work() as uow:
        await risk_erasure.erase(
            uow,
            ErasureRequested(
                request_id=str(uuid.uuid4()),
                council=newham,
                case_ids=[],
                resident_keys=resident_keys(secret, council=newham, postcode="E15 4HT", **AMINA),
                ground="objection",
                requested_at=utc_now(),
            ),
        )
    left = await db.rows("SELECT council FROM profiles")
    assert [row["council"] for row in left] == [HACKNEY]
    async with db.unit_of_work() as uow:
        later = await signals.record_signals(
            uow, _operator(), [signal(HACKNEY, "rent_arrears", weeks=3, amount="420")]
        )
    assert (later.rows_stored, later.rows_rejected) == (1, 0)


def _identifiers_key(secret: str, part: str) -> str:
    """A key as it was made before keys named the council."""
    return hmac.new(secret.encode(), part.encode(), hashlib.sha256).hexdigest()


async def _keyed_as_at_0010(url: str, secret: str, fact: dict[str, Any], ready: Ready) -> str:
    """A database at revision 0010 holding what its import and consumers stored then: a
    Newham profile under the identifiers' keys, with a signal fingerprinted from the
    strongest of them, a Hackney case (and its assessment) that reached the profile through
    the same keys, and the tombstone of another resident's key erased yesterday."""
    upgrade(SERVICE, url, "0010")
    profile, case_id, signal_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    observed = date.fromisoformat(RECENT)
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as connection:

            async def run(statement: str, **values: object) -> None:
                await connection.execute(text(statement), values)

            await run("INSERT INTO profiles (id, council) VALUES (:p, 'E09000025')", p=profile)
            for key in _identifiers_keys_of_amina(secret):
                await run(
                    "INSERT INTO profile_keys (key, profile_id) VALUES (:k, :p)", k=key, p=profile
                )
            await run(
                "INSERT INTO signals (id, profile_id, type, attributes, source, observed_on, "
                "expires_on, fingerprint) VALUES (:id, :p, 'rent_arrears', CAST(:a AS jsonb), "
                ":s, :o, :e, :f)",
                id=signal_id,
                p=profile,
                a=ready.attributes,
                s=fact["source"],
                o=observed,
                e=date(2099, 1, 1),
                f=fingerprint(
                    _identifiers_keys_of_amina(secret)[0],
                    "rent_arrears",
                    fact["source"],
                    observed,
                    ready.attributes,
                ),
            )
            await run(
                "INSERT INTO cases (case_id, profile_id, council, open) "
                "VALUES (:c, :p, :council, true)",
                c=case_id,
                p=profile,
                council=HACKNEY,
            )
            await run(
                "INSERT INTO assessments (id, profile_id, case_id, level, score, reasons, "
                "suggested_needs, ruleset_version, flagged) VALUES (:id, :p, :c, 'low', 0, "
                "'[]', '[]', 'v1', false)",
                id=str(uuid.uuid4()),
                p=profile,
                c=case_id,
            )
            # Hackney's partner helped: its outcome marked the (Newham) signal as handled.
            outcome = str(uuid.uuid4())
            await run(
                "INSERT INTO outcomes (id, profile_id, case_id, need, outcome, helped, "
                "recorded_at) VALUES (:id, :p, :c, 'housing', 'support_provided', true, now())",
                id=outcome,
                p=profile,
                c=case_id,
            )
            await run(
                "INSERT INTO handled_signals (signal_id, profile_id, outcome_id, handled_at) "
                "VALUES (:s, :p, :o, now())",
                s=signal_id,
                p=profile,
                o=outcome,
            )
            # A flag kept in the outbox after it was published, keyed by the old key.
            await run(
                "INSERT INTO outbox (event_id, topic, message_key, lane, event_type, "
                "envelope, published_at) VALUES ('old-flag', 'risk.assessments.bulk.v1', :k, "
                "70, 'uk.upstream.risk.resident.flagged.v1', '{}', now())",
                k=_identifiers_keys_of_amina(secret)[0],
            )
            await run(
                "INSERT INTO erased_identifiers (hash, erased_at) VALUES (:h, :at)",
                h=tombstone(secret, _identifiers_key(secret, "dob|tomasz|okafor|1984-03-02")),
                at=utc_now() - timedelta(days=1),
            )
    finally:
        await engine.dispose()
    return profile


def _identifiers_keys_of_amina(secret: str) -> list[str]:
    return [
        _identifiers_key(secret, "dob|amina|okafor|1984-03-02"),
        _identifiers_key(secret, "postcode|amina|okafor|E15 4HT"),
    ]


async def test_migration_0011_gives_what_was_stored_its_councils_keys(
    postgres_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the migration the profile is reached by its council's keys of the same
    identifiers and the same fact sent again is recognised (nothing stored twice, no
    second profile); the other council's case is on a profile of that council; and a row
    about the resident erased before keys named the council is still refused."""
    monkeypatch.setenv("UPSTREAM_ENVIRONMENT", "development")  # (the development secret)
    name = f"test_risk_0011_{uuid.uuid4().hex[:8]}"
    await ensure_database(postgres_admin_url, name)
    url = with_database(postgres_admin_url, name)
    settings = RiskSettings(database_url=url)
    secret = settings.resident_key_secret.get_secret_value()
    newham = "E09000025"
    fact = signal(newham, "rent_arrears", weeks=3, amount="420")
    row = check(1, fact)
    assert isinstance(row, Row)
    # The row as an import reads it now: its keys, attributes and fingerprint.
    ready = ready_row(Keying(secret, tombstones_before_council_keys=False), row)
    engine = create_async_engine(async_url(url))
    try:
        profile = await _keyed_as_at_0010(url, secret, fact, ready)
        upgrade(SERVICE, url)

        newham_keys = resident_keys(secret, council=newham, postcode="E15 4HT", **AMINA)
        hackney_keys = resident_keys(secret, council=HACKNEY, postcode="E15 4HT", **AMINA)
        assert newham_keys == ready.keys
        db = RiskDatabase(engine, settings, newham, ActiveRuleset())
        keys = await db.rows(
            "SELECT k.key, p.council, k.profile_id::text = :p AS first "
            "FROM profile_keys k JOIN profiles p ON p.id = k.profile_id",
            p=profile,
        )
        assert {(r["key"], r["council"], r["first"]) for r in keys} == {
            *((k, newham, True) for k in newham_keys),
            *((k, HACKNEY, False) for k in hackney_keys),
        }
        moved = await db.rows(
            "SELECT p.council, count(*) AS n FROM assessments a JOIN cases c USING (case_id) "
            "JOIN profiles p ON p.id = c.profile_id AND p.id = a.profile_id GROUP BY p.council"
        )
        assert moved == [{"council": HACKNEY, "n": 1}]
        # Hackney's help no longer marks Newham's signal; the old key's flag is gone.
        assert await db.count("handled_signals") == 0
        assert await db.count("outbox", "event_id = 'old-flag'") == 0
        (stored,) = await db.rows("SELECT fingerprint FROM signals")
        assert stored["fingerprint"] == ready.fingerprint

        erased = signal(newham, "job_loss", given="Tomasz")  # observed before the erasure
        async with db.unit_of_work() as uow:
            again = await signals.record_signals(uow, _operator(), [fact, erased])
        assert (again.rows_stored, again.rows_duplicate, again.rows_rejected) == (0, 1, 1)
        assert [(e.line, e.field) for e in again.errors] == [(2, "resident")]
        assert await db.count("profiles") == 2 and await db.count("signals") == 1

        # Hackney erases its resident: its profile, case and outcome go; Newham's stays.
        async with db.unit_of_work() as uow:
            await risk_erasure.erase(
                uow,
                ErasureRequested(
                    request_id=str(uuid.uuid4()),
                    council=HACKNEY,
                    case_ids=[],
                    resident_keys=hackney_keys,
                    ground="objection",
                    requested_at=utc_now(),
                ),
            )
        left = await db.rows("SELECT council FROM profiles")
        assert [row["council"] for row in left] == [newham]
        assert await db.count("outcomes") == 0 and await db.count("signals") == 1
    finally:
        await engine.dispose()
        await drop_database(postgres_admin_url, name)


async def test_migration_0011_refuses_the_development_secret_unless_told_it_is_development(
    postgres_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys given the wrong secret's council keys could never be made right: a deployment
    that forgot its secret is stopped, not silently re-keyed."""
    monkeypatch.delenv("UPSTREAM_ENVIRONMENT", raising=False)
    monkeypatch.delenv("UPSTREAM_RESIDENT_KEY_SECRET", raising=False)
    name = f"test_risk_0011_{uuid.uuid4().hex[:8]}"
    await ensure_database(postgres_admin_url, name)
    url = with_database(postgres_admin_url, name)
    try:
        secret = RiskSettings(database_url=url).resident_key_secret.get_secret_value()
        row = check(1, signal("E09000025", "job_loss"))
        assert isinstance(row, Row)
        ready = ready_row(Keying(secret, tombstones_before_council_keys=False), row)
        await _keyed_as_at_0010(url, secret, signal("E09000025", "job_loss"), ready)
        with pytest.raises(RuntimeError, match="UPSTREAM_RESIDENT_KEY_SECRET"):
            upgrade(SERVICE, url)
    finally:
        await drop_database(postgres_admin_url, name)
