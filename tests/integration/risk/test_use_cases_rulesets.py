"""The rulesets use cases on a real migrated PostgreSQL, and the seed ``migrate`` runs."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from services.risk.adapters import rulesets as stored_rulesets
from services.risk.bootstrap import SERVICE
from services.risk.domain.rules import load_ruleset
from services.risk.service_layer import rulesets, signals
from shared.errors import Invalid, NotFound
from shared.migrations import upgrade
from tests.integration.messaging_helpers import wait_for, waiting_on_a_lock
from tests.integration.risk.conftest import RiskDatabase
from tests.integration.risk.test_signals_and_rules import CANDIDATE
from tests.integration.risk.test_use_cases_signals import data_team, signal

pytestmark = pytest.mark.integration

DEFAULT = load_ruleset(rulesets.DEFAULT_RULESET.read_text())


async def test_migrate_installs_the_default_ruleset_in_force_and_again_changes_nothing(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    # Nothing has been asked of the service yet: the seed ran with the migrations.
    (seeded,) = await db.rows("SELECT version, active, created_by, activated_at FROM rulesets")
    assert seeded["version"] == DEFAULT.version and seeded["active"] is True
    assert seeded["created_by"] == rulesets.DEFAULT_AUTHOR and seeded["activated_at"] is not None

    async with db.unit_of_work() as uow:
        candidate = await rulesets.propose_ruleset(uow, CANDIDATE, created_by="an-operator")
        await rulesets.activate_ruleset(uow, candidate.version)
    upgrade(SERVICE, db.settings.database_url.get_secret_value())  # migrate, run again
    in_force = await db.rows("SELECT version FROM rulesets WHERE active")
    assert in_force == [{"version": candidate.version}]  # the operator's choice stands
    assert await db.count("rulesets") == 2


async def test_reading_rulesets_writes_nothing(risk_database: RiskDatabase) -> None:
    db = risk_database
    snapshot = "SELECT t::text AS row FROM rulesets t ORDER BY version"
    before = await db.rows(snapshot)
    async with db.unit_of_work() as uow:
        listed = await rulesets.list_rulesets(uow)
        current = await rulesets.current_ruleset(uow)
        record = await rulesets.transparency(uow)
        # PostgreSQL gives a transaction an id only once it writes.
        writing = await uow.session.scalar(text("SELECT pg_current_xact_id_if_assigned()"))
    assert writing is None
    assert await db.rows(snapshot) == before  # and nothing was committed on the way
    assert [r.version for r in listed] == [DEFAULT.version] == [current.version]
    assert f"`{DEFAULT.version}`" in record


async def test_a_proposal_is_checked_stored_inactive_and_activated(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    broken = CANDIDATE.replace("weeks >= 4", "wekks >= 4")
    async with db.unit_of_work() as uow:
        with pytest.raises(Invalid) as refused:
            await rulesets.propose_ruleset(uow, broken, created_by="an-operator")
        assert refused.value.errors[0][0] == "ruleset"
        assert "has no field 'wekks'" in refused.value.errors[0][1]
        assert await db.count("rulesets") == 1

        proposed = await rulesets.propose_ruleset(uow, CANDIDATE, created_by="an-operator")
        assert (proposed.active, proposed.created_by) == (False, "an-operator")
        assert (await rulesets.current_ruleset(uow)).version == DEFAULT.version

        activated = await rulesets.activate_ruleset(uow, proposed.version)
        assert activated.active is True and activated.activated_at is not None
        assert (await rulesets.current_ruleset(uow)).version == proposed.version
        assert [r.active for r in await rulesets.list_rulesets(uow)] == [True, False]

        with pytest.raises(NotFound):
            await rulesets.activate_ruleset(uow, "no-such@000000000000")
        with pytest.raises(NotFound):
            await rulesets.get_ruleset(uow, "no-such@000000000000")
    assert await db.count("rulesets", "active") == 1


async def test_a_dry_run_compares_the_candidate_over_the_stored_profiles(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    rows = [
        signal(db.council, "rent_arrears", given=name, weeks=weeks, amount="500")
        for name, weeks in (("Ade", 5), ("Bea", 9), ("Cal", 2))
    ]
    rows.append(
        signal(db.council, "council_tax_arrears", given="Dee", amount="300", stage="reminder")
    )
    async with db.unit_of_work() as uow:
        await signals.record_signals(uow, data_team(db), rows)
        proposed = await rulesets.propose_ruleset(uow, CANDIDATE, created_by="an-operator")
        report = await rulesets.dry_run_ruleset(uow, proposed.version)
        with pytest.raises(NotFound):
            await rulesets.dry_run_ruleset(uow, "no-such@000000000000")
    assert report["residents"] == 4 and report["residents_changing_level"] == 3
    assert report["current"]["version"] == DEFAULT.version
    assert report["candidate"]["levels"]["high"] == 2
    assert await db.count("rulesets", "active") == 1  # a dry run changes nothing in force


async def test_a_process_keeps_its_last_good_ruleset_if_the_active_one_cannot_load(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    async with db.unit_of_work() as uow:
        assert (await uow.ruleset_in_force()).version == DEFAULT.version
    await db.sql(
        "INSERT INTO rulesets (version, label, source, created_by, active)"
        " VALUES ('broken@000000000000', 'broken', 'rules: [', 'someone', false)"
    )
    await db.sql("UPDATE rulesets SET active = (version = 'broken@000000000000')")
    async with db.unit_of_work() as uow:
        assert (await uow.ruleset_in_force()).version == DEFAULT.version


async def test_two_activations_at_once_leave_one_ruleset_in_force(
    risk_database: RiskDatabase,
) -> None:
    """One operator's activation is not yet committed as another's starts: the second waits
    for the first, then switches it off. (Each switching off only the one in force before
    them would leave both in force.)"""
    db = risk_database
    async with db.unit_of_work() as uow:
        first = await rulesets.propose_ruleset(uow, CANDIDATE, created_by="an-operator")
        second = await rulesets.propose_ruleset(
            uow, CANDIDATE.replace("label: earlier-help", "label: later-help"), created_by="b"
        )

    async def activate_second() -> None:
        async with db.unit_of_work() as uow:
            await rulesets.activate_ruleset(uow, second.version)

    async with db.unit_of_work() as uow, uow.transaction():
        assert await stored_rulesets.activate(uow.session, first.version, at=uow.now())
        racing = asyncio.create_task(activate_second())
        await wait_for(
            lambda: waiting_on_a_lock(db.engine), timeout=20, what="the second activation to wait"
        )
    await racing
    assert await db.rows("SELECT version FROM rulesets WHERE active") == [
        {"version": second.version}
    ]
