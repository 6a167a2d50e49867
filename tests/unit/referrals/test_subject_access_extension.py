"""The extended deadline (Article 12(3): two further months, three calendar months from
receipt as the ICO counts them) and when an extension is refused."""

from __future__ import annotations

from datetime import date

import holidays

from services.referrals.domain.subject_access import (
    calendar_months_after,
    due_by,
    extended_due_by,
    extension_refusal,
    told_on_problem,
)

ENGLAND = holidays.country_holidays("GB", subdiv="ENG", years=[2026, 2027])


def test_calendar_months_keep_the_day_or_end_the_month() -> None:
    assert calendar_months_after(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert calendar_months_after(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert calendar_months_after(date(2026, 1, 31), 3) == date(2026, 4, 30)
    assert calendar_months_after(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert calendar_months_after(date(2026, 12, 15), 13) == date(2028, 1, 15)


def test_extended_three_calendar_months_from_receipt() -> None:
    assert extended_due_by(date(2026, 10, 13)) == date(2027, 1, 13)
    # From receipt, not from the first deadline: 31 January's first deadline is 28 February
    # (2 March, a working day, in 2027), its extended one 30 April.
    assert due_by(date(2027, 1, 31)) == date(2027, 3, 1)
    assert extended_due_by(date(2027, 1, 31)) == date(2027, 4, 30)


def test_an_extended_deadline_on_a_weekend_or_bank_holiday_moves_on() -> None:
    assert extended_due_by(date(2026, 9, 3)) == date(2026, 12, 3)  # a Thursday
    assert extended_due_by(date(2026, 9, 25), ENGLAND) == date(2026, 12, 29)  # Christmas
    assert extended_due_by(date(2026, 9, 26)) == date(2026, 12, 28)  # a Saturday: Monday


def test_an_extension_is_once_only_and_before_the_original_deadline() -> None:
    due = date(2026, 12, 15)
    assert extension_refusal(extended_already=False, complete=False, due=due, today=due) is None
    late = extension_refusal(
        extended_already=False, complete=False, due=due, today=date(2026, 12, 16)
    )
    assert late is not None and "2026-12-15" in late and "passed" in late
    twice = extension_refusal(extended_already=True, complete=False, due=due, today=due)
    assert twice is not None and "once" in twice
    done = extension_refusal(extended_already=False, complete=True, due=due, today=due)
    assert done is not None and "complete" in done


def test_the_resident_is_told_between_receipt_and_today() -> None:
    received, today = date(2026, 12, 1), date(2026, 12, 10)
    assert told_on_problem(date(2026, 12, 1), received=received, today=today) is None
    assert told_on_problem(date(2026, 12, 10), received=received, today=today) is None
    future = told_on_problem(date(2026, 12, 11), received=received, today=today)
    assert future == "must not be in the future"
    early = told_on_problem(date(2026, 11, 30), received=received, today=today)
    assert early is not None and "before the request was received" in early
