"""A council's dry run beside its rule evaluation, through the real broker (issue #17, item
2): residents' signals recorded in risk flag two of them (their flags reach the referrals
service's reporting model); an operator proposes a candidate ruleset and dry-runs it for the
council over HTTP; risk's relay publishes ``risk.ruleset.dry_run_completed`` from the dry
run's transaction; the ``referrals-reporting`` consumer group stores it; and
``GET /v1/reports/{council}/rules`` (JSON, CSV) and the rules page show each rule's expected
reach under both rulesets beside the rule's actual flags. A later run of the same candidate
replaces it; an older one arriving late changes nothing; a deployment-wide dry run (no
council) publishes nothing."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from services.referrals.bootstrap import SERVICE as REFERRALS
from services.referrals.reporting_handlers import REPORTING_GROUP
from services.referrals.settings import ReferralsSettings
from services.risk.bootstrap import SERVICE as RISK
from services.risk.domain.rules import load_ruleset
from services.risk.service_layer import rulesets, signals
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from services.risk.settings import RiskSettings
from shared.auth import OrganisationKind, Role, mint_token
from shared.db import session_factory
from shared.events.catalogue import CATALOGUE
from shared.events.payloads import RulesetDryRunCompleted
from shared.messaging.outbox import Outbox
from tests.conftest import MakeDatabase
from tests.integration.messaging_helpers import relaying, wait_for
from tests.integration.referrals.conftest import unique_council
from tests.support.infrastructure import Broker
from tests.support.services import ServiceUnderTest, publisher, running_consumer, serve

pytestmark = pytest.mark.integration

DEFAULT = load_ruleset(rulesets.DEFAULT_RULESET.read_text())
LONDON = ZoneInfo("Europe/London")
DRY_RUN_EVENT = "risk.ruleset.dry_run_completed"

# Earlier help: any rent arrears is a crisis, and the council is told at "low".
EARLIER = """
label: earlier-help-dry-run
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

# Weeks of rent arrears: under the default, 8 or more is high (flagged), fewer is low.
RESIDENTS = {"Adaeze": 9, "Bronwen": 10, "Caoimhe": 2}


