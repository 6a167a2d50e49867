"""How fast the risk service evaluates rules and reads feeds (``make bench``; not part of
``make test``)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path

from services.risk.domain.feeds import check_parsed, lines_of, parse_csv
from services.risk.domain.rules import ReferralFacts, SignalFact, build_profile, load_ruleset
from services.risk.domain.signals import SignalType

REPO = Path(__file__).resolve().parents[2]
TODAY = date(2026, 11, 22)
RULESET = load_ruleset((REPO / "services/risk/rulesets/default.yaml").read_text())


def test_evaluating_the_default_rules_for_one_resident(benchmark) -> None:
    facts = [
        SignalFact(
            SignalType.RENT_ARREARS,
            {"weeks": 9, "amount": 900.0},
            TODAY - timedelta(days=3),
            TODAY + timedelta(days=80),
        ),
        SignalFact(SignalType.JOB_LOSS, {}, TODAY - timedelta(days=20), TODAY + timedelta(days=90)),
    ]
    profile = build_profile(facts, ReferralFacts(("children_in_household",)), today=TODAY)
    result = benchmark(RULESET.evaluate, profile)
    assert result.level.value == "high"


def test_reading_and_checking_10000_csv_rows(benchmark) -> None:
    header = (
        "type,council,given_name,family_name,date_of_birth,postcode,source,observed_on,"
        "weeks,amount\n"
    )
    row = "rent_arrears,E09000025,Amina,Okafor,1984-03-02,E15 4HT,newham-rent,2026-11-01,3,420\n"
    body = (header + row * 10_000).encode()

    async def chunks():
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    async def read() -> int:
        valid = 0
        async for line, raw in parse_csv(lines_of(chunks())):
            valid += not isinstance(check_parsed(line, raw), list)
        return valid

    assert benchmark(lambda: asyncio.run(read())) == 10_000
