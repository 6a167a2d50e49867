"""A service's opening hours: the working week its offers are due in, read from ORUK
schedules and validated on the service API. No I/O."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.partners.domain import oruk
from services.partners.domain.offers import WorkingWeek, follow_up_by, respond_by
from services.partners.service_layer.directory import ServiceDetails
from services.partners.service_layer.working_time import deadline_rules
from services.partners.settings import PartnersSettings

LONDON = ZoneInfo("Europe/London")
RULES = deadline_rules(PartnersSettings(database_url="postgresql+asyncpg://unused/unused"))


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)  # type: ignore[misc]


def hours(*entries: tuple[str, str, str]) -> list[dict[str, str]]:
    return [{"day": d, "opens": o, "closes": c} for d, o, c in entries]


FOOD_BANK = hours(("FR", "12:00", "18:00"), ("SA", "09:00", "17:00"))  # Friday and Saturday
ADVICE = hours(("TU", "10:00", "16:00"), ("TH", "10:00:00", "16:00:00"))  # Tuesday, Thursday


def rules_with(opening_hours: list[dict[str, str]] | None) -> Any:
    return replace(RULES, week=RULES.week.with_hours(opening_hours))


def test_a_saturday_food_bank_answers_a_friday_afternoon_offer_on_saturday() -> None:
    # High is 8 working hours: 2 on Friday (16:00-18:00), 6 on Saturday from 09:00.
    offered = london(2026, 11, 27, 16, 0)  # a Friday
    assert respond_by(offered, "high", rules_with(FOOD_BANK)) == london(2026, 11, 28, 15, 0)
    # without the directory's hours, the deployment week: Monday afternoon
    assert respond_by(offered, "high", rules_with(None)) == london(2026, 11, 30, 16, 0)


def test_a_tuesday_and_thursday_service_is_due_on_its_days() -> None:
    offered = london(2026, 11, 23, 12, 0)  # a Monday: closed, so counting starts Tuesday
    # 6 hours on Tuesday, 2 on Thursday
    assert respond_by(offered, "high", rules_with(ADVICE)) == london(2026, 11, 26, 12, 0)
    # the follow-up deadline uses the same hours (high: two working days, 16 hours)
    assert follow_up_by(offered, "high", rules_with(ADVICE)) == london(2026, 12, 1, 14, 0)


def test_crisis_stays_in_clock_hours() -> None:
    offered = london(2026, 11, 23, 12, 0)
    assert respond_by(offered, "crisis", rules_with(ADVICE)) == london(2026, 11, 23, 16, 0)


def test_the_deployment_zone_and_bank_holidays_still_apply() -> None:
    week = RULES.week.with_hours(hours(("FR", "09:00", "17:00")))
    assert week.zone == RULES.week.zone and week.holidays is RULES.week.holidays
    # Christmas Day 2026 and New Year's Day 2027 are Fridays and bank holidays
    due = respond_by(london(2026, 12, 24, 12, 0), "high", replace(RULES, week=week))
    assert due == london(2027, 1, 8, 17, 0)


def test_hours_on_a_day() -> None:
    week = WorkingWeek().with_hours(ADVICE)
    assert week.hours_on(1) == (time(10), time(16)) and week.hours_on(0) is None
    assert WorkingWeek().hours_on(0) == (time(9), time(17)) and WorkingWeek().hours_on(5) is None
    assert WorkingWeek().with_hours([]) == WorkingWeek()
    with pytest.raises(ValueError, match="before they close"):
        WorkingWeek(by_day=((0, time(12), time(11)),))


# -- ORUK schedules --------------------------------------------------------------------------


def test_weekly_schedules_are_read_and_the_rest_is_said() -> None:
    document = {
        "schedules": [
            {
                "id": "a",
                "freq": "WEEKLY",
                "byday": "TU,TH",
                "opens_at": "10:00",
                "closes_at": "16:00",
            },
            {
                "id": "b",
                "freq": "MONTHLY",
                "byday": "1SA",
                "opens_at": "10:00",
                "closes_at": "12:00",
            },
            {"id": "c", "freq": "WEEKLY", "byday": "TU", "opens_at": "17:00", "closes_at": "19:00"},
            {"id": "d", "freq": "WEEKLY", "byday": "SA", "opens_at": "later", "closes_at": "12:00"},
            {
                "id": "e",
                "freq": "WEEKLY",
                "interval": 2,
                "byday": "MO",
                "opens_at": "09:00",
                "closes_at": "12:00",
            },
            {
                "id": "f",
                "freq": "WEEKLY",
                "byday": "FR,XX",
                "opens_at": "09:00:00Z",
                "closes_at": "13:00:00",
            },
        ]
    }
    opening, ignored = oruk.opening_hours(document)
    assert opening == hours(
        ("TU", "10:00:00", "16:00:00"),
        ("TH", "10:00:00", "16:00:00"),
        ("FR", "09:00:00", "13:00:00"),
    )
    assert ignored == [
        "schedule b: not every week (only freq WEEKLY, interval 1 is read)",
        "schedule c: TU already has opening hours",
        "schedule d: no readable opens_at before closes_at",
        "schedule e: not every week (only freq WEEKLY, interval 1 is read)",
        "schedule f: day 'XX' not read",
    ]
    assert oruk.opening_hours({}) == (None, [])


def test_opening_hours_go_out_as_weekly_schedules_and_come_back() -> None:
    sid = str(uuid.uuid4())
    out = oruk.schedules({"id": sid, "opening_hours": hours(("SA", "09:00:00", "17:00:00"))})
    assert [(s["freq"], s["byday"], s["opens_at"], s["closes_at"]) for s in out] == [
        ("WEEKLY", "SA", "09:00:00", "17:00:00")
    ]
    assert oruk.opening_hours({"schedules": out}) == (hours(("SA", "09:00:00", "17:00:00")), [])


# -- the service API's field -----------------------------------------------------------------


def details(opening_hours: Any) -> dict[str, Any]:
    return {
        "organization_id": str(uuid.uuid4()),
        "name": "Food bank",
        "description": "Food parcels",
        "needs": ["food"],
        "councils": ["E09000001"],
        "capacity": 3,
        "opening_hours": opening_hours,
    }


def test_the_service_field_is_validated_by_name() -> None:
    ok = ServiceDetails.model_validate(details(FOOD_BANK))
    assert ok.model_dump(mode="json")["opening_hours"][1] == {
        "day": "SA",
        "opens": "09:00:00",
        "closes": "17:00:00",
    }
    assert ServiceDetails.model_validate(details(None)).opening_hours is None
    for bad, where in [
        (hours(("SATURDAY", "09:00", "17:00")), ("opening_hours", 0, "day")),
        (hours(("SA", "17:00", "09:00")), ("opening_hours", 0, "closes")),
        (hours(("SA", "25:00", "26:00")), ("opening_hours", 0, "opens")),
        (hours(("SA", "09:00", "17:00+01:00")), ("opening_hours", 0, "closes")),
        (hours(("SA", "09:00", "12:00"), ("SA", "13:00", "17:00")), ("opening_hours",)),
    ]:
        with pytest.raises(ValidationError) as refused:
            ServiceDetails.model_validate(details(bad))
        assert refused.value.errors()[0]["loc"] == where
