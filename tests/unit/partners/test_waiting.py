"""Waiting, not failing: a need whose eligible services are all full (or paused) waits for
a place, in a queue ordered by urgency; only a need no service could ever take is
unroutable. No I/O."""

from __future__ import annotations

import pytest

from services.partners.domain.placement import (
    URGENCY_ORDER,
    queue_rank,
    reason_to_give_up,
    should_wait,
)
from services.partners.domain.routing import route
from shared.vocabulary import Need
from tests.unit.partners.test_routing import HACKNEY, request, service


@pytest.mark.parametrize(
    "full",
    [
        [service("a", load=10)],
        [service("a", paused=True)],
        [service("a", capacity=0)],
        [service("a", load=10), service("b", paused=True, load=3)],
        # a full one that could take it beside one that never could
        [service("a", load=10), service("b", councils=frozenset({HACKNEY}))],
    ],
    ids=["at-capacity", "paused", "no-capacity-yet", "full-and-paused", "full-beside-unfit"],
)
def test_a_need_whose_services_are_full_waits(full) -> None:
    decision = route(request(), full)
    assert decision.chosen is None and decision.full
    assert should_wait(decision, attempts=0, max_offers=5)
    assert reason_to_give_up(decision, Need.FOOD, 0, 5) is None  # it waits, not gives up
    # Tried too often already: back to the council after all.
    assert not should_wait(decision, attempts=5, max_offers=5)
    assert reason_to_give_up(decision, Need.FOOD, 5, 5) is not None


@pytest.mark.parametrize(
    "unfit",
    [
        [],
        [service("a", councils=frozenset({HACKNEY}), load=10)],  # full, and elsewhere anyway
        [service("a", active=False)],  # inactive is not paused: it will not come back
        [service("a", minimum_age=65, paused=True)],
    ],
    ids=["none", "other-area", "inactive", "too-young-and-paused"],
)
def test_only_a_need_no_service_could_take_is_unroutable(unfit) -> None:
    decision = route(request(), unfit)
    assert decision.chosen is None and not decision.full
    assert not should_wait(decision, 0, 5)
    assert reason_to_give_up(decision, Need.FOOD, 0, 5)


def test_a_partner_already_offered_the_need_is_not_waited_for() -> None:
    tried = request(excluded_organizations=frozenset({"org-a"}))
    assert not route(tried, [service("a", load=10)]).full


def test_a_service_with_room_is_chosen_not_waited_for() -> None:
    decision = route(request(), [service("a", load=10), service("b", load=9)])
    assert decision.chosen is not None and decision.chosen.candidate.service_id == "b"
    assert not decision.full and not should_wait(decision, 0, 5)


def test_the_queue_puts_the_most_urgent_first() -> None:
    ranks = [queue_rank(level) for level in ("crisis", "high", "medium", "low", "none")]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(URGENCY_ORDER)
    assert queue_rank(None) == queue_rank("medium")
    assert queue_rank("unheard-of") > queue_rank("none")
