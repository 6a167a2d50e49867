"""The mirrored offer: brought up to date in the order changes happened, not the order the
reports arrived; overdue marks that progress clears and an outcome ends."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from services.referrals.domain.offers import (
    FOLLOWED_UP,
    PENDING_OFFER_STATUSES,
    offer_update_applies,
    overdue_applies,
    still_overdue,
)
from shared.vocabulary import OfferStatus

T = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)
LATER = T + timedelta(minutes=5)
STEPS = [
    OfferStatus.OFFERED,
    OfferStatus.ACCEPTED,
    OfferStatus.IN_PROGRESS,
    OfferStatus.OUTCOME_RECORDED,
]
ENDS = {
    OfferStatus.DECLINED,
    OfferStatus.EXPIRED,
    OfferStatus.WITHDRAWN,
    OfferStatus.OUTCOME_RECORDED,
}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(OfferStatus, OfferStatus)))
def test_a_newer_report_always_applies_and_an_older_one_never(
    old: OfferStatus, new: OfferStatus
) -> None:
    assert offer_update_applies(old, T, new, LATER)
    assert not offer_update_applies(old, LATER, new, T)
    assert offer_update_applies(None, None, new, T)  # nothing known yet


def test_at_one_time_a_later_step_wins_and_an_ended_offer_is_not_reopened() -> None:
    for earlier, later in itertools.combinations(STEPS, 2):
        assert offer_update_applies(earlier, T, later, T)
        assert not offer_update_applies(later, T, earlier, T)
    for end in ENDS:
        for step in (OfferStatus.OFFERED, OfferStatus.ACCEPTED, OfferStatus.IN_PROGRESS):
            assert not offer_update_applies(end, T, step, T)
    for status in OfferStatus:
        assert offer_update_applies(status, T, status, T)  # the same report again: no harm


def test_an_overdue_mark_needs_an_offer_still_held_and_not_moved_on_since() -> None:
    assert {OfferStatus.ACCEPTED, OfferStatus.IN_PROGRESS} == FOLLOWED_UP
    assert FOLLOWED_UP < PENDING_OFFER_STATUSES
    for status in OfferStatus:
        assert overdue_applies(status, T, LATER) is (status in FOLLOWED_UP)
        assert not overdue_applies(status, LATER, T)  # progress or an end after it


def test_progress_clears_an_overdue_mark_and_an_end_removes_it() -> None:
    assert not still_overdue(None, OfferStatus.ACCEPTED, T)
    assert not still_overdue(T, OfferStatus.IN_PROGRESS, LATER)  # progress after the mark
    assert still_overdue(LATER, OfferStatus.IN_PROGRESS, T)  # progress from before it
    for end in ENDS | {OfferStatus.OFFERED}:
        assert not still_overdue(LATER, end, T)
