"""How a case follows its offers: every offer status against every case status."""

from __future__ import annotations

import itertools

import pytest

from services.referrals.domain.lifecycle import ALLOWED, CaseStatus
from services.referrals.domain.offers import (
    PENDING_OFFER_STATUSES,
    case_status_after,
    every_offer_answered,
)
from shared.vocabulary import OfferStatus

FOLLOWS = {
    (OfferStatus.OFFERED, CaseStatus.READY_FOR_ROUTING): CaseStatus.OFFERED,
    (OfferStatus.OFFERED, CaseStatus.UNROUTABLE): CaseStatus.OFFERED,
    (OfferStatus.ACCEPTED, CaseStatus.OFFERED): CaseStatus.ACCEPTED,
    (OfferStatus.IN_PROGRESS, CaseStatus.ACCEPTED): CaseStatus.IN_PROGRESS,
}


@pytest.mark.parametrize(("offer", "case"), list(itertools.product(OfferStatus, CaseStatus)))
def test_a_case_moves_only_one_step_forward_with_its_offer(
    offer: OfferStatus, case: CaseStatus
) -> None:
    assert case_status_after(offer, case) == FOLLOWS.get((offer, case))


def test_an_offer_for_an_unroutable_case_is_tried_but_the_lifecycle_refuses_it() -> None:
    # The handler records the refusal on the timeline for a caseworker to see.
    for (_, case), target in FOLLOWS.items():
        assert (target in ALLOWED[case]) is (case is not CaseStatus.UNROUTABLE)


def test_declines_expiries_withdrawals_and_outcomes_never_move_a_case_by_themselves() -> None:
    for offer in (
        OfferStatus.DECLINED,
        OfferStatus.EXPIRED,
        OfferStatus.WITHDRAWN,
        OfferStatus.OUTCOME_RECORDED,
    ):
        assert all(case_status_after(offer, case) is None for case in CaseStatus)


def test_a_case_is_answered_once_no_offer_waits_on_a_partner() -> None:
    pending = {OfferStatus.OFFERED, OfferStatus.ACCEPTED, OfferStatus.IN_PROGRESS}
    assert pending == PENDING_OFFER_STATUSES
    assert every_offer_answered([])
    assert every_offer_answered(
        [
            OfferStatus.OUTCOME_RECORDED,
            OfferStatus.DECLINED,
            OfferStatus.EXPIRED,
            OfferStatus.WITHDRAWN,
        ]
    )
    for pending in PENDING_OFFER_STATUSES:
        assert not every_offer_answered([OfferStatus.OUTCOME_RECORDED, pending])
