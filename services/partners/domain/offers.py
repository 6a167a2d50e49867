"""The offer lifecycle: every status, which may follow which, the sets the rest of the
service asks about, and how long a partner has to answer. Pure rules, no I/O.

A partner accepts or declines an offer; an accepted offer moves to in progress (as often as
the partner records progress) and ends with an outcome. An offer nobody answered expires.
Until it ends, an offer is withdrawn when consent is withdrawn, the case closes, or (still
unanswered) its service pauses intake. The need then goes to the next partner, unless the
case itself has stopped.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from shared.errors import Conflict
from shared.vocabulary import Need, OfferStatus, Outcome

S = OfferStatus
ALLOWED: dict[OfferStatus, frozenset[OfferStatus]] = {
    S.OFFERED: frozenset({S.ACCEPTED, S.DECLINED, S.EXPIRED, S.WITHDRAWN}),
    S.ACCEPTED: frozenset({S.IN_PROGRESS, S.OUTCOME_RECORDED, S.DECLINED, S.WITHDRAWN}),
    # Progress may be recorded again and again, each time with a new note.
    S.IN_PROGRESS: frozenset({S.IN_PROGRESS, S.OUTCOME_RECORDED, S.WITHDRAWN}),
    S.OUTCOME_RECORDED: frozenset(),
    S.DECLINED: frozenset(),
    S.EXPIRED: frozenset(),
    S.WITHDRAWN: frozenset(),
}

# Still open: the partner holds the packet, and the offer counts against its capacity.
ACTIVE_STATUSES = frozenset(s for s in OfferStatus if ALLOWED[s])
TERMINAL_STATUSES = frozenset(OfferStatus) - ACTIVE_STATUSES
# Waiting for the partner's answer: what expires, and what a pause hands on.
PENDING_STATUSES = frozenset({S.OFFERED})
# Ended without the partner's work (it declined, or the offer was taken away): the partner
# sees nothing more of the case.
GONE_STATUSES = frozenset({S.DECLINED, S.EXPIRED, S.WITHDRAWN})
# What the partner's inbox shows: open offers and the ones it finished.
VISIBLE_STATUSES = frozenset(OfferStatus) - GONE_STATUSES
# A partner's record: accepted counts what it took, made everything not taken away.
TAKEN_STATUSES = frozenset({S.ACCEPTED, S.IN_PROGRESS, S.OUTCOME_RECORDED})
ON_RECORD_STATUSES = frozenset(OfferStatus) - {S.WITHDRAWN}

_BECOMING = {
    S.OFFERED: "offered again",
    S.ACCEPTED: "accepted",
    S.IN_PROGRESS: "in progress",
    S.OUTCOME_RECORDED: "given an outcome",
    S.DECLINED: "declined",
    S.EXPIRED: "expired",
    S.WITHDRAWN: "withdrawn",
}


class OfferTransitionRefused(Conflict):
    """The offer cannot go to ``target`` from ``current``; ``allowed`` is where it can go
    (a 409 with ``current_status`` and ``allowed``)."""

    def __init__(self, current: OfferStatus, target: OfferStatus, reason: str) -> None:
        super().__init__(reason, current.value, sorted(ALLOWED[current]))
        self.current, self.target = current, target


def transition(current: OfferStatus, target: OfferStatus) -> OfferStatus:
    """The next status, or OfferTransitionRefused saying why and what is allowed instead."""
    if target not in ALLOWED[current]:
        allowed = ", ".join(sorted(ALLOWED[current])) or "none: the offer is finished"
        raise OfferTransitionRefused(
            current,
            target,
            f"an offer that is {current} cannot be {_BECOMING[target]}; allowed: {allowed}",
        )
    return target


@dataclass(frozen=True)
class Offer:
    """One offer of one need of a case to one partner service."""

    id: str
    request_id: str
    case_id: str
    need: Need
    service_id: str
    organization_id: str
    status: OfferStatus
    respond_by: datetime
    attempt: int
    outcome: Outcome | None = None
    follow_up_by: datetime | None = None  # accepted or in progress: the next check-in


# -- the deadlines -------------------------------------------------------------------------
#
# A partner answers an offer within working hours (09:00-17:00 Europe/London, Monday to
# Friday, not on the bank holidays of England and Wales, by default): "high: one working
# day" is 8 working hours, so an offer made on Friday at 16:00 is due on Monday at 16:00.
# Crisis stays in clock hours: someone must act within 4 hours whatever the day (a resident
# with no food on a Saturday cannot wait for Monday). Once accepted, an offer must show
# progress (or an outcome) by a follow-up deadline in working hours; past it, it is overdue.
# A service whose directory entry has opening hours works those hours instead (same zone and
# bank holidays): a food bank open on Saturdays is due on Saturday, an advice service open
# on Tuesdays and Thursdays only is due on one of those days.

DEFAULT_URGENCY = "medium"
DEFAULT_WORKING_HOURS = 24.0  # an urgency the settings do not name: as for medium
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # iCal's, as ORUK schedules use them


@dataclass(frozen=True)
class WorkingWeek:
    """When partners work: ``opens``-``closes`` local time in ``zone`` on ``days``
    (0 is Monday), except the dates in ``holidays``."""

    opens: time = time(9)
    closes: time = time(17)
    days: frozenset[int] = frozenset(range(5))
    zone: str = "Europe/London"
    holidays: Container[date] = frozenset()

    # a service's own opening hours, (day, opens, closes) with 0 for Monday: when given,
    # they replace ``opens``-``closes`` on ``days`` (``WorkingWeek.with_hours``)
    by_day: tuple[tuple[int, time, time], ...] = ()

    def __post_init__(self) -> None:
        if not self.days or self.closes <= self.opens:
            raise ValueError("a working week needs working days and opening before closing")
        if any(closes <= opens for _, opens, closes in self.by_day):
            raise ValueError("opening hours open before they close")

    def hours_on(self, weekday: int) -> tuple[time, time] | None:
        """When the week works on ``weekday`` (0 is Monday), or None (holidays aside)."""
        for day, opens, closes in self.by_day:
            if day == weekday:
                return opens, closes
        if self.by_day or weekday not in self.days:
            return None
        return self.opens, self.closes

    def with_hours(self, opening_hours: Sequence[Mapping[str, str]] | None) -> WorkingWeek:
        """This week (its zone and holidays) with a service's opening hours, as the
        directory stores them: ``[{"day": "SA", "opens": "10:00", "closes": "14:00"}]``.
        None or none: this week unchanged."""
        if not opening_hours:
            return self
        by_day = tuple(
            sorted(
                (
                    DAYS.index(entry["day"]),
                    time.fromisoformat(entry["opens"]),
                    time.fromisoformat(entry["closes"]),
                )
                for entry in opening_hours
            )
        )
        return replace(self, days=frozenset(day for day, _, _ in by_day), by_day=by_day)


def add_working_hours(start: datetime, hours: float, week: WorkingWeek) -> datetime:
    """``hours`` of working time after ``start`` (an aware datetime), counting only the
    week's working hours; a start out of hours counts from the next opening. Arithmetic is
    in UTC, so a clock change is an ordinary night."""
    zone = ZoneInfo(week.zone)
    remaining = timedelta(hours=hours)
    if remaining <= timedelta(0):
        return start
    cursor = start.astimezone(UTC)
    day = start.astimezone(zone).date()
    for _ in range(3660):  # ten years of days: a calendar with no working time at all
        today = week.hours_on(day.weekday())
        if today is not None and day not in week.holidays:
            opens = datetime.combine(day, today[0], zone).astimezone(UTC)
            closes = datetime.combine(day, today[1], zone).astimezone(UTC)
            begin = max(cursor, opens)
            if begin < closes:
                if remaining <= closes - begin:
                    return (begin + remaining).astimezone(start.tzinfo)
                remaining -= closes - begin
        day += timedelta(days=1)
    raise ValueError("the working week has no working hours in the next ten years")


def bank_holidays(country: str | None, subdivision: str | None) -> Container[date]:
    """The public holidays of a calendar (``holidays`` package; "GB", "ENG" for England and
    Wales' bank holidays); none for no country."""
    if not country:
        return frozenset()
    return holidays.country_holidays(country, subdiv=subdivision)


@dataclass(frozen=True)
class DeadlineRules:
    """How long a partner has, by urgency: ``clock_hours`` (any time of day) for the
    urgencies it names, else ``working_hours``; ``follow_up_hours`` (working) after an
    acceptance or a progress note."""

    clock_hours: Mapping[str, float]
    working_hours: Mapping[str, float]
    follow_up_hours: Mapping[str, float]
    week: WorkingWeek = WorkingWeek()


def _working(hours: Mapping[str, float], urgency: str) -> float:
    return hours.get(urgency, hours.get(DEFAULT_URGENCY, DEFAULT_WORKING_HOURS))


def respond_by(offered_at: datetime, urgency: str | None, rules: DeadlineRules) -> datetime:
    """When the partner must have answered, by the case's urgency (none counts as
    medium)."""
    level = urgency or DEFAULT_URGENCY
    if level in rules.clock_hours:
        return offered_at + timedelta(hours=rules.clock_hours[level])
    return add_working_hours(offered_at, _working(rules.working_hours, level), rules.week)


def follow_up_by(at: datetime, urgency: str | None, rules: DeadlineRules) -> datetime:
    """When an accepted (or in-progress) offer must next show progress or an outcome."""
    level = urgency or DEFAULT_URGENCY
    return add_working_hours(at, _working(rules.follow_up_hours, level), rules.week)


# Taken on and not finished: what must show progress by its follow-up deadline.
FOLLOW_UP_STATUSES = frozenset({S.ACCEPTED, S.IN_PROGRESS})


def is_overdue(status: OfferStatus, follow_up: datetime | None, now: datetime) -> bool:
    """An accepted or in-progress offer past its follow-up deadline."""
    return status in FOLLOW_UP_STATUSES and follow_up is not None and follow_up <= now
