"""The working week and the deadlines the settings give (bank holidays included): shared by
placement (offer deadlines), offers (follow-ups) and gaps (how long is too long to wait). An
offer's deadlines follow its service's opening hours where the directory has them."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import replace
from datetime import date
from functools import lru_cache

from sqlalchemy.ext.asyncio import AsyncSession

from services.partners.adapters import directory as directory_store
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


async def service_deadline_rules(
    session: AsyncSession, settings: PartnersSettings, service_id: str
) -> DeadlineRules:
    """The settings' deadlines in the service's own opening hours, if the directory has
    them (the deployment's zone and bank holidays still apply); else as ``deadline_rules``."""
    rules = deadline_rules(settings)
    hours = await directory_store.opening_hours(session, service_id)
    return replace(rules, week=rules.week.with_hours(hours))
