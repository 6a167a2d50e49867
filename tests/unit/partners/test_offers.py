"""The offer lifecycle on every pair of statuses, the sets derived from it, and the
deadline rules (working hours, bank holidays, the clock change, follow-ups). No I/O."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.partners.domain.offers import (
    ACTIVE_STATUSES,
    ALLOWED,
    FOLLOW_UP_STATUSES,
    GONE_STATUSES,
    ON_RECORD_STATUSES,
    PENDING_STATUSES,
    TAKEN_STATUSES,
    TERMINAL_STATUSES,
    VISIBLE_STATUSES,
    OfferTransitionRefused,
    WorkingWeek,
    add_working_hours,
    follow_up_by,
    is_overdue,
    respond_by,
    transition,
)
from services.partners.service_layer.placement import deadline_rules
from services.partners.settings import PartnersSettings
from shared.vocabulary import OfferStatus

S = OfferStatus
# accept, decline, progress, outcome, expire, withdraw: from where each may happen.
EXPECTED_ALLOWED = {
    (S.OFFERED, S.ACCEPTED),  # accept
    (S.OFFERED, S.DECLINED),  # decline before accepting
    (S.ACCEPTED, S.DECLINED),  # or after, before any work
    (S.ACCEPTED, S.IN_PROGRESS),  # progress
    (S.IN_PROGRESS, S.IN_PROGRESS),  # progress again
    (S.ACCEPTED, S.OUTCOME_RECORDED),  # outcome
    (S.IN_PROGRESS, S.OUTCOME_RECORDED),
    (S.OFFERED, S.EXPIRED),  # expire: not answered in time
    (S.OFFERED, S.WITHDRAWN),  # withdraw: consent withdrawn, case closed, service paused
    (S.ACCEPTED, S.WITHDRAWN),
    (S.IN_PROGRESS, S.WITHDRAWN),
}
ALL_PAIRS = list(itertools.product(OfferStatus, OfferStatus))


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS, ids=lambda s: s.value)
def test_every_pair(current: OfferStatus, target: OfferStatus) -> None:
    if (current, target) in EXPECTED_ALLOWED:
        assert transition(current, target) is target
    else:
        with pytest.raises(OfferTransitionRefused) as refused:
            transition(current, target)
        assert refused.value.current is current and refused.value.target is target
        assert refused.value.allowed == sorted(t for c, t in EXPECTED_ALLOWED if c is current)
        assert f"an offer that is {current.value} cannot be" in str(refused.value)


def test_the_table_is_the_expected_one() -> None:
    assert {(c, t) for c, targets in ALLOWED.items() for t in targets} == EXPECTED_ALLOWED
    assert set(ALLOWED) == set(OfferStatus)


def test_a_finished_offer_says_nothing_is_allowed() -> None:
    with pytest.raises(OfferTransitionRefused, match="none: the offer is finished") as refused:
        transition(S.OUTCOME_RECORDED, S.IN_PROGRESS)
    assert refused.value.allowed == []


def test_the_refusal_reads_as_before() -> None:
    with pytest.raises(
        OfferTransitionRefused, match="an offer that is accepted cannot be accepted"
    ):
        transition(S.ACCEPTED, S.ACCEPTED)
    with pytest.raises(OfferTransitionRefused, match="cannot be given an outcome"):
        transition(S.OFFERED, S.OUTCOME_RECORDED)


def test_the_derived_sets() -> None:
    # Active: the partner holds the packet; these count against capacity.
    assert {S.OFFERED, S.ACCEPTED, S.IN_PROGRESS} == ACTIVE_STATUSES
    assert set(OfferStatus) - ACTIVE_STATUSES == TERMINAL_STATUSES
    assert {S.OFFERED} == PENDING_STATUSES
    # The inbox shows open offers and finished ones, never declined, expired or withdrawn.
    assert {S.OFFERED, S.ACCEPTED, S.IN_PROGRESS, S.OUTCOME_RECORDED} == VISIBLE_STATUSES
    assert not VISIBLE_STATUSES & GONE_STATUSES
    assert {S.ACCEPTED, S.IN_PROGRESS, S.OUTCOME_RECORDED} == TAKEN_STATUSES
    assert set(OfferStatus) - {S.WITHDRAWN} == ON_RECORD_STATUSES
    assert PENDING_STATUSES <= ACTIVE_STATUSES <= VISIBLE_STATUSES
    assert TAKEN_STATUSES <= ON_RECORD_STATUSES


LONDON = ZoneInfo("Europe/London")
SETTINGS = PartnersSettings(database_url="postgresql+asyncpg://unused/unused")
RULES = deadline_rules(SETTINGS)  # the defaults, with England and Wales' bank holidays


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)  # type: ignore[misc]


def test_a_high_urgency_offer_made_on_friday_afternoon_is_due_on_monday_afternoon() -> None:
    # One working day is 8 working hours: 1 on Friday (16:00-17:00), 7 on Monday.
    offered = london(2026, 11, 27, 16, 0)  # a Friday
    assert respond_by(offered, "high", RULES) == london(2026, 11, 30, 16, 0)


def test_bank_holidays_are_not_working_days() -> None:
    # Christmas Day 2026 is a Friday and Boxing Day's substitute the Monday after.
    offered = london(2026, 12, 24, 16, 0)
    assert respond_by(offered, "high", RULES) == london(2026, 12, 29, 16, 0)
    # Without the calendar's bank holidays the same offer is due on Christmas Day.
    plain = replace(RULES, week=replace(RULES.week, holidays=frozenset()))
    assert respond_by(offered, "high", plain) == london(2026, 12, 25, 16, 0)


def test_the_clock_change_is_an_ordinary_night() -> None:
    # Clocks go back on Sunday 25 October 2026. Three working days (24 hours) from Friday
    # 12:00 BST: 5 on Friday, 8 on Monday, 8 on Tuesday, 3 on Wednesday -> 12:00 GMT.
    offered = london(2026, 10, 23, 12, 0)
    due = respond_by(offered, "medium", RULES)
    assert due == london(2026, 10, 28, 12, 0)
    assert due.astimezone(UTC) == datetime(2026, 10, 28, 12, 0, tzinfo=UTC)
    # an hour longer in real (UTC) time than the wall clocks say
    assert due.astimezone(UTC) - offered.astimezone(UTC) == timedelta(days=5, hours=1)


def test_an_offer_made_out_of_hours_counts_from_the_next_opening() -> None:
    assert respond_by(london(2026, 11, 28, 11, 0), "high", RULES) == london(2026, 11, 30, 17, 0)
    assert respond_by(london(2026, 11, 30, 7, 30), "high", RULES) == london(2026, 11, 30, 17, 0)
    assert respond_by(london(2026, 11, 30, 22, 0), "high", RULES) == london(2026, 12, 1, 17, 0)


def test_an_answer_due_exactly_at_closing_stays_on_that_day() -> None:
    assert add_working_hours(london(2026, 11, 30, 9, 0), 8, RULES.week) == london(
        2026, 11, 30, 17, 0
    )
    assert add_working_hours(london(2026, 11, 30, 9, 0), 0, RULES.week) == london(
        2026, 11, 30, 9, 0
    )


def test_crisis_counts_clock_hours_whatever_the_day() -> None:
    saturday_night = london(2026, 11, 28, 22, 0)
    assert respond_by(saturday_night, "crisis", RULES) == saturday_night + timedelta(hours=4)


@pytest.mark.parametrize(
    ("urgency", "due"),
    [
        ("high", london(2026, 11, 24, 12, 0)),  # 8 working hours
        ("medium", london(2026, 11, 26, 12, 0)),  # 24
        ("low", london(2026, 11, 30, 12, 0)),  # 40
        ("none", london(2026, 11, 30, 12, 0)),
        (None, london(2026, 11, 26, 12, 0)),  # none given: as for medium
        ("unheard-of", london(2026, 11, 26, 12, 0)),
    ],
)
def test_the_deadline_follows_the_urgency(urgency: str | None, due: datetime) -> None:
    assert respond_by(london(2026, 11, 23, 12, 0), urgency, RULES) == due  # a Monday noon


def test_a_working_week_follows_its_settings() -> None:
    # A partner open 10:00-14:00 on Saturdays only.
    week = WorkingWeek(opens=time(10), closes=time(14), days=frozenset({5}))
    assert add_working_hours(london(2026, 11, 27, 9, 0), 6, week) == london(2026, 12, 5, 12, 0)
    with pytest.raises(ValueError, match="working days"):
        WorkingWeek(days=frozenset())


def test_an_accepted_offer_is_overdue_once_past_its_follow_up() -> None:
    accepted = london(2026, 11, 27, 16, 0)
    follow_up = follow_up_by(accepted, "high", RULES)  # two working days
    assert follow_up == london(2026, 12, 1, 16, 0)
    assert not is_overdue(S.ACCEPTED, follow_up, follow_up - timedelta(seconds=1))
    assert is_overdue(S.ACCEPTED, follow_up, follow_up)
    assert is_overdue(S.IN_PROGRESS, follow_up, follow_up + timedelta(days=1))
    # Only taken, unfinished offers are ever overdue.
    for status in set(OfferStatus) - FOLLOW_UP_STATUSES:
        assert not is_overdue(status, follow_up, follow_up + timedelta(days=9))
    assert not is_overdue(S.ACCEPTED, None, accepted)