@dataclass
class Stack:
    council: str
    risk: ServiceUnderTest
    risk_settings: RiskSettings
    referrals: ServiceUnderTest
    referrals_settings: ReferralsSettings
    kafka: Broker

    def operator(self) -> dict[str, str]:
        token = mint_token(
            self.risk_settings,
            subject="operator-person",
            organisation="operator",
            kind=OrganisationKind.OPERATOR,
            roles=[Role.OPERATOR],
        )
        return {"Authorization": f"Bearer {token}"}

    def manager(self) -> dict[str, str]:
        token = mint_token(
            self.referrals_settings,
            subject="manager-person",
            organisation=self.council,
            kind=OrganisationKind.COUNCIL,
            roles=[Role.MANAGER],
        )
        return {"Authorization": f"Bearer {token}"}

    async def rules(self, **query: str) -> httpx.Response:
        response = await self.referrals.client.get(
            f"/v1/reports/{self.council}/rules", params=query, headers=self.manager()
        )
        assert response.status_code == 200, response.text
        return response

    async def dry_run(self, version: str, council: str | None) -> dict[str, Any]:
        response = await self.risk.client.post(
            f"/v1/rulesets/{version}/dry-run",
            params={"council": council} if council else {},
            headers=self.operator(),
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


async def _record_signals(engine: AsyncEngine, settings: RiskSettings, council: str) -> None:
    observed = (date.today() - timedelta(days=3)).isoformat()
    rows = [
        {
            "type": "rent_arrears",
            "council": council,
            "source": "newham-rent",
            "observed_on": observed,
            "resident": {
                "given_name": given,
                "family_name": "Dry-Run",
                "date_of_birth": "1981-06-14",
                "postcode": "E15 4HT",
            },
            "attributes": {"weeks": weeks, "amount": 100 * weeks},
        }
        for given, weeks in RESIDENTS.items()
    ]
    async with session_factory(engine)() as session:
        uow = RiskUnitOfWork(
            session=session, outbox=Outbox(CATALOGUE, source=settings.source), settings=settings
        )
        await signals.record_signals(
            uow, signals.Submitter(council, "data-team-person", own_council_only=True), rows
        )


@pytest.fixture
async def stack(service_database: MakeDatabase, kafka: Broker) -> AsyncIterator[Stack]:
    council = unique_council()
    risk_settings = RiskSettings(database_url=SecretStr(await service_database("risk")))
    referrals_settings = ReferralsSettings(
        database_url=SecretStr(await service_database("referrals")), councils=[council]
    )
    async with AsyncExitStack() as exits:
        risk_client, risk_engine = await exits.enter_async_context(serve(RISK, risk_settings))
        await exits.enter_async_context(
            relaying(risk_engine, kafka, risk_settings.keystore_database_url())
        )
        referrals_client, referrals_engine = await exits.enter_async_context(
            serve(REFERRALS, referrals_settings)
        )
        # Only the reporting consumer group: the figures come from its model.
        await exits.enter_async_context(
            running_consumer(
                REFERRALS, referrals_engine, referrals_settings, kafka, group=REPORTING_GROUP
            )
        )
        await _record_signals(risk_engine, risk_settings, council)
        yield Stack(
            council,
            ServiceUnderTest(risk_client, risk_engine),
            risk_settings,
            ServiceUnderTest(referrals_client, referrals_engine),
            referrals_settings,
            kafka,
        )


def _by_rule(rows: list[dict[str, Any]], candidate: str) -> dict[str, dict[str, Any]]:
    return {r["rule_id"]: r for r in rows if r["candidate_version"] == candidate}


async def test_a_councils_dry_run_shows_beside_what_its_rules_flags_led_to(stack: Stack) -> None:
    proposed = await stack.risk.client.post(
        "/v1/rulesets",
        content=EARLIER.encode(),
        headers={**stack.operator(), "content-type": "application/yaml"},
    )
    assert proposed.status_code == 201, proposed.text
    candidate = proposed.json()["version"]

    # A deployment-wide dry run is the operator's alone: nothing is published.
    await stack.dry_run(candidate, council=None)
    assert await stack.risk.events(DRY_RUN_EVENT) == []

    figures = await stack.dry_run(candidate, council=stack.council)
    assert figures["residents"] == 3 and figures["current"]["version"] == DEFAULT.version
    (published,) = await stack.risk.events(DRY_RUN_EVENT)
    assert published["council"] == stack.council
    assert (published["candidate_version"], published["in_force_version"]) == (
        candidate,
        DEFAULT.version,
    )
    # Counts only: no resident key, name or profile in the event.
    text_of_event = str(published)
    assert "Dry-Run" not in text_of_event and "profile" not in text_of_event

    # The two residents with 8 weeks or more were flagged under the default; the third not.
    async def shown() -> dict[str, Any] | None:
        report = (await stack.rules()).json()
        flagged = {r["rule_id"]: r["residents_flagged"] for r in report["rules"]}
        if report["dry_runs"] and flagged.get("rent-arrears-8-weeks") == 2:
            return dict(report)
        return None

    report = await wait_for(shown, timeout=90, interval=0.3, what="the dry run in the report")
    rows = _by_rule(report["dry_runs"], candidate)
    # Every rule of either ruleset, those in force first.
    assert list(rows) == [*(r.spec.id for r in DEFAULT.rules), "any-rent-arrears"]
    expected = {"rent-arrears": (3, 0), "rent-arrears-8-weeks": (2, 0), "any-rent-arrears": (0, 3)}
    for rule_id, (in_force, under_candidate) in expected.items():
        row = rows[rule_id]
        assert (row["would_fire_in_force"], row["would_fire_candidate"]) == (
            in_force,
            under_candidate,
        )
        assert row["change"] == under_candidate - in_force
        assert row["in_force_version"] == DEFAULT.version
    # The same figures as the operator's dry run of the rules whose firing differs.
    for driving in figures["rules_driving_the_difference"]:
        row = rows[driving["rule_id"]]
        assert (row["would_fire_in_force"], row["would_fire_candidate"]) == (
            driving["current"],
            driving["candidate"],
        )
    # Beside the actual flags of each rule under the ruleset in force, from the model.
    actual = {r["rule_id"]: r for r in report["rules"] if r["ruleset_version"] == DEFAULT.version}
    for rule_id, row in rows.items():
        measured = actual.get(rule_id)
        assert row["residents_flagged"] == (measured["residents_flagged"] if measured else 0)
        assert row["positive_outcome"] == (measured["positive_outcome"] if measured else 0)
    assert rows["rent-arrears-8-weeks"]["residents_flagged"] == 2
    assert rows["rent-arrears-8-weeks"]["flag_to_help_share"] == 0.0  # no outreach yet
    assert rows["any-rent-arrears"]["flag_to_help_share"] is None  # it flagged no one yet
    levels = {
        r["level"]: (r["residents_in_force"], r["residents_candidate"])
        for r in report["dry_run_levels"]
        if r["candidate_version"] == candidate
    }
    assert levels == {
        level: (figures["current"]["levels"][level], figures["candidate"]["levels"][level])
        for level in figures["current"]["levels"]
    }
    first_run_at = datetime.fromisoformat(published["ran_at"])

    # CSV: the same rows.
    table = (await stack.rules(format="csv", table="dry_runs")).text
    read = list(csv.DictReader(io.StringIO(table)))
    assert [r["rule_id"] for r in read] == list(rows)
    assert {r["rule_id"]: int(r["would_fire_candidate"]) for r in read}["any-rent-arrears"] == 3

    # The rules page: the dry runs table, its chart and its CSV link beside the others.
    page = await stack.referrals.client.get(
        f"/reports/{stack.council}/rules", headers=stack.manager()
    )
    assert page.status_code == 200, page.text
    html = page.text
    # The existing tables still there (no referral was assessed: that one is empty).
    assert 'data-table="rules"' in html and "/rules/assessment_levels.csv" in html
    assert 'data-table="dry_runs"' in html and 'data-table="dry_run_levels"' in html
    assert 'id="chart-dry-run"' in html and "any-rent-arrears: " + candidate in html
    assert f"/reports/{stack.council}/rules/dry_runs.csv" in html
    assert first_run_at.astimezone(LONDON).strftime("%Y-%m-%d %H:%M") in html  # London time

    # Run again: the later run of the candidate replaces the first.
    await stack.dry_run(candidate, council=stack.council)
    again = (await stack.risk.events(DRY_RUN_EVENT))[-1]
    later_run_at = datetime.fromisoformat(again["ran_at"])
    assert later_run_at > first_run_at

    async def replaced() -> bool:
        runs = {r["ran_at"] for r in (await stack.rules()).json()["dry_runs"]}
        return len(runs) == 1 and datetime.fromisoformat(runs.pop()) == later_run_at

    await wait_for(replaced, timeout=60, interval=0.3, what="the later dry run kept")

    # The first run arriving late (a new delivery of its figures) changes nothing; a run of
    # another candidate sent after it on the council's partition says it has been read.
    async with publisher(stack.kafka.bootstrap_servers) as sender:
        await sender.send(RulesetDryRunCompleted.model_validate(published), stack.council)
        sentinel = RulesetDryRunCompleted.model_validate(
            {**published, "candidate_version": "sentinel@0", "ran_at": again["ran_at"]}
        )
        await sender.send(sentinel, stack.council)

    async def sentinel_read() -> dict[str, Any] | None:
        report = (await stack.rules()).json()
        seen = {r["candidate_version"] for r in report["dry_runs"]}
        return dict(report) if "sentinel@0" in seen else None

    report = await wait_for(sentinel_read, timeout=60, interval=0.3, what="the sentinel run")
    kept = {r["ran_at"] for r in report["dry_runs"] if r["candidate_version"] == candidate}
    assert [datetime.fromisoformat(t) for t in kept] == [later_run_at]
