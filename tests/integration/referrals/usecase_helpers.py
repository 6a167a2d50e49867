"""Commands the use-case tests send, as a route would build them from a request body, and
who sends them."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from services.referrals.service_layer import intake
from services.referrals.service_layer.cases import ConsentGiven, RiskFinding, RuleReason
from services.referrals.service_layer.residents import ResidentFacts
from shared.auth import OrganisationKind, Principal, Role
from shared.events.envelope import utc_now
from shared.vocabulary import Circumstance, LawfulBasis, Need, PartnerKind, RiskLevel


def ig(council: str) -> Principal:
    """A council's information-governance officer (erasure, subject access)."""
    return Principal(
        subject="dpo-person",
        organisation=council,
        kind=OrganisationKind.COUNCIL,
        roles=frozenset({Role.INFORMATION_GOVERNANCE}),
    )


AMINA = ResidentFacts(
    given_name="Amina",
    family_name="Okafor",
    date_of_birth=date(1984, 3, 2),
    postcode="E15 4HT",
    address="12 Romford Road",
    phone="07700 900123",
    preferred_contact="phone",
)


def consent(**changes: Any) -> ConsentGiven:
    given = ConsentGiven(
        given_by="the resident",
        method="verbal",
        given_at=utc_now() - timedelta(days=1),
        partner_kinds=(PartnerKind.FOOD, PartnerKind.ADVICE),
        purpose="referral to local support partners",
    )
    return replace(given, **changes)


# What a basis other than consent carries: why it applies and who decided.
JUSTIFIED: dict[str, Any] = {
    "justification": "the council's duty to relieve homelessness",
    "decided_by": "Housing Needs manager",
}


def new_referral(**changes: Any) -> intake.NewReferral:
    referral = intake.NewReferral(
        resident=AMINA,
        needs=(Need.FOOD, Need.MONEY_AND_DEBT),
        circumstances=(Circumstance.NO_FOOD_IN_HOME,),
        circumstances_text="Lost her job last month.",
        urgency=RiskLevel.HIGH,
        lawful_basis=LawfulBasis.CONSENT,
        consent=consent(),
    )
    return replace(referral, **changes)


def finding(level: RiskLevel = RiskLevel.HIGH) -> RiskFinding:
    return RiskFinding(
        level=level,
        score=70,
        reasons=(RuleReason("rent-arrears-8-weeks", "Rent arrears of 8 weeks or more"),),
        suggested_needs=(Need.HOUSING,),
        ruleset_version="default@3f2a9c",
        at=utc_now(),
    )
