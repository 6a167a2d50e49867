"""A council's dry run as its event: built from the comparison, counts only. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime

from services.risk.domain.dry_run import Comparison
from services.risk.domain.rules import build_profile
from services.risk.service_layer.rulesets import dry_run_completed
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import DataClassification
from shared.events.payloads import RuleReach, RulesetDryRunCompleted
from shared.vocabulary import RiskLevel
from tests.unit.risk.test_dry_run import DEFAULT, EARLIER_HELP, TODAY, rent_arrears

RAN_AT = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
COUNCIL = "E09000025"


def compared() -> Comparison:
    comparison = Comparison(DEFAULT, EARLIER_HELP)
    for weeks in (5, 9, 2):
        comparison.add(rent_arrears(weeks))
    comparison.add(build_profile([], None, today=TODAY))
    return comparison


def test_the_event_carries_the_levels_and_every_rules_reach_under_each_ruleset() -> None:
    event = dry_run_completed(compared(), council=COUNCIL, ran_at=RAN_AT)
    assert (event.council, event.ran_at) == (COUNCIL, RAN_AT)
    assert (event.candidate_version, event.in_force_version) == (
        EARLIER_HELP.version,
        DEFAULT.version,
    )
    assert (event.residents, event.residents_changing_level) == (4, 2)
    assert event.levels_in_force == {
        RiskLevel.NONE: 1,
        RiskLevel.LOW: 2,
        RiskLevel.MEDIUM: 0,
        RiskLevel.HIGH: 1,
        RiskLevel.CRISIS: 0,
    }
    assert event.levels_candidate[RiskLevel.HIGH] == 2
    assert event.levels_candidate[RiskLevel.NONE] == 2
    reach = {r.rule_id: r for r in event.rules}
    # Every rule of either ruleset, those in force first: not only those that differ.
    assert [r.rule_id for r in event.rules] == [
        *(r.spec.id for r in DEFAULT.rules),
        "rent-arrears-4-weeks",
    ]
    assert reach["rent-arrears"] == RuleReach(rule_id="rent-arrears", in_force=3, candidate=0)
    assert reach["rent-arrears-8-weeks"] == RuleReach(
        rule_id="rent-arrears-8-weeks", in_force=1, candidate=0
    )
    assert reach["rent-arrears-4-weeks"] == RuleReach(
        rule_id="rent-arrears-4-weeks", in_force=0, candidate=2
    )
    # The figures agree with the operator's report of the same comparison.
    report = compared().report()
    for driving in report["rules_driving_the_difference"]:
        found = reach[driving["rule_id"]]
        assert (found.in_force, found.candidate) == (driving["current"], driving["candidate"])


def test_the_event_is_operational_keyed_by_council_and_round_trips() -> None:
    event = dry_run_completed(compared(), council=COUNCIL, ran_at=RAN_AT)
    registered = CATALOGUE.for_payload(RulesetDryRunCompleted)
    assert registered.name == "uk.upstream.risk.ruleset.dry_run_completed.v1"
    assert registered.topic.name == "risk.rulesets.v1"
    assert registered.classification is DataClassification.OPERATIONAL
    envelope = CATALOGUE.envelope(event, source="/upstream/risk", subject=COUNCIL)
    assert envelope.subject == COUNCIL
    again = RulesetDryRunCompleted.model_validate_json(event.model_dump_json())
    assert again == event
    # Counts and versions only: nothing that names or keys a resident.
    assert set(RulesetDryRunCompleted.model_fields) == {
        "council",
        "candidate_version",
        "in_force_version",
        "ran_at",
        "residents",
        "residents_changing_level",
        "levels_in_force",
        "levels_candidate",
        "rules",
    }
