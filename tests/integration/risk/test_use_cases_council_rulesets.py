"""Rulesets per council, on a real migrated PostgreSQL: a council's own ruleset assesses its
referrals and residents (one at a time and in a bulk import), and no other council's; every
council without one keeps the default."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date

import pytest

from services.risk.adapters import rulesets as stored_rulesets
from services.risk.domain.feeds import parse_csv
from services.risk.domain.rules import ReferralFacts, load_ruleset
from services.risk.service_layer import assessments, rulesets, signals
from shared.errors import NotFound
from shared.events.envelope import utc_now
from shared.identity import resident_keys
from shared.vocabulary import RiskLevel
from tests.integration.risk.conftest import RiskDatabase
from tests.integration.risk.test_use_cases_signals import RECENT, signal

pytestmark = pytest.mark.integration

DEFAULT = load_ruleset(rulesets.DEFAULT_RULESET.read_text())
OTHER = "E09000012"

# Earlier help: any rent arrears is a crisis, and the council is told at "low".
EARLIER = """
label: earlier-help
flag_level: low
rules:
  - id: any-rent-arrears
    description: Any rent arrears
    explanation: "Rent arrears of {rent_arrears.weeks} weeks."
    when: has(signals.rent_arrears)
    level: crisis
    score: 70
    suggest: [housing]
"""


def _keys(db: RiskDatabase, given: str, council: str | None = None) -> list[str]:
    return resident_keys(
        db.settings.resident_key_secret.get_secret_value(),
        council=council or db.council,
        given_name=given,
        family_name="Okafor",
        date_of_birth=date(1984, 3, 2),
        postcode="E15 4HT",
    )


async def _own_ruleset(db: RiskDatabase, council: str) -> str:
    async with db.unit_of_work() as uow:
        proposed = await rulesets.propose_ruleset(uow, EARLIER, created_by="an-operator")
        chosen = await rulesets.activate_for_council(
            uow, council, proposed.version, by="an-operator"
        )
    assert chosen.own and chosen.ruleset.version == proposed.version
    return proposed.version


async def test_a_councils_ruleset_assesses_its_referrals_and_no_other_councils(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    version = await _own_ruleset(db, db.council)
    batch_a = [signal(db.council, "rent_arrears", weeks=2, amount="200")]
    batch_b = [signal(OTHER, "rent_arrears", weeks=2, amount="200")]
    async with db.unit_of_work() as uow:
        await signals.record_signals(uow, signals.Submitter("operator", "op", False), batch_a)
        await signals.record_signals(uow, signals.Submitter("operator", "op", False), batch_b)

    results = {}
    for council in (db.council, OTHER):
        async with db.unit_of_work() as uow:
            results[council] = await assessments.assess_referral(
                uow,
                assessments.ReferralToAssess(
                    case_id=str(uuid.uuid4()),
                    council=council,
                    resident_keys=_keys(db, "Amina", council),
                    referral=ReferralFacts(needs=("housing",), urgency="low"),
                    received_at=utc_now(),
                ),
            )
    # The same signals, the same referral: the council's own rules say crisis, the default low.
    assert results[db.council].level is RiskLevel.CRISIS
    assert [f.rule_id for f in results[db.council].fired] == ["any-rent-arrears"]
    assert results[OTHER].level is RiskLevel.LOW
    versions = {
        row["council"]: row["ruleset_version"]
        for row in await db.rows(
            "SELECT c.council, a.ruleset_version FROM assessments a"
            " JOIN cases c ON c.case_id = a.case_id"
        )
    }
    assert versions == {db.council: version, OTHER: DEFAULT.version}

    # And back to the default: the council's next assessment is the default's.
    async with db.unit_of_work() as uow:
        back = await rulesets.use_default_for_council(uow, db.council)
        assert not back.own and back.ruleset.version == DEFAULT.version
        with pytest.raises(NotFound):
            await rulesets.use_default_for_council(uow, db.council)
        with pytest.raises(NotFound):
            await rulesets.activate_for_council(uow, OTHER, "no-such@000000000000", by="x")
        assert (await uow.ruleset_for(db.council)).version == DEFAULT.version
    assert await db.count("council_rulesets") == 0


async def test_the_bulk_import_assesses_each_councils_residents_by_its_own_ruleset(
    risk_database: RiskDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One file, two councils' residents in each batch (batches of 3 here): the council
    with a ruleset of its own flags its residents at "low" by it; the other council's,
    under the default (flag level high), are not flagged. The rulesets in force are looked
    up once a batch, for all its councils together."""
    db = risk_database
    version = await _own_ruleset(db, db.council)
    lines = [
        "type,council,given_name,family_name,date_of_birth,postcode,source,observed_on,weeks,amount"
    ]
    names = ["Ade", "Bea", "Cal", "Dee", "Eli", "Fay"]
    for index, name in enumerate(names):
        council = db.council if index % 2 == 0 else OTHER
        lines.append(f"rent_arrears,{council},{name},Okafor,1984-03-02,E15 4HT,rent,{RECENT},2,200")
    lookups: list[list[str]] = []
    looked_up = stored_rulesets.versions_in_force

    async def counting(session, councils):  # type: ignore[no-untyped-def]
        lookups.append(list(councils))
        return await looked_up(session, councils)

    monkeypatch.setattr(stored_rulesets, "versions_in_force", counting)

    async def feed() -> AsyncIterator[str]:
        for line in lines:
            yield line

    async with db.unit_of_work() as uow:
        outcome = await signals.import_signals(
            uow, signals.Submitter("operator", "op", False), parse_csv(feed()), "csv"
        )
    assert outcome.rows_stored == 6 and outcome.flagged == 3
    flagged = await db.rows(
        "SELECT p.council, a.level, a.ruleset_version FROM assessments a"
        " JOIN profiles p ON p.id = a.profile_id WHERE a.flagged"
    )
    assert {(row["council"], row["level"], row["ruleset_version"]) for row in flagged} == {
        (db.council, "crisis", version)
    }
    assert len(flagged) == 3
    events = await db.events("risk.resident.flagged")
    assert {e["council"] for e in events} == {db.council}
    assert {e["ruleset_version"] for e in events} == {version}
    # Two batches of three rows, each naming both councils: one look-up each.
    assert len(lookups) == 2 and all(sorted(c) == sorted({db.council, OTHER}) for c in lookups)


