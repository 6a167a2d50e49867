"""Each council's residents are its own, on a real migrated PostgreSQL: the same person sent
by two councils is two profiles, each council's signals deciding and explaining only its own
flags and assessments; and a deployment keyed before keys named the council keeps every
profile and signal through migration 0011."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import date
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
from services.risk.service_layer.active_ruleset import ActiveRuleset
from services.risk.service_layer.reading import ready_row
from services.risk.settings import RiskSettings
from shared.db import async_url
from shared.events.envelope import utc_now
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


def _identifiers_key(secret: str, part: str) -> str:
    """A key as it was made before keys named the council."""
    return hmac.new(secret.encode(), part.encode(), hashlib.sha256).hexdigest()


async def test_migration_0011_gives_stored_keys_and_fingerprints_their_councils(
    postgres_admin_url: str,
) -> None:
    """Keys and a signal stored as revision 0010's import stored them: after the migration
    the profile is reached by the council's keys of the same identifiers, and the same
    fact sent again is recognised (nothing stored twice, no second profile)."""
    name = f"test_risk_0011_{uuid.uuid4().hex[:8]}"
    await ensure_database(postgres_admin_url, name)
    url = with_database(postgres_admin_url, name)
    settings = RiskSettings(database_url=url)
    secret = settings.resident_key_secret.get_secret_value()
    council = "E09000025"
    old = [
        _identifiers_key(secret, "dob|amina|okafor|1984-03-02"),
        _identifiers_key(secret, "postcode|amina|okafor|E15 4HT"),
    ]
    fact = signal(council, "rent_arrears", weeks=3, amount="420")
    row = check(1, fact)
    assert isinstance(row, Row)
    ready = ready_row(secret, row)  # the row as an import reads it now: its keys, attributes
    observed = date.fromisoformat(RECENT)
    profile = str(uuid.uuid4())
    engine = create_async_engine(async_url(url))
    try:
        upgrade(SERVICE, url, "0010")
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO profiles (id, council) VALUES (:p, :c)"),
                {"p": profile, "c": council},
            )
            for key in old:
                await connection.execute(
                    text("INSERT INTO profile_keys (key, profile_id) VALUES (:k, :p)"),
                    {"k": key, "p": profile},
                )
            await connection.execute(
                text(
                    "INSERT INTO signals (id, profile_id, type, attributes, source, "
                    "observed_on, expires_on, fingerprint) VALUES (:id, :p, 'rent_arrears', "
                    "CAST(:a AS jsonb), :s, :o, :e, :f)"
                ),
                {
                    "id": str(uuid.uuid4()),
                    "p": profile,
                    "a": ready.attributes,
                    "s": fact["source"],
                    "o": observed,
                    "e": date(2099, 1, 1),
                    "f": fingerprint(
                        old[0], "rent_arrears", fact["source"], observed, ready.attributes
                    ),
                },
            )
        upgrade(SERVICE, url)

        now = resident_keys(secret, council=council, postcode="E15 4HT", **AMINA)
        assert now == ready.keys
        db = RiskDatabase(engine, settings, council, ActiveRuleset())
        keys = await db.rows("SELECT key, profile_id::text AS p FROM profile_keys ORDER BY key")
        assert keys == sorted(({"key": k, "p": profile} for k in now), key=lambda r: r["key"])
        (stored,) = await db.rows("SELECT fingerprint FROM signals")
        assert stored["fingerprint"] == ready.fingerprint

        async with db.unit_of_work() as uow:
            again = await signals.record_signals(uow, _operator(), [fact])
        assert (again.rows_stored, again.rows_duplicate) == (0, 1)
        assert await db.count("profiles") == 1 and await db.count("signals") == 1
    finally:
        await engine.dispose()
        await drop_database(postgres_admin_url, name)
