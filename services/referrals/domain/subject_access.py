"""Subject access (UK GDPR Articles 12(3) and 15): when an answer is due, and how far a
request has got. Pure: no I/O."""

from __future__ import annotations

import calendar
from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

# Every service contributes what it holds before an export is complete.
SERVICES = ("referrals", "partners", "risk")


def due_by(received: date, bank_holidays: Container[date] = frozenset()) -> date:
    """One calendar month from the day a request is received, as the ICO counts it: the
    same day of the next month, or that month's last day if it has no such day (31 January
    -> 28 or 29 February). A date on a weekend or a bank holiday moves to the next working
    day."""
    year, month = received.year + received.month // 12, received.month % 12 + 1
    day = min(received.day, calendar.monthrange(year, month)[1])
    due = date(year, month, day)
    while due.weekday() >= 5 or due in bank_holidays:
        due += timedelta(days=1)
    return due


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
