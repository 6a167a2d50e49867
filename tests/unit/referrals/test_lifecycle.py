"""The lifecycle function on every pair of statuses, allowed and refused."""

from __future__ import annotations

import itertools

import pytest

from services.referrals.domain.lifecycle import (
    ALLOWED,
    OPEN_STATUSES,
    CaseStatus,
    TransitionRefused,
    transition,
)
from shared.vocabulary import Outcome

S = CaseStatus
EXPECTED_ALLOWED = {
    (S.RECEIVED, S.ASSESSED),
    (S.RECEIVED, S.WITHDRAWN),
    (S.ASSESSED, S.READY_FOR_ROUTING),
    (S.ASSESSED, S.AWAITING_CONSENT),
    (S.ASSESSED, S.CLOSED),
    (S.ASSESSED, S.WITHDRAWN),
    (S.AWAITING_CONSENT, S.READY_FOR_ROUTING),
    (S.AWAITING_CONSENT, S.CLOSED),
    (S.AWAITING_CONSENT, S.WITHDRAWN),
    (S.READY_FOR_ROUTING, S.OFFERED),
    (S.READY_FOR_ROUTING, S.UNROUTABLE),
    (S.READY_FOR_ROUTING, S.AWAITING_CONSENT),
    (S.READY_FOR_ROUTING, S.WITHDRAWN),
    (S.OFFERED, S.ACCEPTED),
    (S.OFFERED, S.UNROUTABLE),
    (S.OFFERED, S.AWAITING_CONSENT),
    (S.OFFERED, S.WITHDRAWN),
    (S.ACCEPTED, S.IN_PROGRESS),
    (S.ACCEPTED, S.CLOSED),
    (S.ACCEPTED, S.AWAITING_CONSENT),
    (S.ACCEPTED, S.WITHDRAWN),
    (S.IN_PROGRESS, S.CLOSED),
    (S.IN_PROGRESS, S.AWAITING_CONSENT),
    (S.IN_PROGRESS, S.WITHDRAWN),
    (S.UNROUTABLE, S.READY_FOR_ROUTING),
    (S.UNROUTABLE, S.CLOSED),
    (S.UNROUTABLE, S.WITHDRAWN),
}
ALL_PAIRS = list(itertools.product(CaseStatus, CaseStatus))


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS, ids=lambda s: s.value)
def test_every_pair(current: CaseStatus, target: CaseStatus) -> None:
    outcome = Outcome.SUPPORT_PROVIDED if target is S.CLOSED else None
    if (current, target) in EXPECTED_ALLOWED:
        assert transition(current, target, outcome=outcome) is target
    else:
        with pytest.raises(TransitionRefused) as refused:
            transition(current, target, outcome=outcome)
        assert refused.value.allowed == sorted(t for c, t in EXPECTED_ALLOWED if c is current)
        assert current.value in str(refused.value)


@pytest.mark.parametrize("current", sorted(s for s in CaseStatus if S.CLOSED in ALLOWED[s]))
def test_a_case_cannot_close_without_an_outcome(current: CaseStatus) -> None:
    with pytest.raises(TransitionRefused, match="without an outcome"):
        transition(current, S.CLOSED)


def test_closed_and_withdrawn_are_final() -> None:
    assert set(CaseStatus) - OPEN_STATUSES == {S.CLOSED, S.WITHDRAWN}
    with pytest.raises(TransitionRefused, match="none: the case is finished"):
        transition(S.CLOSED, S.RECEIVED)
