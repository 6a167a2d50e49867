"""The default ruleset on hand-made profiles, and what loading refuses. No I/O."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from services.risk.domain.rules import (
    MAX_AGE,
    NO_RESIDENT_KEY,
    ReferralFacts,
    RulesetError,
    SignalFact,
    assess_case,
    build_profile,
    load_ruleset,
)
from services.risk.domain.signals import SignalType
from services.risk.domain.transparency import HUMAN_OVERSIGHT, explain
from shared.vocabulary import RiskLevel

TODAY = date(2026, 11, 22)
DEFAULT = load_ruleset(
    (Path(__file__).parents[3] / "services" / "risk" / "rulesets" / "default.yaml").read_text()
)


def signal(type_: str, days_ago: int = 5, lasts: int = 90, **attributes) -> SignalFact:
    observed = TODAY - timedelta(days=days_ago)
    return SignalFact(SignalType(type_), attributes, observed, observed + timedelta(days=lasts))


def fired(*signals: SignalFact, referral: ReferralFacts | None = None) -> set[str]:
    result = DEFAULT.evaluate(build_profile(signals, referral, today=TODAY))
    return {f.rule_id for f in result.fired}


def test_eviction_notice_is_a_crisis() -> None:
    notice = signal("eviction_notice", notice_type="section_21", notice_date="2026-11-01")
    result = DEFAULT.evaluate(build_profile([notice], None, today=TODAY))
    assert result.level is RiskLevel.CRISIS and "eviction-notice" in {
        f.rule_id for f in result.fired
    }
    assert result.fired[0].explanation == (
        "An eviction or possession notice (section_21) was served on 2026-11-01."
    )
    assert fired(signal("rent_arrears", weeks=2, amount=300.0)) == {"rent-arrears"}


@pytest.mark.parametrize(("weeks", "expected"), [(8, True), (12, True), (7, False)])
def test_rent_arrears_of_eight_weeks(weeks: int, expected: bool) -> None:
    assert (
        "rent-arrears-8-weeks" in fired(signal("rent_arrears", weeks=weeks, amount=900.0))
    ) is expected


def test_expired_and_future_signals_do_not_count() -> None:
    expired = signal("rent_arrears", days_ago=100, lasts=90, weeks=10, amount=1200.0)
    assert fired(expired) == set()
    future = signal("rent_arrears", days_ago=-3, weeks=10, amount=1200.0)
    assert fired(future) == set()


def test_the_latest_signal_of_a_type_counts() -> None:
    old = signal("rent_arrears", days_ago=40, weeks=10, amount=1200.0)
    paid_down = signal("rent_arrears", days_ago=2, weeks=3, amount=350.0)
    assert fired(old, paid_down) == {"rent-arrears"}


def test_council_tax_enforcement_with_a_recent_sanction() -> None:
    enforcement = signal("council_tax_arrears", amount=840.0, stage="enforcement", lasts=180)
    sanction = signal("benefit_sanction", days_ago=30, lasts=180, kind="sanction")
    assert "council-tax-enforcement-and-sanction" in fired(enforcement, sanction)
    stale = signal("benefit_sanction", days_ago=120, lasts=180, kind="sanction")
    assert "council-tax-enforcement-and-sanction" not in fired(enforcement, stale)
    summons = signal("council_tax_arrears", amount=840.0, stage="summons", lasts=180)
    assert "council-tax-enforcement-and-sanction" not in fired(summons, sanction)


def test_three_different_signals_within_90_days() -> None:
    three = [
        signal("job_loss", days_ago=80, lasts=180),
        signal("bereavement", lasts=180),
        signal("disconnection_risk", utility="gas"),
    ]
    assert "three-signals-90-days" in fired(*three)
    assert "three-signals-90-days" not in fired(*three[1:])
    older = signal("job_loss", days_ago=95, lasts=180)
    assert "three-signals-90-days" not in fired(older, *three[1:])


def test_no_food_in_the_home_from_the_referral() -> None:
    hungry = ReferralFacts(circumstances=("no_food_in_home",), needs=("food",), urgency="high")
    result = DEFAULT.evaluate(build_profile([], hungry, today=TODAY))
    assert result.level is RiskLevel.CRISIS and result.suggested_needs == ("food",)
    assert fired(referral=ReferralFacts(circumstances=("children_in_household",))) == set()


def test_nothing_fires_on_an_empty_profile() -> None:
    result = DEFAULT.evaluate(build_profile([], None, today=TODAY))
    assert (result.level, result.score, result.fired) == (RiskLevel.NONE, 0, ())


def test_levels_take_the_highest_and_scores_add_up_to_100_at_most() -> None:
    many = [
        signal("eviction_notice", notice_type="warrant", notice_date="2026-11-20"),
        signal("rent_arrears", weeks=12, amount=1500.0),
        signal("disconnection_risk", utility="electricity", self_disconnection=True),
    ]
    result = DEFAULT.evaluate(build_profile(many, ReferralFacts(("no_food_in_home",)), today=TODAY))
    assert result.level is RiskLevel.CRISIS and result.score == 100
    assert result.suggested_needs[:2] == ("housing", "money_and_debt")


def test_the_version_is_the_label_and_a_hash_of_the_text() -> None:
    assert DEFAULT.version.startswith("default@") and len(DEFAULT.version) == len("default@") + 12
    assert load_ruleset(DEFAULT.source + "\n# a comment\n").version != DEFAULT.version


BASE = """
label: candidate
flag_level: high
rules:
  - id: rent
    description: rent
    explanation: rent
    when: {when}
    level: high
    score: 10