async def test_the_global_ruleset_in_force_is_every_other_councils_default(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    async with db.unit_of_work() as uow:
        found = await rulesets.ruleset_of_council(uow, db.council)
        assert not found.own and found.ruleset.version == DEFAULT.version
        # A new default moves every council without its own, and not one with its own.
        proposed = await rulesets.propose_ruleset(uow, EARLIER, created_by="an-operator")
        await rulesets.activate_for_council(uow, OTHER, DEFAULT.version, by="an-operator")
        await rulesets.activate_ruleset(uow, proposed.version)
        in_force = await uow.rulesets_for([db.council, OTHER])
    assert in_force[db.council].version == proposed.version
    assert in_force[OTHER].version == DEFAULT.version


async def test_a_council_keeps_its_last_good_ruleset_if_its_own_cannot_load(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    version = await _own_ruleset(db, db.council)
    async with db.unit_of_work() as uow:
        assert (await uow.ruleset_for(db.council)).version == version
    await db.sql(
        "INSERT INTO rulesets (version, label, source, created_by, active)"
        " VALUES ('broken@000000000000', 'broken', 'rules: [', 'someone', false)"
    )
    await db.sql(
        "UPDATE council_rulesets SET version = 'broken@000000000000' WHERE council = :c",
        c=db.council,
    )
    async with db.unit_of_work() as uow:
        assert (await uow.ruleset_for(db.council)).version == version
        assert (await uow.ruleset_for(OTHER)).version == DEFAULT.version


async def test_a_dry_run_for_a_council_compares_with_its_rules_over_its_residents(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    rows = [signal(db.council, "rent_arrears", given=n, weeks=2, amount="200") for n in "AB"]
    rows.append(signal(OTHER, "rent_arrears", given="C", weeks=2, amount="200"))
    async with db.unit_of_work() as uow:
        await signals.record_signals(uow, signals.Submitter("operator", "op", False), rows)
        proposed = await rulesets.propose_ruleset(uow, EARLIER, created_by="an-operator")
        everyone = await rulesets.dry_run_ruleset(uow, proposed.version)
        council = await rulesets.dry_run_ruleset(uow, proposed.version, council=db.council)
        await rulesets.activate_for_council(uow, OTHER, proposed.version, by="an-operator")
        same = await rulesets.dry_run_ruleset(uow, proposed.version, council=OTHER)
    assert everyone["residents"] == 3
    assert council["residents"] == 2 and council["residents_changing_level"] == 2
    assert council["current"]["version"] == DEFAULT.version
    # Against the council's own ruleset in force: the very same rules, nothing changes.
    assert same["residents"] == 1 and same["residents_changing_level"] == 0
    assert same["current"]["version"] == proposed.version
