"""Partner capacity in the partner load: the capacity in force at a week's end from a
service's history of changes (London days, paused services, several services of a partner,
unknown before the first change), and the need filter's view of it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.referrals.domain.reporting import (
    CapacityFact,
    Facts,
    Filters,
    OfferFact,
    capacity_at,
    outcomes_report,
    partner_load,
)

MONDAY = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
# The week ends (Sundays) of a three-week period from Monday 2 November.
ENDS = [date(2026, 11, 8), date(2026, 11, 15), date(2026, 11, 22)]


def day(n: float) -> datetime:
    return MONDAY + timedelta(days=n)


def change(
    service: str,
    at: datetime,
    capacity: int,
    *,
    partner: str = "p1",
    paused: bool = False,
    needs: tuple[str, ...] = ("food",),
) -> CapacityFact:
    return CapacityFact(service, partner, at, capacity, paused, needs)


def test_capacity_is_unknown_before_the_first_change_and_the_latest_after() -> None:
    history = [change("s1", day(8), 5), change("s1", day(9), 7)]
    assert capacity_at(history, ENDS) == {"p1": [None, 7, 7]}


def test_a_change_counts_from_its_london_day() -> None:
    # 23:30 UTC on Sunday 8 November is still that Sunday in London (GMT): week one.
    late_sunday = datetime(2026, 11, 8, 23, 30, tzinfo=UTC)
    assert capacity_at([change("s1", late_sunday, 4)], ENDS) == {"p1": [4, 4, 4]}
    # In summer (BST) 23:30 UTC on a Sunday is already Monday in London: the next week.
    summer_ends = [date(2026, 6, 7), date(2026, 6, 14)]
    summer_sunday_night = datetime(2026, 6, 7, 23, 30, tzinfo=UTC)
    assert capacity_at([change("s1", summer_sunday_night, 4)], summer_ends) == {"p1": [None, 4]}


def test_the_services_of_a_partner_add_up_and_a_paused_one_counts_none() -> None:
    history = [
        change("s1", day(0), 5),
        change("s2", day(1), 3),
        change("s2", day(8), 3, paused=True),
        change("s2", day(15), 3),
        change("s3", day(0), 9, partner="p2"),
    ]
    assert capacity_at(history, ENDS) == {"p1": [8, 5, 8], "p2": [9, 9, 9]}


def test_the_order_changes_arrive_in_does_not_matter() -> None:
    history = [change("s1", day(0), 5), change("s1", day(1), 2), change("s1", day(10), 6)]
    assert capacity_at(list(reversed(history)), ENDS) == capacity_at(history, ENDS)
    assert capacity_at(history, ENDS) == {"p1": [2, 6, 6]}


def test_a_change_after_the_last_week_is_not_in_force_in_it() -> None:
    assert capacity_at([change("s1", day(30), 5)], ENDS) == {"p1": [None, None, None]}


def offer(ref: str, partner: str, need: str, offered_at: datetime) -> OfferFact:
    return OfferFact(ref, f"case-{ref}", need, partner, offered_at=offered_at)


def test_partner_load_shows_the_capacity_beside_the_load() -> None:
    period = Facts(
        date(2026, 11, 2),
        date(2026, 11, 15),
        load=[offer("a", "p1", "food", day(1)), offer("b", "p2", "food", day(1))],
        capacity=[change("s1", day(0), 5), change("s1", day(9), 6)],
    )
    assert [(w.week_starting, w.partner_id, w.capacity) for w in partner_load(period)] == [
        (date(2026, 11, 2), "p1", 5),
        (date(2026, 11, 2), "p2", None),  # no capacity known for p2
        (date(2026, 11, 9), "p1", 6),
        (date(2026, 11, 9), "p2", None),
    ]


def test_under_a_need_filter_only_the_services_meeting_it_count() -> None:
    period = Facts(
        date(2026, 11, 2),
        date(2026, 11, 15),
        load=[offer("a", "p1", "food", day(1))],
        capacity=[
            change("s1", day(0), 5, needs=("food",)),
            change("s2", day(0), 4, needs=("housing",)),
            # s3 stops meeting food in week two: none of its capacity counts for food then.
            change("s3", day(0), 2, needs=("food", "fuel")),
            change("s3", day(8), 2, needs=("fuel",)),
        ],
    )
    food = outcomes_report("E09000033", period, Filters(need="food")).partner_load
    assert [(w.week_starting, w.capacity) for w in food] == [
        (date(2026, 11, 2), 7),
        (date(2026, 11, 9), 5),
    ]
    every_need = outcomes_report("E09000033", period, Filters()).partner_load
    assert [(w.week_starting, w.capacity) for w in every_need] == [
        (date(2026, 11, 2), 11),
        (date(2026, 11, 9), 11),
    ]
