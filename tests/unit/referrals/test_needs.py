"""Needs one by one: the case's status derived from its needs over every combination of
need statuses (and every one a case can reach), and how partners' events move a need —
older events never take it backwards, replays change nothing, arrival order does not
matter."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from services.referrals.domain.lifecycle import CaseStatus
from services.referrals.domain.needs import (
    FINAL,
    OPEN,
    NeedState,
    NeedStatus,
    PartnerEvent,
    Report,
    after_case_decision,
    after_partner_event,
    case_status,
    initial_status,
    status_for_outcome,
)
from services.referrals.domain.offers import offer_update_applies
from shared.vocabulary import OfferStatus, Outcome

N, C = NeedStatus, CaseStatus
T0 = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)

# What one open need says of its case, and which open need speaks for the case first.
MEANS = {
    N.RECEIVED: C.RECEIVED,
    N.UNROUTABLE: C.UNROUTABLE,
    N.WAITING_FOR_CONSENT: C.AWAITING_CONSENT,
    N.IN_PROGRESS: C.IN_PROGRESS,
    N.ACCEPTED: C.ACCEPTED,
    N.OFFERED: C.OFFERED,
    N.ROUTING: C.READY_FOR_ROUTING,
    N.WAITING_FOR_CAPACITY: C.READY_FOR_ROUTING,
    N.ASSESSED: C.ASSESSED,
}
FIRST = list(MEANS)  # the order above is the precedence


def every_combination() -> Iterable[frozenset[NeedStatus]]:
    for size in range(1, len(NeedStatus) + 1):
        yield from map(frozenset, itertools.combinations(NeedStatus, size))


def test_final_and_open_statuses_split_the_vocabulary() -> None:
    assert set(NeedStatus) == FINAL | OPEN and not FINAL & OPEN
    assert set(MEANS) == OPEN


def test_a_case_without_needs_keeps_the_status_its_lifecycle_gave_it() -> None:
    for status in CaseStatus:
        assert case_status([], without_needs=status) is status


def test_the_case_status_over_every_combination_of_need_statuses() -> None:
    seen = 0
    for combination in every_combination():
        open_needs = combination & OPEN
        derived = case_status(sorted(combination), without_needs=C.RECEIVED)
        if not open_needs:
            expected = C.WITHDRAWN if N.WITHDRAWN in combination else C.CLOSED
        else:
            expected = MEANS[next(n for n in FIRST if n in open_needs)]
            # An open case is never closed, and speaks for one of its open needs.
            assert derived in {MEANS[n] for n in open_needs}
        assert derived is expected, sorted(combination)
        # Only the set counts: order and repeats change nothing.
        assert (
            case_status([*reversed(sorted(combination)), *combination], without_needs=C.RECEIVED)
            is derived
        )
        seen += 1
    assert seen == 2 ** len(NeedStatus) - 1


@pytest.mark.parametrize(
    ("needs", "expected"),
    [
        ([N.OFFERED, N.UNROUTABLE], C.UNROUTABLE),  # the council must act, in any order
        ([N.UNROUTABLE, N.OFFERED], C.UNROUTABLE),
        ([N.MET, N.UNROUTABLE], C.UNROUTABLE),  # not closed while a need is unmet
        ([N.MET, N.OFFERED], C.OFFERED),
        ([N.MET, N.NOT_MET], C.CLOSED),
        ([N.MET, N.CLOSED], C.CLOSED),  # the council closed the rest
        ([N.MET, N.WITHDRAWN], C.WITHDRAWN),
        ([N.ACCEPTED, N.ROUTING], C.ACCEPTED),  # as far along as its most advanced need
        ([N.IN_PROGRESS, N.WAITING_FOR_CAPACITY], C.IN_PROGRESS),
        ([N.ASSESSED, N.ROUTING], C.READY_FOR_ROUTING),  # one held, one routed
        ([N.ASSESSED], C.ASSESSED),  # every need held for a possible duplicate
        ([N.WAITING_FOR_CONSENT, N.MET], C.AWAITING_CONSENT),
    ],
)
def test_cases_a_caseworker_recognises(needs: list[NeedStatus], expected: CaseStatus) -> None:
    assert case_status(needs, without_needs=C.RECEIVED) is expected


# -- every combination a case can reach -------------------------------------------------

_DECISIONS = [C.ASSESSED, C.AWAITING_CONSENT, C.READY_FOR_ROUTING, C.CLOSED, C.WITHDRAWN]
_WITH_OFFER = {N.OFFERED, N.ACCEPTED, N.IN_PROGRESS}


def _next_states(state: tuple[NeedStatus, ...]) -> Iterable[tuple[NeedStatus, ...]]:
    for target in _DECISIONS:
        for held in (False, True):
            yield tuple(after_case_decision(s, target, held=held) for s in state)
    for i, status in enumerate(state):
        need = NeedState(status, offer_id="o" if status in _WITH_OFFER else None)
        for report, offer, outcome in itertools.product(
            Report, ("o", "p"), (Outcome.SUPPORT_PROVIDED, Outcome.NOT_ELIGIBLE)
        ):
            event = PartnerEvent(report, T0, offer_id=offer, outcome=outcome)
            after = after_partner_event(need, event).status
            yield (*state[:i], after, *state[i + 1 :])
    if len(state) < 3:  # a need joins the case (a referral, a merge, consent for more)
        derived = case_status(state, without_needs=C.RECEIVED)
        yield (*state, initial_status(derived))


def reachable() -> set[frozenset[NeedStatus]]:
    starts = [(N.RECEIVED,), (N.WAITING_FOR_CONSENT,)]  # a referral; an outreach case
    seen_states, queue = set(starts), list(starts)
    while queue:
        for following in _next_states(queue.pop()):
            if following not in seen_states:
                seen_states.add(following)
                queue.append(following)
    return {frozenset(s) for s in seen_states}


def test_the_case_status_of_every_combination_a_case_can_reach() -> None:
    combinations = reachable()
    assert frozenset({N.OFFERED, N.UNROUTABLE}) in combinations
    assert frozenset({N.MET, N.WAITING_FOR_CONSENT}) in combinations
    for combination in combinations:
        derived = case_status(sorted(combination), without_needs=C.RECEIVED)
        open_needs = combination & OPEN
        if open_needs:
            assert derived is MEANS[next(n for n in FIRST if n in open_needs)]
        else:
            assert derived in (C.CLOSED, C.WITHDRAWN)


# -- partners' events ----------------------------------------------------------------------


def test_an_outcome_is_met_when_it_helped() -> None:
    met = {o for o in Outcome if status_for_outcome(o) is N.MET}
    assert met == {Outcome.SUPPORT_PROVIDED, Outcome.PARTLY_RESOLVED}


def test_final_needs_and_needs_not_with_partners_do_not_move_on_partners_events() -> None:
    for status in FINAL | {N.RECEIVED, N.ASSESSED, N.WAITING_FOR_CONSENT}:
        state = NeedState(status)
        for report in Report:
            event = PartnerEvent(report, T0, offer_id="o", outcome=Outcome.SUPPORT_PROVIDED)
            assert after_partner_event(state, event) == state


def test_an_event_older_than_the_last_applied_does_not_move_the_need() -> None:
    state = NeedState(N.ACCEPTED, offer_id="o", last_event_at=T0)
    for report in Report:
        event = PartnerEvent(
            report, T0 - timedelta(seconds=1), offer_id="o", outcome=Outcome.SUPPORT_PROVIDED
        )
        assert after_partner_event(state, event) == state


def test_only_the_need_s_own_offer_can_end_accept_or_close_it() -> None:
    state = NeedState(N.OFFERED, offer_id="new", last_event_at=T0)
    for report in (Report.ACCEPTED, Report.IN_PROGRESS, Report.OUTCOME, Report.HANDED_ON):
        event = PartnerEvent(report, T0, offer_id="old", outcome=Outcome.SUPPORT_PROVIDED)
        assert after_partner_event(state, event) == state
    moved = after_partner_event(state, PartnerEvent(Report.HANDED_ON, T0, offer_id="new"))
    assert (moved.status, moved.offer_id) == (N.ROUTING, None)


# One need's story as partners tell it: two offers declined or expired, a third accepted,
# progress, an outcome; partners write a decline and the next offer at the same moment.
def _story(outcome: bool) -> list[tuple[OfferStatus, str, int]]:
    story = [
        (OfferStatus.OFFERED, "a", 0),
        (OfferStatus.DECLINED, "a", 1),
        (OfferStatus.OFFERED, "b", 1),
        (OfferStatus.EXPIRED, "b", 2),
        (OfferStatus.OFFERED, "c", 2),
        (OfferStatus.ACCEPTED, "c", 3),
        (OfferStatus.IN_PROGRESS, "c", 4),
    ]
    return [*story, (OfferStatus.OUTCOME_RECORDED, "c", 5)] if outcome else story


_REPORT = {
    OfferStatus.OFFERED: Report.OFFERED,
    OfferStatus.ACCEPTED: Report.ACCEPTED,
    OfferStatus.IN_PROGRESS: Report.IN_PROGRESS,
    OfferStatus.OUTCOME_RECORDED: Report.OUTCOME,
    OfferStatus.DECLINED: Report.HANDED_ON,
    OfferStatus.EXPIRED: Report.HANDED_ON,
}


def _apply(events: Iterable[tuple[OfferStatus, str, int]]) -> NeedState:
    """As the use case applies them: the offer's mirror first; the need only for a report
    that brings the mirror up to date."""
    need, mirror = NeedState(N.ROUTING), {}
    for status, offer, minutes in events:
        at = T0 + timedelta(minutes=minutes)
        known = mirror.get(offer)
        if not offer_update_applies(*(known or (None, None)), status, at):
            continue
        mirror[offer] = (status, at)
        event = PartnerEvent(_REPORT[status], at, offer_id=offer, outcome=Outcome.PARTLY_RESOLVED)
        need = after_partner_event(need, event)
    return need


@pytest.mark.parametrize("outcome", [True, False])
def test_in_whatever_order_the_events_arrive_the_need_ends_where_the_story_does(
    outcome: bool,
) -> None:
    story = _story(outcome)
    expected = _apply(story)
    assert (expected.status, expected.offer_id) == (
        (N.MET, "c") if outcome else (N.IN_PROGRESS, "c")
    )
    orders = list(itertools.permutations(story))
    for order in random.Random(16).sample(orders, 2000):
        assert _apply(order).status is expected.status, order
        assert _apply([*order, *order]) == _apply(order)  # every event again: no change


def test_unroutable_and_the_decline_before_it_in_any_order() -> None:
    for order in itertools.permutations(["offered", "declined", "unroutable"]):
        need = NeedState(N.ROUTING)
        events = {
            "offered": PartnerEvent(Report.OFFERED, T0, offer_id="a"),
            "declined": PartnerEvent(Report.HANDED_ON, T0 + timedelta(minutes=1), offer_id="a"),
            "unroutable": PartnerEvent(Report.UNROUTABLE, T0 + timedelta(minutes=1)),
        }
        mirror: dict[str, OfferStatus] = {}
        for name in order:
            if name == "offered" and mirror.get("a") is OfferStatus.DECLINED:
                continue  # the mirror knows the offer ended: the late offer is not news
            if name in ("offered", "declined"):
                mirror["a"] = OfferStatus.OFFERED if name == "offered" else OfferStatus.DECLINED
            need = after_partner_event(need, events[name])
        assert need.status is N.UNROUTABLE, order


def test_a_need_waits_for_capacity_and_is_offered_when_a_place_frees() -> None:
    need = after_partner_event(NeedState(N.ROUTING), PartnerEvent(Report.WAITING, T0))
    assert need.status is N.WAITING_FOR_CAPACITY
    later = T0 + timedelta(days=2)
    need = after_partner_event(need, PartnerEvent(Report.OFFERED, later, offer_id="x"))
    assert (need.status, need.offer_id, need.last_event_at) == (N.OFFERED, "x", later)


def test_decisions_about_the_whole_case() -> None:
    assert after_case_decision(N.RECEIVED, C.ASSESSED, held=False) is N.ASSESSED
    assert after_case_decision(N.ASSESSED, C.READY_FOR_ROUTING, held=True) is N.ASSESSED
    assert after_case_decision(N.UNROUTABLE, C.READY_FOR_ROUTING, held=False) is N.ROUTING
    assert after_case_decision(N.OFFERED, C.READY_FOR_ROUTING, held=False) is N.OFFERED
    assert after_case_decision(N.ACCEPTED, C.AWAITING_CONSENT, held=False) is (
        N.WAITING_FOR_CONSENT
    )
    for final in FINAL:
        for target in CaseStatus:
            assert after_case_decision(final, target, held=False) is final
    for status in OPEN:
        assert after_case_decision(status, C.CLOSED, held=False) is N.CLOSED
        assert after_case_decision(status, C.WITHDRAWN, held=False) is N.WITHDRAWN
