"""When a subject access answer is due (one calendar month, as the ICO counts it) and how far
a request has got."""

from __future__ import annotations

from datetime import date

import holidays

from services.referrals.domain.subject_access import RequestStatus, due_by, progress

ENGLAND = holidays.country_holidays("GB", subdiv="ENG", years=[2026, 2027])


def test_due_the_same_day_next_month() -> None:
    assert due_by(date(2026, 9, 3)) == date(2026, 10, 5)  # 3 October 2026 is a Saturday
    assert due_by(date(2026, 10, 13)) == date(2026, 11, 13)


def test_a_month_without_that_day_ends_on_its_last_day() -> None:
    assert due_by(date(2027, 1, 31)) == date(2027, 3, 1)  # 28 February 2027 is a Sunday
    assert due_by(date(2024, 1, 31)) == date(2024, 2, 29)
    assert due_by(date(2026, 12, 10)) == date(2027, 1, 11)  # over the year's end, a Sunday


def test_a_due_date_on_a_bank_holiday_moves_to_the_next_working_day() -> None:
    assert due_by(date(2026, 11, 25), ENGLAND) == date(2026, 12, 29)  # Christmas, Boxing Day
    assert due_by(date(2026, 11, 25)) == date(2026, 12, 25)  # without holidays: Christmas


def test_progress_says_who_is_pending_and_whether_it_is_overdue() -> None:
    due = date(2026, 12, 31)
    started = progress(["referrals"], due=due, today=date(2026, 12, 1))
    assert started.status is RequestStatus.IN_PROGRESS
    assert started.pending == ("partners", "risk")
    late = progress(["risk", "referrals"], due=due, today=date(2027, 1, 1))
    assert late.status is RequestStatus.OVERDUE and late.pending == ("partners",)
    assert late.contributed == ("referrals", "risk")
    done = progress(["partners", "risk", "referrals"], due=due, today=date(2027, 2, 1))
    assert done.status is RequestStatus.COMPLETE and done.pending == ()
