"""The rule evaluation's dry runs: each recent candidate's expected reach per rule beside
what the rule's flags under the ruleset in force led to. Hand-made facts, no I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.referrals.domain.reporting import (
    CaseFact,
    DryRunFact,
    DryRunRuleFact,
    Facts,
    Filters,
    FlagFact,
    OfferFact,
    rules_report,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
RAN_AT = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def run(candidate: str, ran_at: datetime, rules: list[tuple[str, int, int]]) -> DryRunFact:
    return DryRunFact(
        candidate_version=candidate,
        in_force_version="v1",
        ran_at=ran_at,
        residents=10,
        residents_changing_level=3,
        # JSONB keeps its own key order: the report puts the levels in order itself.
        levels_in_force={"high": 2, "none": 6, "low": 2},
        levels_candidate={"high": 4, "none": 5, "low": 1},
        rules=tuple(DryRunRuleFact(r, now, then) for r, now, then in rules),
    )


def the_facts(dry_runs: list[DryRunFact]) -> Facts:
    flags = [
        FlagFact("f1", "res-a", at(0), "high", "v1", ("arrears",)),
        FlagFact("f2", "res-b", at(1), "high", "v1", ("arrears", "fuel")),
        FlagFact("f3", "res-c", at(1), "high", "v0", ("fuel",)),  # an older ruleset's
    ]
    cases = [
        CaseFact("c1", "E09000025", "flag", at(0), flag_ref="f1", ready_at=at(2)),
        CaseFact("c2", "E09000025", "flag", at(1), flag_ref="f2"),
    ]
    offers = [
        OfferFact(
            "o1",
            "c1",
            "food",
            "pantry",
            offered_at=at(3),
            outcome="support_provided",
            outcome_at=at(30),
        ),
    ]
    return Facts(
        date(2026, 11, 1),
        date(2026, 11, 30),
        cases=cases,
        offers=offers,
        flags=flags,
        dry_runs=dry_runs,
    )


def test_each_rule_of_each_recent_dry_run_beside_its_actual_flags_under_the_ruleset_in_force() -> (
    None
):
    newer = run("v3", RAN_AT, [("arrears", 4, 9), ("fuel", 3, 1), ("new-rule", 0, 2)])
    older = run("v2", RAN_AT - timedelta(days=3), [("arrears", 4, 4)])
    report = rules_report("E09000025", the_facts([newer, older]), Filters())
    rows = [
        (
            r.candidate_version,
            r.rule_id,
            r.residents_flagged,
            r.positive_outcome,
            r.flag_to_help_share,
            r.would_fire_in_force,
            r.would_fire_candidate,
            r.change,
        )
        for r in report.dry_runs
    ]
    assert rows == [
        ("v3", "arrears", 2, 1, 0.5, 4, 9, 5),
        # fuel flagged res-b under v1 (res-c under v0 is another ruleset's flag)
        ("v3", "fuel", 1, 0, 0.0, 3, 1, -2),
        ("v3", "new-rule", 0, 0, None, 0, 2, 2),  # no actual flags: no conversion
        ("v2", "arrears", 2, 1, 0.5, 4, 4, 0),
    ]
    assert {
        (r.in_force_version, r.ran_at) for r in report.dry_runs if r.candidate_version == "v3"
    } == {("v1", RAN_AT)}
    # The existing tables are as they were without dry runs.
    without = rules_report("E09000025", the_facts([]), Filters())
    assert (report.rules, report.assessment_levels) == (without.rules, without.assessment_levels)
    assert (without.dry_runs, without.dry_run_levels) == ([], [])


def test_levels_of_each_dry_run_lowest_first() -> None:
    report = rules_report("E09000025", the_facts([run("v3", RAN_AT, [])]), Filters())
    assert [
        (r.level, r.residents_in_force, r.residents_candidate, r.change)
        for r in report.dry_run_levels
    ] == [("none", 6, 5, -1), ("low", 2, 1, -1), ("high", 2, 4, 2)]


def test_filters_narrow_the_actual_flags_not_the_dry_runs_figures() -> None:
    facts = the_facts([run("v3", RAN_AT, [("arrears", 4, 9)])])
    (row,) = rules_report("E09000025", facts, Filters(area="E15")).dry_runs
    # No flag is in E15: the actual figures are zero, the dry run's the council's.
    assert (row.residents_flagged, row.would_fire_in_force, row.would_fire_candidate) == (0, 4, 9)
