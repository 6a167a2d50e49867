"""Gaps in service (``domain/gaps.py``): which gap a need is in, waiting counted in working
hours, and what a gap says (areas and bands, never who)."""

from __future__ import annotations

from datetime import UTC, datetime, time

from services.partners.domain.gaps import GapKey, NeedInGap, age_band, gaps, summarise
from services.partners.domain.offers import WorkingWeek
from services.partners.domain.placement import RouteRequestStatus
from shared.events.payloads import GapReason
from shared.vocabulary import Need

WEEK = WorkingWeek(
    opens=time(9), closes=time(17), days=frozenset(range(5)), zone="Europe/London", holidays=()
)
FRIDAY_4PM = datetime(2026, 11, 27, 16, tzinfo=UTC)  # London is on UTC in November


def waiting(since: datetime, **packet: object) -> NeedInGap:
    return NeedInGap.of("E09000025", "food", "waiting", since, "all full", packet)


def test_age_bands() -> None:
    assert [age_band(a) for a in (None, 0, 17, 18, 24, 25, 64, 65, 101, 200)] == [
        None,
        "0-17",
        "0-17",
        "18-24",
        "18-24",
        "25-64",
        "25-64",
        "65+",
        "65+",
        None,
    ]


def test_waiting_two_working_days_from_friday_afternoon_is_a_gap_on_tuesday_afternoon() -> None:
    need = waiting(FRIDAY_4PM)
    sixteen_hours = 16.0
    monday_5pm = datetime(2026, 11, 30, 17, tzinfo=UTC)
    tuesday_4pm = datetime(2026, 12, 1, 16, tzinfo=UTC)
    assert gaps([need], monday_5pm, sixteen_hours, WEEK) == {}
    key = GapKey("E09000025", Need.FOOD, GapReason.WAITING_TOO_LONG)
    assert gaps([need], tuesday_4pm, sixteen_hours, WEEK) == {key: [need]}


def test_an_unroutable_need_is_a_gap_at_once_and_placed_ones_are_none() -> None:
    unroutable = NeedInGap.of(
        "E09000025", "housing", "unroutable", FRIDAY_4PM, "no service meets the need", None
    )
    placed = NeedInGap(
        "E09000025", Need.FOOD, RouteRequestStatus.PLACED, FRIDAY_4PM, None, None, None, None
    )
    found = gaps([unroutable, placed], FRIDAY_4PM, 16.0, WEEK)
    assert list(found) == [GapKey("E09000025", Need.HOUSING, GapReason.UNROUTABLE)]


def test_a_summary_says_areas_languages_bands_and_counts() -> None:
    needs = [
        waiting(FRIDAY_4PM, postcode_district="E15", preferred_language="bn", age_years=70),
        waiting(datetime(2026, 11, 28, tzinfo=UTC), postcode_district="E13", age_years=30),
    ]
    key = GapKey("E09000025", Need.FOOD, GapReason.WAITING_TOO_LONG)
    summary = summarise(key, needs, datetime(2026, 12, 1, 16, tzinfo=UTC))
    assert summary.postcode_districts == ["E13", "E15"] and summary.languages == ["bn"]
    assert summary.age_bands == ["25-64", "65+"] and summary.residents_waiting == 2
    assert summary.waiting_since == FRIDAY_4PM and summary.longest_wait_hours == 96.0
    assert summary.detail == "every food service that could help is full"
