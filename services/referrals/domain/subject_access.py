"""Subject access (UK GDPR Articles 12(3) and 15): when an answer is due, when an extended
one is, whether a deadline may still be extended, and how far a request has got. Pure: no
I/O.

Months are counted as the ICO counts them ("calendar month"): from the day of receipt to the
same day number that many months later, or that month's last day if it has no such day;
a date on a weekend or a bank holiday then moves to the next working day. An extension
(Article 12(3): "by two further months where necessary, taking into account the complexity
and number of the requests") is counted from receipt too: three calendar months from the day
of receipt (31 January: 30 April), so the weekend move of the first deadline is not carried
into the second."""

from __future__ import annotations

import calendar
from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

# Every service contributes what it holds before an export is complete.
SERVICES = ("referrals", "partners", "risk")


# Article 12(3): one month, extendable once "by two further months".
MONTHS_TO_ANSWER = 1
EXTENSION_MONTHS = 2
MAX_EXTENSION_REASON = 2000  # characters: why the request is complex, for the record


def calendar_months_after(start: date, months: int) -> date:
    """The same day number ``months`` later, or that month's last day if it has none."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def _working_day(day: date, bank_holidays: Container[date]) -> date:
    while day.weekday() >= 5 or day in bank_holidays:
        day += timedelta(days=1)
    return day


def due_by(received: date, bank_holidays: Container[date] = frozenset()) -> date:
    """One calendar month from the day a request is received, as the ICO counts it: the
    same day of the next month, or that month's last day if it has no such day (31 January
    -> 28 or 29 February). A date on a weekend or a bank holiday moves to the next working
    day."""
    return _working_day(calendar_months_after(received, MONTHS_TO_ANSWER), bank_holidays)


def extended_due_by(received: date, bank_holidays: Container[date] = frozenset()) -> date:
    """The deadline extended by two further months: three calendar months from the day of
    receipt, counted as ``due_by`` counts one (31 January -> 30 April), moved off a weekend
    or bank holiday."""
    months = MONTHS_TO_ANSWER + EXTENSION_MONTHS
    return _working_day(calendar_months_after(received, months), bank_holidays)


def extension_refusal(
    *, extended_already: bool, complete: bool, due: date, today: date
) -> str | None:
    """Why the deadline may not be extended now (None: it may). Once only, and only while
    the original deadline has not passed (its last day included): Article 12(3) asks the
    controller to tell the resident within the first month."""
    if extended_already:
        return "the deadline has been extended already: it may be extended once"
    if complete:
        return "the request is complete: every service has answered"
    if today > due:
        return f"the original deadline ({due.isoformat()}) has passed: it can no longer be extended"
    return None


def told_on_problem(told_on: date, *, received: date, today: date) -> str | None:
    """What is wrong with the day the resident was told of the extension (None: nothing)."""
    if told_on > today:
        return "must not be in the future"
    if told_on < received:
        return f"must not be before the request was received ({received.isoformat()})"
    return None


class RequestStatus(StrEnum):
    IN_PROGRESS = "in_progress"  # some services have not answered yet; not past due
    OVERDUE = "overdue"  # past its due date and still not complete
    COMPLETE = "complete"  # every service has contributed


@dataclass(frozen=True)
class Progress:
    contributed: tuple[str, ...]
    pending: tuple[str, ...]
    status: RequestStatus


def progress(contributed: Iterable[str], *, due: date, today: date) -> Progress:
    """Which services have contributed, which are still pending, and so the status: complete
    when every service has; overdue when not and the due date has passed."""
    done = set(contributed)
    pending = tuple(s for s in SERVICES if s not in done)
    if not pending:
        status = RequestStatus.COMPLETE
    elif today > due:
        status = RequestStatus.OVERDUE
    else:
        status = RequestStatus.IN_PROGRESS
    return Progress(tuple(s for s in SERVICES if s in done), pending, status)
