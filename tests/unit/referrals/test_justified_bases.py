from __future__ import annotations

import pytest

from services.referrals.domain.sharing import (
    SPECIAL_CATEGORY_NEEDS,
    Article9Condition,
    BasisClaim,
    article9_condition_for,
    basis_problems,
)
from shared.vocabulary import LawfulBasis, Need

WHY = "the resident was found unconscious; no one could consent"


def fields(claim: BasisClaim, needs: list[str]) -> list[str]:
    return [field for field, _ in basis_problems(claim, needs, prefix="sharing.")]


@pytest.mark.parametrize("basis", [b for b in LawfulBasis if b is not LawfulBasis.CONSENT])
def test_every_basis_but_consent_needs_a_justification_and_who_decided(basis) -> None:
    assert fields(BasisClaim(basis), ["food"]) == ["sharing.justification", "sharing.decided_by"]
    assert fields(BasisClaim(basis, WHY), ["food"]) == ["sharing.decided_by"]
    assert fields(BasisClaim(basis, WHY, "Duty manager"), ["food"]) == []


def test_consent_needs_neither() -> None:
    assert fields(BasisClaim(LawfulBasis.CONSENT), ["food", "mental_health"]) == []


def test_health_needs_are_special_category_and_need_an_article_9_condition() -> None:
    assert {Need.MENTAL_HEALTH, Need.PHYSICAL_HEALTH_AND_DISABILITY} == SPECIAL_CATEGORY_NEEDS
    claim = BasisClaim(LawfulBasis.VITAL_INTERESTS, WHY, "Duty manager")
    for need in ("mental_health", "physical_health_and_disability"):
        ((field, reason),) = basis_problems(claim, ["food", need])
        assert field == "article9_condition" and need.replace("_", " ") in reason
    # Domestic abuse is safeguarding, not by itself special category data.
    assert fields(claim, ["domestic_abuse"]) == []
    given = BasisClaim(
        LawfulBasis.VITAL_INTERESTS, WHY, "Duty manager", Article9Condition.VITAL_INTERESTS
    )
    assert fields(given, ["mental_health"]) == []


def test_the_condition_recorded() -> None:
    consent = BasisClaim(LawfulBasis.CONSENT)
    assert article9_condition_for(consent, ["mental_health"]) is Article9Condition.EXPLICIT_CONSENT
    assert article9_condition_for(consent, ["food"]) is None
    named = BasisClaim(
        LawfulBasis.PUBLIC_TASK, WHY, "x", Article9Condition.SUBSTANTIAL_PUBLIC_INTEREST
    )
    assert article9_condition_for(named, ["mental_health"]) is (
        Article9Condition.SUBSTANTIAL_PUBLIC_INTEREST
    )
