"""When a resident without a case is flagged: every level against the flag level, and the
cooling-off period. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.risk.domain.flags import LastFlag, should_flag
from shared.vocabulary import RiskLevel

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
COOLING_OFF = timedelta(days=30)


@pytest.mark.parametrize("level", list(RiskLevel))
def test_a_first_flag_needs_the_flag_level(level: RiskLevel) -> None:
    flagged = should_flag(
        level, flag_level=RiskLevel.HIGH, last_flag=None, cooling_off=COOLING_OFF, now=NOW
    )
    assert flagged is (level.rank >= RiskLevel.HIGH.rank)


@pytest.mark.parametrize("last", [RiskLevel.HIGH, RiskLevel.CRISIS])
@pytest.mark.parametrize("level", [RiskLevel.HIGH, RiskLevel.CRISIS])
def test_within_the_cooling_off_only_a_higher_level_flags_again(
    level: RiskLevel, last: RiskLevel
) -> None:
    recently = LastFlag(last, NOW - COOLING_OFF + timedelta(minutes=1))
    flagged = should_flag(
        level, flag_level=RiskLevel.HIGH, last_flag=recently, cooling_off=COOLING_OFF, now=NOW
    )
    assert flagged is (level.rank > last.rank)


def test_after_the_cooling_off_the_same_level_flags_again() -> None:
    long_ago = LastFlag(RiskLevel.CRISIS, NOW - COOLING_OFF)
    assert should_flag(
        RiskLevel.CRISIS,
        flag_level=RiskLevel.HIGH,
        last_flag=long_ago,
        cooling_off=COOLING_OFF,
        now=NOW,
    )
    assert not should_flag(
        RiskLevel.MEDIUM,
        flag_level=RiskLevel.HIGH,
        last_flag=long_ago,
        cooling_off=COOLING_OFF,
        now=NOW,
    )
