"""When a resident without a case is flagged to their council: at or above the ruleset's flag
level, and not again within the cooling-off period unless the level rises."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.vocabulary import RiskLevel


@dataclass(frozen=True)
class LastFlag:
    level: RiskLevel
    flagged_at: datetime


def should_flag(
    level: RiskLevel,
    *,
    flag_level: RiskLevel,
    last_flag: LastFlag | None,
    cooling_off: timedelta,
    now: datetime,
) -> bool:
    """At or above the flag level, unless already flagged at this level or higher lately."""
    if _RANK[level] < _RANK[flag_level]:
        return False
    return not (
        last_flag is not None
        and last_flag.flagged_at > now - cooling_off
        and _RANK[last_flag.level] >= _RANK[level]
    )


# ``RiskLevel.rank``, looked up rather than worked out: this runs for every resident of a feed.
_RANK = {level: level.rank for level in RiskLevel}
