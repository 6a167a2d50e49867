from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.referrals.domain.matching import Certainty, Identity, find_matches
from services.referrals.domain.sharing import (
    ConsentRecord,
    case_outcome,
    may_share_with_partners,
    priority,
    summary,
)
from shared.identity import (
    age_in_years,
    normalise_name,
    normalise_postcode,
    postcode_district,
    resident_keys,
)
from shared.vocabulary import LawfulBasis, Outcome, RiskLevel

AMINA = Identity("r1", "Amina", "Okafor", date(1984, 3, 2), "E15 4HT", "100023336956")


def referral(**changes) -> Identity:
    fields = {
        "resident_id": None,
        "given_name": "Amina",
        "family_name": "Okafor",
        "date_of_birth": date(1984, 3, 2),
        "postcode": "E15 4HT",
        "uprn": None,
    }
    fields.update(changes)
    return Identity(**fields)


@pytest.mark.parametrize(
    ("new", "certainty", "reason"),
    [
        (
            referral(given_name=" amina ", family_name="OKAFOR"),
            Certainty.CERTAIN,
            "given name exact, family name exact, date of birth exact, postcode exact",
        ),
        (
            referral(date_of_birth=None, postcode=None, uprn="100023336956"),
            Certainty.CERTAIN,
            "given name exact, family name exact, UPRN exact",
        ),
        (referral(postcode="E8 1DY"), Certainty.UNCERTAIN, "postcode different"),
        (referral(given_name="Mina"), Certainty.UNCERTAIN, "given name close"),
        (referral(date_of_birth=None), Certainty.UNCERTAIN, "given name exact, family name exact"),
    ],
)
def test_matching(new: Identity, certainty: Certainty, reason: str) -> None:
    certain, uncertain = find_matches(new, [AMINA])
    found = certain or uncertain[0]
    assert found.certainty is certainty and reason in found.reason
    assert found.resident_id == "r1"


@pytest.mark.parametrize(
    "new",
    [
        referral(given_name="Grace", date_of_birth=date(2012, 5, 1)),
        referral(family_name="Mensah"),
        referral(date_of_birth=date(1990, 1, 1), postcode="N1 9GU"),
    ],
)
def test_different_people_do_not_match(new: Identity) -> None:
    assert find_matches(new, [AMINA]) == (None, [])


def test_a_certain_match_wins_over_uncertain_ones() -> None:
    other = Identity("r2", "Amina", "Okafor", date(1984, 3, 2), "N1 9GU", None)
    certain, uncertain = find_matches(referral(), [other, AMINA])
    assert certain is not None and certain.resident_id == "r1" and uncertain == []


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        (" e15 4ht", "E15 4HT"),
        ("EC1A1BB", "EC1A 1BB"),
        ("w1a 0ax", "W1A 0AX"),
        ("gir0aa", "GIR 0AA"),
    ],
)
def test_postcodes_are_normalised(raw: str, normal: str) -> None:
    assert normalise_postcode(raw) == normal


@pytest.mark.parametrize("raw", ["E15", "12345", "E15 4HTX", "", "QQ1 1AA", "E15 4CI"])
def test_bad_postcodes_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="not a UK postcode"):
        normalise_postcode(raw)


def test_names_districts_ages() -> None:
    assert normalise_name("  Zoë O'Brien-Smith ") == "zoeobriensmith"
    assert postcode_district("e15 4ht") == "E15"
    assert age_in_years(date(2000, 11, 23), date(2026, 11, 22)) == 25
    assert age_in_years(date(2000, 11, 22), date(2026, 11, 22)) == 26
    assert age_in_years(None, date(2026, 11, 22)) is None


def test_resident_keys_are_stable_keyed_and_strongest_first() -> None:
    keys = resident_keys(
        "secret",
        council="E09000025",
        given_name="Amina",
        family_name="Okafor",
        date_of_birth=date(1984, 3, 2),
        postcode="e15 4ht",
        uprn="1",
    )
    same = resident_keys(
        "secret",
        council="E09000025",
        given_name=" AMINA",
        family_name="okafor",
        date_of_birth=date(1984, 3, 2),
        postcode="E15 4HT",
        uprn="1",
    )
    assert keys == same and len(keys) == 3
    assert (
        resident_keys(
            "other",
            council="E09000025",
            given_name="Amina",
            family_name="Okafor",
            date_of_birth=date(1984, 3, 2),
        )[0]
        != keys[0]
    )
    assert all("Amina" not in key and "okafor" not in key for key in keys)


NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def consent(**changes) -> ConsentRecord:
    fields = {
        "given_at": NOW - timedelta(days=1),
        "expires_at": None,
        "withdrawn_at": None,
        "partner_kinds": ("food",),
    }
    fields.update(changes)
    return ConsentRecord(**fields)


@pytest.mark.parametrize(
    ("basis", "record", "agreement", "allowed", "reason"),
    [
        (LawfulBasis.CONSENT, consent(), None, True, "consented"),
        (LawfulBasis.CONSENT, None, None, False, "none is recorded"),
        (LawfulBasis.CONSENT, consent(withdrawn_at=NOW), None, False, "withdrew"),
        (
            LawfulBasis.CONSENT,
            consent(expires_at=NOW - timedelta(seconds=1)),
            None,
            False,
            "expired",
        ),
        (LawfulBasis.VITAL_INTERESTS, None, None, True, "vital interests"),
        (LawfulBasis.PUBLIC_TASK, None, "DSA-2026-07", True, "DSA-2026-07"),
        (LawfulBasis.PUBLIC_TASK, None, None, False, "public task does not allow"),
        (LawfulBasis.LEGAL_OBLIGATION, None, "DSA-1", False, "legal obligation does not"),
    ],
)
def test_when_a_case_may_go_to_a_partner(basis, record, agreement, allowed, reason) -> None:
    decision = may_share_with_partners(basis, record, data_sharing_agreement=agreement, now=NOW)
    assert decision.allowed is allowed and reason in decision.reason


def test_priority_outcome_and_summary() -> None:
    assert priority(RiskLevel.LOW, RiskLevel.CRISIS) == 4
    assert priority(RiskLevel.HIGH, None) == 3
    assert case_outcome([Outcome.RESIDENT_UNCONTACTABLE, Outcome.SUPPORT_PROVIDED]) is (
        Outcome.SUPPORT_PROVIDED
    )
    assert case_outcome([]) is None
    text = summary(["food", "money_and_debt"], ["no_food_in_home"], RiskLevel.CRISIS)
    assert text == ("Needs food, money and debt. Urgency: crisis. Circumstances: no food in home.")
