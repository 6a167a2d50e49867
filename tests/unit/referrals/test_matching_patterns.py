"""The scored comparison (``domain/matching.py``): each error pattern real referrals carry
is found for a caseworker, never attached; different people are never attached."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from services.referrals.domain.matching import (
    CERTAIN_AT,
    POSSIBLE_AT,
    Agreement,
    Certainty,
    Identity,
    blocking_keys,
    compare,
    find_matches,
    shares_a_block,
)
from tests.support.resident_pairs import Pattern, People, evaluate

KNOWN = Identity(
    "r1", "Amina", "Okafor", date(1984, 3, 2), "E15 4HT", "100023336956", "07700 900123"
)
NEW = replace(KNOWN, resident_id=None, uprn=None, phone=None)


@pytest.mark.parametrize(
    ("pattern", "new", "field", "agreement"),
    [
        ("family name typo", replace(NEW, family_name="Okafur"), "family name", Agreement.CLOSE),
        ("given name typo", replace(NEW, given_name="Amnia"), "given name", Agreement.CLOSE),
        (
            "names swapped",
            replace(NEW, given_name="Okafor", family_name="Amina"),
            "names",
            Agreement.SWAPPED,
        ),
        (
            "double-barrelled",
            replace(NEW, family_name="Okafor-Smith"),
            "family name",
            Agreement.PART,
        ),
        (
            "double-barrelled, with a space",
            replace(NEW, family_name="Smith Okafor"),
            "family name",
            Agreement.PART,
        ),
        (
            "transposed date",
            replace(NEW, date_of_birth=date(1984, 2, 3)),
            "date of birth",
            Agreement.TRANSPOSED,
        ),
        ("date missing", replace(NEW, date_of_birth=None), "date of birth", Agreement.MISSING),
        ("moved", replace(NEW, postcode="E8 1DY"), "postcode", Agreement.DIFFERENT),
    ],
)
def test_each_error_pattern_is_listed_for_a_caseworker_not_attached(
    pattern: str, new: Identity, field: str, agreement: Agreement
) -> None:
    assert shares_a_block(new, KNOWN), "the candidate search finds it"
    match = compare(new, KNOWN)
    assert match is not None and match.certainty is Certainty.UNCERTAIN, pattern
    assert match.score >= POSSIBLE_AT
    assert {c.field: c.agreement for c in match.contributions}[field] is agreement
    assert sum(c.weight for c in match.contributions) == match.score


def test_a_known_variant_of_a_name_is_listed() -> None:
    known = replace(KNOWN, given_name="Mohammed", family_name="Hussain")
    for given, family in (("Muhammad", "Hussain"), ("Mohamed", "Hossain"), ("Maxamed", "Hussein")):
        match = compare(replace(NEW, given_name=given, family_name=family), known)
        assert match is not None and match.certainty is Certainty.UNCERTAIN
        assert match.contributions[0].agreement is Agreement.VARIANT


def test_an_exact_record_is_attached() -> None:
    match = compare(replace(NEW, given_name="AMINA", family_name=" okafor"), KNOWN)
    assert match is not None and match.certainty is Certainty.CERTAIN
    assert match.score >= CERTAIN_AT


@pytest.mark.parametrize(
    "other",
    [
        # twins: same family name, date of birth and postcode, another given name
        replace(NEW, given_name="Chidi"),
        # a neighbour born the same day
        replace(NEW, given_name="Grace", family_name="Mensah"),
        # a parent and child of one name at one home: another date of birth
        replace(NEW, date_of_birth=date(2008, 3, 2), phone="07700 900123"),
        # the same names in other scripts are other people's names
        replace(NEW, given_name="أمينة", family_name="Okafor"),
    ],
)
def test_different_people_with_the_same_date_of_birth_and_postcode_are_not_attached(
    other: Identity,
) -> None:
    certain, _ = find_matches(other, [KNOWN])
    assert certain is None


def test_two_residents_who_could_each_be_the_person_are_both_left_to_a_caseworker() -> None:
    father = replace(KNOWN, resident_id="r1", date_of_birth=date(1960, 1, 5))
    son = replace(KNOWN, resident_id="r2", date_of_birth=date(1990, 6, 9))
    certain, possible = find_matches(
        replace(NEW, date_of_birth=None, uprn=KNOWN.uprn), [father, son]
    )
    assert certain is None and {m.resident_id for m in possible} == {"r1", "r2"}


def test_blocking_keys_cover_names_in_every_script_and_a_transposed_date() -> None:
    keys = blocking_keys(replace(NEW, given_name="Иван", family_name="Петров"))
    assert (keys.given_key, keys.family_key) == ("иван", "петров")
    assert blocking_keys(NEW).dates_of_birth == (date(1984, 3, 2), date(1984, 2, 3))
    assert (
        blocking_keys(NEW).family_key
        == blocking_keys(replace(NEW, family_name="Okafur")).family_key
    )


def test_on_generated_pairs_no_different_people_are_attached_and_each_pattern_is_found() -> None:
    """A small sample of the bench's set (``make bench`` runs 100,000 non-matching pairs)."""
    people = People(seed=7)
    matches = evaluate(people.matches(3_000))
    assert matches.total is not None
    assert set(matches.total) == {p.value for p in Pattern}
    for pattern in matches.total:
        assert matches.recall(pattern) >= 0.95, pattern
    different = evaluate(people.non_matches(5_000))
    assert different.non_matches > 4_900 and different.false_attaches == 0
