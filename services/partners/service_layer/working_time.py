"""The working week and the deadlines the settings give (bank holidays included): shared by
placement (offer deadlines), offers (follow-ups) and gaps (how long is too long to wait)."""

from __future__ import annotations

from collections.abc import Container
from datetime import date
from functools import lru_cache

from services.partners.domain import offers as lifecycle
from services.partners.domain.offers import DeadlineRules, WorkingWeek
from services.partners.settings import PartnersSettings


@lru_cache(maxsize=4)
def _bank_holidays(country: str | None, subdivision: str | None) -> Container[date]:
    return lifecycle.bank_holidays(country, subdivision)


def deadline_rules(settings: PartnersSettings) -> DeadlineRules:
    """The settings' deadlines by urgency and working week, with its bank holidays."""
    week = WorkingWeek(
        opens=settings.working_day_start,
        closes=settings.working_day_end,
        days=frozenset(settings.working_days),
        zone=settings.working_time_zone,
        holidays=_bank_holidays(settings.bank_holidays_country, settings.bank_holidays_subdivision),
    )
    return DeadlineRules(
        clock_hours=settings.response_hours,
        working_hours=settings.response_working_hours,
        follow_up_hours=settings.follow_up_working_hours,
        week=week,
    )
