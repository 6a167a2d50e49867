"""A dry run's comparison of two rulesets over hand-made profiles. No I/O."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from services.risk.domain.dry_run import Comparison
from services.risk.domain.rules import SignalFact, build_profile, load_ruleset
from services.risk.domain.signals import SignalType

TODAY = date(2026, 11, 22)
DEFAULT = load_ruleset(
    (Path(__file__).parents[3] / "services" / "risk" / "rulesets" / "default.yaml").read_text()
)
EARLIER_HELP = load_ruleset(
    """
label: earlier-help
flag_level: medium
rules:
  - id: rent-arrears-4-weeks
    description: Rent arrears of four weeks or more
    explanation: "Rent arrears of {rent_arrears.weeks} weeks."
    when: has(signals.rent_arrears) && signals.rent_arrears.weeks >= 4
    level: high
    score: 40
"""
)


def rent_arrears(weeks: int) -> dict[str, object]:
    observed = TODAY - timedelta(days=3)
    fact = SignalFact(
        SignalType.RENT_ARREARS,
        {"weeks": weeks, "amount": 500.0},
        observed,
        observed + timedelta(90),
    )
    return build_profile([fact], None, today=TODAY)


def test_the_report_counts_levels_changes_and_the_rules_behind_them() -> None:
    comparison = Comparison(DEFAULT, EARLIER_HELP)
    for weeks in (5, 9, 2):
        comparison.add(rent_arrears(weeks))
    comparison.add(build_profile([], None, today=TODAY))
    report = comparison.report()
    assert report["residents"] == 4
    assert report["current"] == {
        "version": DEFAULT.version,
        "levels": {"none": 1, "low": 2, "medium": 0, "high": 1, "crisis": 0},
    }
    assert report["candidate"]["levels"] == {
        "none": 2,
        "low": 0,
        "medium": 0,
        "high": 2,
        "crisis": 0,
    }
    # 5 weeks: low -> high; 2 weeks: low -> none; 9 weeks: high both.
    assert report["residents_changing_level"] == 2
    assert report["rules_driving_the_difference"] == [
        {"rule_id": "rent-arrears", "current": 3, "candidate": 0},
        {"rule_id": "rent-arrears-4-weeks", "current": 0, "candidate": 2},
        {"rule_id": "rent-arrears-8-weeks", "current": 1, "candidate": 0},
    ]
