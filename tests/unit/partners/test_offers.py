"""The offer lifecycle on every pair of statuses, the sets derived from it, and the
deadline rule. No I/O."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from services.partners.domain.offers import (
    ACTIVE_STATUSES,
    ALLOWED,
    GONE_STATUSES,
    ON_RECORD_STATUSES,
    PENDING_STATUSES,
    TAKEN_STATUSES,
    TERMINAL_STATUSES,
    VISIBLE_STATUSES,
    OfferTransitionRefused,
    respond_by,
    transition,
)
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


NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HOURS = PartnersSettings.model_fields["response_hours"].default


@pytest.mark.parametrize(
    ("urgency", "hours"),
    [("crisis", 4), ("high", 24), ("medium", 72), ("low", 120), ("none", 120), (None, 72)],
)
def test_the_deadline_follows_the_urgency(urgency: str | None, hours: float) -> None:
    assert respond_by(NOON, urgency, HOURS) == NOON + timedelta(hours=hours)


def test_an_urgency_the_settings_do_not_name_gets_three_days() -> None:
    assert respond_by(NOON, "unheard-of", {"crisis": 1}) == NOON + timedelta(hours=72)
    assert respond_by(NOON, None, {"medium": 10}) == NOON + timedelta(hours=10)
