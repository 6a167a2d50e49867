"""The rules run as compiled CEL (all of a ruleset's conditions in one program, each decision
remembered by what the conditions read) and decide exactly as the reference evaluator,
cel-python, decided them before: over many generated profiles, for the default ruleset and
the rulesets the tests use. No I/O."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import celpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.risk.domain.rules import (
    Reads,
    ReferralFacts,
    Ruleset,
    SignalFact,
    build_profile,
    latest_current,
    load_ruleset,
)
from services.risk.domain.signals import SignalType
from shared.vocabulary import Circumstance, Need

TODAY = date(2026, 11, 22)
DEFAULT = (Path(__file__).parents[3] / "services/risk/rulesets/default.yaml").read_text()

EARLIER_HELP = """
label: earlier-help
flag_level: medium
rules:
  - id: rent-arrears-4-weeks
    description: Rent arrears of four weeks or more
    explanation: "Rent arrears of {rent_arrears.weeks} weeks."
    when: has(signals.rent_arrears) && signals.rent_arrears.weeks >= 4
    level: high
    score: 40
    suggest: [housing]
  - id: council-tax-any-stage
    description: Council tax arrears at any stage
    explanation: Council tax arrears.
    when: has(signals.council_tax_arrears)
    level: medium
    score: 20
"""

# Conditions written other ways: without has(), on money, on the referral, over whole maps.
VARIED = """
label: varied
flag_level: high
rules:
  - id: weeks-without-has
    description: reads a field of a signal that may be absent
    explanation: "Weeks: {rent_arrears.weeks}."
    when: signals.rent_arrears.weeks > 2
    level: medium
    score: 10
  - id: money
    description: money is a double
    explanation: Money.
    when: has(signals.rent_arrears) && signals.rent_arrears.amount >= 1000.0
    level: high
    score: 30
    suggest: [money_and_debt]
  - id: recent-notice
    description: a notice date and days ago
    explanation: "Notice on {eviction_notice.notice_date}."
    when: >-
      has(signals.eviction_notice) && signals.eviction_notice.days_ago < 30
      && signals.eviction_notice.notice_type in ["section_8", "warrant"]
    level: crisis
    score: 60
  - id: many-signals
    description: the whole map
    explanation: Many signals.
    when: size(signals) >= 2 || distinct_signals_90d >= 3
    level: medium
    score: 15
  - id: a-young-parent
    description: the referral
    explanation: Referral.
    when: >-
      referral.present && referral.age >= 0 && referral.age < 25
      && "children_in_household" in referral.circumstances
    level: high
    score: 25
  - id: food
    description: a need in the referral
    explanation: Food.
    when: referral.needs.exists(n, n == "food") && referral.urgency != "none"
    level: low
    score: 5
    suggest: [food]
  - id: a-flag-that-is-sent
    description: a bool attribute
    explanation: Self-disconnection.
    when: has(signals.disconnection_risk) && signals.disconnection_risk.self_disconnection
    level: high
    score: 20
  - id: observed-on-text
    description: a date as text
    explanation: Observed.
    when: has(signals.job_loss) && signals.job_loss.observed_on >= "2026-11-01"
    level: low
    score: 5