"""


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ("signals.rent_arrears.weeks >=", "rule 'rent': condition is not valid CEL"),
        (
            "has(signals.rent_arrears) && signals.rent_arrears.wekks >= 8",
            "rule 'rent': signal 'rent_arrears' has no field 'wekks'",
        ),
        ("has(signals.rent_areas)", "rule 'rent': unknown signal type 'rent_areas'"),
        ("referral.shoe_size > 3", "rule 'rent': referral has no field 'shoe_size'"),
        ("signals.rent_arrears.amount >= 'lots'", "rule 'rent': condition cannot be evaluated"),
        ("distinct_signals_90d + 1", "rule 'rent': condition must be true or false"),
    ],
)
def test_bad_conditions_are_refused_naming_the_rule(when: str, message: str) -> None:
    with pytest.raises(RulesetError) as refused:
        load_ruleset(BASE.format(when=repr(when)))
    assert any(error.startswith(message) for error in refused.value.errors), refused.value.errors


def test_duplicate_ids_and_unknown_fields_are_refused() -> None:
    duplicate = (
        BASE.format(when="'true'")
        + """
  - id: rent
    description: again
    explanation: again
    when: "false"
    level: low
    score: 1
"""
    )
    with pytest.raises(RulesetError, match="rule 'rent': duplicate id"):
        load_ruleset(duplicate)
    with pytest.raises(RulesetError, match="rule 'rent': colour: Extra inputs are not permitted"):
        load_ruleset(BASE.format(when="'true'") + "    colour: red\n")
    with pytest.raises(RulesetError, match="rule 'rent': level: Input should be"):
        load_ruleset(BASE.format(when="'true'").replace("level: high", "level: severe"))
    with pytest.raises(RulesetError, match="not valid YAML"):
        load_ruleset("label: [unclosed")
    # What the parser cannot read, and what it reads but the policy refuses, are refusals too.
    with pytest.raises(RulesetError, match="nests deeper than 32 levels"):
        load_ruleset("rules: " + "[" * 5000)
    with pytest.raises(RulesetError, match="a number outside"):
        load_ruleset(BASE.format(when="'true'").replace("score: 10", "score: " + "9" * 5000))
    with pytest.raises(RulesetError, match=r"rules.0.explanation: contains a control character"):
        load_ruleset(BASE.format(when="'true'").replace("explanation: rent", 'explanation: "r\\0"'))


def test_a_referrals_facts_are_stored_and_read_back_unchanged() -> None:
    facts = ReferralFacts(("children_in_household",), ("food",), "medium", 42)
    assert ReferralFacts.from_json(facts.to_json()) == facts
    assert ReferralFacts.from_json(ReferralFacts().to_json()) == ReferralFacts()


def test_a_case_whose_resident_has_no_key_is_assessed_on_its_referral_and_says_so() -> None:
    hungry = ReferralFacts(circumstances=("no_food_in_home",), needs=("food",), urgency="high")
    unkeyed = assess_case(DEFAULT, None, hungry, today=TODAY)
    assert unkeyed.level is RiskLevel.CRISIS and [f.rule_id for f in unkeyed.fired] == [
        "no-food-in-home"
    ]
    assert unkeyed.notes == (NO_RESIDENT_KEY,)
    assert "no date of birth, postcode or UPRN" in NO_RESIDENT_KEY.explanation
    # A resident with a key and no signals held: the same rules, and nothing to note.
    keyed = assess_case(DEFAULT, [], hungry, today=TODAY)
    assert (keyed.level, keyed.fired, keyed.notes) == (unkeyed.level, unkeyed.fired, ())
    # The note changes neither the level nor the score.
    quiet = assess_case(DEFAULT, None, ReferralFacts(needs=("food",)), today=TODAY)
    assert (quiet.level, quiet.score, quiet.fired) == (RiskLevel.NONE, 0, ())


def test_the_explanation_gives_the_notes_after_the_rules() -> None:
    note = NO_RESIDENT_KEY.explanation
    assert explain(RiskLevel.NONE, [], [note]) == (
        f"None of the rules applied, so this shows no particular concern. {note} {HUMAN_OVERSIGHT}"
    )
    assert explain(RiskLevel.CRISIS, ["No food."], [note]) == (
        f"This shows a possible crisis that needs a quick response because: (1) No food. "
        f"{note} {HUMAN_OVERSIGHT}"
    )
    assert explain(RiskLevel.LOW, ["Arrears."]).endswith(f"(1) Arrears. {HUMAN_OVERSIGHT}")


def test_a_rule_may_not_take_the_id_of_a_note() -> None:
    taken = BASE.format(when="'true'").replace("id: rent", f"id: {NO_RESIDENT_KEY.id}")
    with pytest.raises(RulesetError, match=f"rule '{NO_RESIDENT_KEY.id}': the id is reserved"):
        load_ruleset(taken)


@pytest.mark.parametrize(
    ("age", "read_as"),
    [(None, -1), (0, 0), (42, 42), (MAX_AGE, MAX_AGE), (-1, -1), (-7, -1), (2**70, -1)],
)
def test_an_age_no_one_can_have_is_read_as_unknown(age: int | None, read_as: int) -> None:
    facts = ReferralFacts(needs=("food",), urgency="low", age=age)
    profile = build_profile([], facts, today=TODAY)
    assert profile["referral"]["age"] == read_as
    assert DEFAULT.evaluate(profile).level is RiskLevel.NONE  # and the rules can read it