"""

RULESETS = {
    "default": load_ruleset(DEFAULT),
    "earlier-help": load_ruleset(EARLIER_HELP),
    "varied": load_ruleset(VARIED),
}


def reference_firing(ruleset: Ruleset, profile: dict[str, Any]) -> list[str]:
    """The rules that fire, as cel-python decided them before (a rule whose condition
    cannot decide does not fire)."""
    environment = celpy.Environment()
    activation = celpy.json_to_cel(dict(profile))
    fired = []
    for rule in ruleset.rules:
        try:
            outcome = environment.program(environment.compile(rule.spec.when)).evaluate(activation)
        except (celpy.CELEvalError, TypeError, KeyError, ValueError):
            continue
        if isinstance(outcome, celpy.celtypes.BoolType) and bool(outcome):
            fired.append(rule.spec.id)
    return fired


ATTRIBUTES = {
    SignalType.RENT_ARREARS: st.fixed_dictionaries(
        {
            "weeks": st.integers(0, 20),
            "amount": st.sampled_from([Decimal("0"), Decimal("420.50"), Decimal("1200")]),
        }
    ),
    SignalType.COUNCIL_TAX_ARREARS: st.fixed_dictionaries(
        {
            "amount": st.just(Decimal("840")),
            "stage": st.sampled_from(["reminder", "summons", "enforcement"]),
        }
    ),
    SignalType.BENEFIT_SANCTION: st.fixed_dictionaries(
        {"kind": st.sampled_from(["sanction", "uc_deduction"]), "amount": st.none()}
    ),
    SignalType.EVICTION_NOTICE: st.fixed_dictionaries(
        {
            "notice_type": st.sampled_from(["section_21", "section_8", "warrant"]),
            "notice_date": st.just(TODAY - timedelta(days=4)),
        }
    ),
    SignalType.DISCONNECTION_RISK: st.fixed_dictionaries(
        {"utility": st.sampled_from(["gas", "water"]), "self_disconnection": st.booleans()}
    ),
    SignalType.JOB_LOSS: st.just({}),
    SignalType.BEREAVEMENT: st.just({}),
}


@st.composite
def facts(draw: st.DrawFn) -> SignalFact:
    kind = draw(st.sampled_from(sorted(ATTRIBUTES)))
    observed = TODAY - timedelta(days=draw(st.integers(-3, 200)))
    return SignalFact(
        kind, draw(ATTRIBUTES[kind]), observed, observed + timedelta(days=draw(st.integers(1, 200)))
    )


referrals = st.one_of(
    st.none(),
    st.builds(
        ReferralFacts,
        circumstances=st.lists(st.sampled_from([c.value for c in Circumstance]), max_size=2).map(
            tuple
        ),
        needs=st.lists(st.sampled_from([n.value for n in Need]), max_size=2).map(tuple),
        urgency=st.sampled_from(["none", "low", "high"]),
        age=st.one_of(st.none(), st.integers(-5, 200)),
    ),
)


@pytest.mark.filterwarnings("ignore:The recursion limit will not be reset")  # cel-python's
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(facts(), max_size=4), referrals, st.sampled_from(sorted(RULESETS)))
def test_compiled_rules_decide_as_cel_python_decided(
    signals: list[SignalFact], referral: ReferralFacts | None, name: str
) -> None:
    ruleset = RULESETS[name]
    profile = build_profile(signals, referral, today=TODAY)
    result = ruleset.evaluate(profile)
    assert [f.rule_id for f in result.fired] == reference_firing(ruleset, profile)
    assert ruleset.level_of(profile) is result.level
    if referral is None:
        assert ruleset.level_of_signals(signals, today=TODAY) is result.level
        # Decided already: the explanations filled from the signals, not a profile.
        assert ruleset.evaluate_signals(signals, today=TODAY) == result


@settings(max_examples=400, deadline=None)
@given(st.lists(facts(), max_size=4), st.sampled_from(sorted(RULESETS)))
def test_the_key_from_signals_is_the_key_of_their_profile(
    signals: list[SignalFact], name: str
) -> None:
    reads = RULESETS[name].reads
    from_signals = reads.key_of_signals(latest_current(signals, today=TODAY), today=TODAY)
    if from_signals is not None:
        assert from_signals == reads.key(build_profile(signals, None, today=TODAY))


@pytest.mark.filterwarnings("ignore:The recursion limit will not be reset")
@settings(max_examples=300, deadline=None)
@given(st.lists(facts(), max_size=4), st.lists(facts(), max_size=4), referrals)
def test_profiles_alike_in_what_the_rules_read_are_decided_alike(
    first: list[SignalFact], second: list[SignalFact], referral: ReferralFacts | None
) -> None:
    for ruleset in RULESETS.values():
        one = build_profile(first, referral, today=TODAY)
        other = build_profile(second, referral, today=TODAY)
        if ruleset.reads.key(one) == ruleset.reads.key(other):
            assert reference_firing(ruleset, one) == reference_firing(ruleset, other)


def test_the_default_rules_on_the_profiles_of_the_rule_tests() -> None:
    ruleset = load_ruleset(DEFAULT)  # nothing remembered yet
    notice = SignalFact(
        SignalType.EVICTION_NOTICE,
        {"notice_type": "section_21", "notice_date": "2026-11-01"},
        TODAY - timedelta(days=5),
        TODAY + timedelta(days=85),
    )
    profile = build_profile([notice], None, today=TODAY)
    assert [f.rule_id for f in ruleset.evaluate(profile).fired] == ["eviction-notice"]
    assert ruleset.evaluate(profile).fired[0].explanation == (
        "An eviction or possession notice (section_21) was served on 2026-11-01."
    )


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        (
            ["has(signals.rent_arrears) && signals.rent_arrears.weeks >= 8"],
            Reads((), (("rent_arrears", ("weeks",)),), (), False, (), False),
        ),
        (["has(signals.eviction_notice)"], Reads(("eviction_notice",), (), (), False, (), False)),
        (
            ['signals.rent_arrears["weeks"] > 1'],
            Reads((), (), ("rent_arrears",), False, (), False),
        ),
        (["size(signals) > 1"], Reads((), (), (), True, (), False)),
        (["signals . rent_arrears . weeks > 1"], Reads((), (), (), True, (), False)),
        (
            ['"no_food_in_home" in referral.circumstances'],
            Reads((), (), (), False, ("circumstances",), False),
        ),
        (["size(referral) > 1"], Reads((), (), (), False, (), True)),
        (["distinct_signals_90d >= 3"], Reads((), (), (), False, (), False)),
    ],
)
def test_what_conditions_read_is_found_erring_on_reading_more(
    conditions: list[str], expected: Reads
) -> None:
    assert Reads.of(conditions) == expected


def test_a_ruleset_remembers_a_bounded_number_of_decisions() -> None:
    ruleset = load_ruleset(DEFAULT)
    for weeks in range(200):
        fact = SignalFact(
            SignalType.RENT_ARREARS,
            {"weeks": weeks, "amount": 100.0},
            TODAY - timedelta(days=1),
            TODAY + timedelta(days=60),
        )
        ruleset.evaluate(build_profile([fact], None, today=TODAY))
    assert 0 < len(ruleset._decided) <= 200
