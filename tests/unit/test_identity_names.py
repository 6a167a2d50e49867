"""Names from every script: what ``normalise_name`` folds (case, compatibility forms, the
accents of Latin, Greek and Cyrillic, Arabic and Hebrew vowel marks, everything that is not
a letter or digit) and what it keeps (every letter, and the marks that spell a word), so two
different people are never one key, and ASCII and Latin names keep the keys they had."""

# ruff: noqa: RUF001, RUF003 -- names in other scripts are the point here

from __future__ import annotations

import hashlib
import hmac
import re
import sys
import unicodedata
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.identity import (
    council_key,
    has_letters,
    is_name_letter,
    name_with_letters,
    normalise_name,
    resident_keys,
)

SECRET = "secret"
BORN = date(1984, 3, 2)
NEWHAM, HACKNEY = "E09000025", "E09000012"


def _before_issue_11(raw: str) -> str:
    """The normalisation every stored key was made with until names of every script were
    kept: ASCII letters and digits only."""
    decomposed = unicodedata.normalize("NFKD", raw)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^0-9a-z]", "", letters.casefold())


# -- what ASCII and Latin names were, they stay -------------------------------------------

BEFORE = [
    (" O'Brien-Smith", "obriensmith"),
    ("José", "jose"),
    ("Zoë", "zoe"),
    ("  Zoë O'Brien-Smith ", "zoeobriensmith"),
    ("Amina", "amina"),
    ("OKAFOR", "okafor"),
    ("Núñez", "nunez"),
    ("François", "francois"),
    ("Åsa", "asa"),
    ("Dvořák", "dvorak"),
    ("Straße", "strasse"),
    ("İlkay", "ilkay"),
    ("Mc Donald", "mcdonald"),
    ("St. John", "stjohn"),
    ("ﬁfe", "fife"),
    ("Ｓｍｉｔｈ", "smith"),
    ("Henry 8", "henry8"),
    ("Jean\u2011Luc", "jeanluc"),  # a non-breaking hyphen
    ("O\u2019Neill", "oneill"),  # a typographic apostrophe
    ("Hawaiʻi", "hawaii"),  # the ʻokina counts as an apostrophe
]


@pytest.mark.parametrize(("raw", "key"), BEFORE, ids=[b[0] for b in BEFORE])
def test_ascii_and_latin_names_normalise_as_they_always_did(raw: str, key: str) -> None:
    assert normalise_name(raw) == key == _before_issue_11(raw)


def test_resident_keys_of_latin_names_are_the_keys_already_stored_keyed_to_the_council() -> None:
    """The identifiers' keys are the digests made with the previous normalisation (so a
    stored key can be given its council's, migration 0011 of the risk service), each then
    keyed to the council: HMAC-SHA256 of ``council|identifiers' key``."""
    latin = [
        "a0b0620801489b4c1ad5cac25190af22f9df592e504947a57a6357f7cf7dfcad",
        "9d602c8342f9cea28164b6a9ef71a6863b44ae53b7629a206499ef9e14d188d8",
        "48f9bc3c410df61e6618cd3ddea325591a96d98e226be3f55b79161ecd508dcb",
    ]
    assert resident_keys(
        SECRET,
        council=NEWHAM,
        given_name=" Zoë",
        family_name="O'Brien-Smith",
        date_of_birth=BORN,
        postcode="e15 4ht",
        uprn="100023336956",
    ) == [_hmac(f"{NEWHAM}|{key}") for key in latin]
    accented = [
        "fe865448a452cf288972f32087832b4a11db045637c1eff5f0db1260e8763249",
        "b70c6d03e2859e91bc6944f2001c06e9d89c3397a1928748c604f9edf7bd6f5a",
    ]
    assert resident_keys(
        SECRET,
        council=NEWHAM,
        given_name="José",
        family_name="Núñez",
        date_of_birth=BORN,
        postcode="E15 4HT",
    ) == [council_key(SECRET, NEWHAM, key) for key in accented]
    assert council_key(SECRET, NEWHAM, accented[0]) == _hmac(f"{NEWHAM}|{accented[0]}")


def test_the_same_person_in_two_councils_has_no_key_in_common() -> None:
    """Each council's residents are its own: one council's signals never reach the profile
    another council's feed made of the same person."""
    person = {"given_name": "Amina", "family_name": "Okafor", "date_of_birth": BORN}
    newham = resident_keys(SECRET, council=NEWHAM, postcode="E15 4HT", uprn="1", **person)
    hackney = resident_keys(SECRET, council=HACKNEY, postcode="E15 4HT", uprn="1", **person)
    assert len(newham) == len(hackney) == 3 and not set(newham) & set(hackney)
    assert newham == resident_keys(SECRET, council=NEWHAM, postcode="E15 4HT", uprn="1", **person)


def _hmac(message: str) -> str:
    return hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()


def test_every_character_the_old_form_kept_whole_normalises_as_before() -> None:
    """Exhaustive over Unicode: where the old form lost nothing but accents (the character
    decomposes to ASCII letters and digits), the new one is identical."""
    changed = []
    for point in range(sys.maxunicode + 1):
        char = chr(point)
        if unicodedata.category(char) == "Cs":
            continue
        bare = "".join(
            c for c in unicodedata.normalize("NFKD", char) if unicodedata.category(c)[0] != "M"
        )
        if re.fullmatch(r"[0-9a-z]+", bare.casefold()) and normalise_name(char) != (
            _before_issue_11(char)
        ):
            changed.append(f"U+{point:04X}")
    assert changed == []


# -- every script --------------------------------------------------------------------------

DIFFERENT_PEOPLE = [
    ("Arabic", ("محمد", "الحسن"), ("أحمد", "الحسن")),
    ("Arabic family", ("فاطمة", "خان"), ("فاطمة", "حسن")),
    ("Chinese", ("伟", "王"), ("伟", "李")),
    ("Chinese given", ("王伟", "陈"), ("王芳", "陈")),
    ("Cyrillic", ("Иван", "Петров"), ("Олег", "Петров")),
    ("Greek", ("Γιώργος", "Παπαδόπουλος"), ("Νίκος", "Παπαδόπουλος")),
    ("Hebrew", ("דוד", "כהן"), ("משה", "כהן")),
    ("Devanagari vowel sign", ("राम", "शर्मा"), ("रम", "शर्मा")),
    ("Japanese voicing mark", ("カトウ", "ユキ"), ("ガトウ", "ユキ")),
    ("Korean", ("민준", "김"), ("서연", "김")),
    ("Thai", ("สมชาย", "ใจดี"), ("สมศักดิ์", "ใจดี")),
    ("Bengali", ("রহিম", "মিয়া"), ("করিম", "মিয়া")),
    ("Latin with a stroke", ("Łukasz", "Nowak"), ("Ukasz", "Nowak")),
]


@pytest.mark.parametrize(
    ("script", "one", "other"), DIFFERENT_PEOPLE, ids=[d[0] for d in DIFFERENT_PEOPLE]
)
def test_different_names_in_any_script_are_different_residents(
    script: str, one: tuple[str, str], other: tuple[str, str]
) -> None:
    for given_name, family_name in (one, other):
        assert has_letters(given_name) and has_letters(family_name)
    first = resident_keys(
        SECRET,
        council=NEWHAM,
        given_name=one[0],
        family_name=one[1],
        date_of_birth=BORN,
        postcode="E15 4HT",
    )
    second = resident_keys(
        SECRET,
        council=NEWHAM,
        given_name=other[0],
        family_name=other[1],
        date_of_birth=BORN,
        postcode="E15 4HT",
    )
    assert not set(first) & set(second)


SAME_PEOPLE = [
    ("Arabic harakat", "مُحَمَّد", "محمد"),
    ("Arabic hamza on alef", "أحمد", "احمد"),
    ("Arabic tatweel", "محـــمد", "محمد"),
    ("Hebrew niqqud", "דָּוִד", "דוד"),
    ("Greek accents and case", "ΓΙΏΡΓΟΣ", "γιωργος"),
    ("Greek final sigma", "Νίκος", "ΝΙΚΟΣ"),
    ("Cyrillic yo", "Фёдор", "ФЕДОР"),
    ("Japanese half-width", "ｶﾞﾄｳ", "ガトウ"),
    ("Chinese spacing", "王 伟", "王伟"),
    ("Korean jamo", "\u1100\u1161\u11a8", "각"),
    ("Latin stroke letters", "Søren Łęcki", "soren lecki"),
    ("Latin ligature", "Æthelred", "aethelred"),
    ("Turkish dotless i", "Işık", "isik"),
]


@pytest.mark.parametrize(("case", "one", "other"), SAME_PEOPLE, ids=[s[0] for s in SAME_PEOPLE])
def test_what_people_write_either_way_is_one_name(case: str, one: str, other: str) -> None:
    assert normalise_name(one) == normalise_name(other) != ""


@pytest.mark.parametrize(
    ("raw", "key"),
    [("Иван", "иван"), ("王伟", "王伟"), ("محمد", "محمد"), ("Γιώργος", "γιωργοσ"), ("राम", "राम")],
)
def test_letters_of_other_scripts_are_kept(raw: str, key: str) -> None:
    assert normalise_name(raw) == key


@pytest.mark.parametrize("raw", ["", "   ", "---", "'", "123", "?!", "\u0301\u0301", "ʼ", "ـ"])
def test_a_name_without_a_letter_is_refused(raw: str) -> None:
    assert not has_letters(raw)
    with pytest.raises(ValueError, match="must contain a letter"):
        name_with_letters(raw)


def test_letterless_names_give_no_resident_keys() -> None:
    with pytest.raises(ValueError, match="must each contain a letter"):
        resident_keys(
            SECRET, council=NEWHAM, given_name="--", family_name="Okafor", date_of_birth=BORN
        )


def test_every_letter_of_every_script_counts() -> None:
    """Exhaustive: each letter gives a key with a letter in it, except presentation forms
    that are only a vowel mark or an apostrophe-like modifier once decomposed."""
    lost = []
    for point in range(sys.maxunicode + 1):
        char = chr(point)
        if not is_name_letter(char) or has_letters(char):
            continue
        parts = unicodedata.normalize("NFKD", char)
        if all(unicodedata.category(c)[0] == "M" or not is_name_letter(c) for c in parts):
            continue  # e.g. ARABIC FATHA ISOLATED FORM, GREEK NUMERAL SIGN
        lost.append(f"U+{point:04X} {unicodedata.name(char, '?')}")
    assert lost == []


# -- properties over arbitrary Unicode -----------------------------------------------------

ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
SEPARATORS = st.text(
    st.characters(categories=("Zs", "Pd", "Po", "Pi", "Pf", "Ps", "Pe", "Cc", "Cf")),
    min_size=1,
    max_size=3,
)
# Combining diacritics, but the Greek iota subscript: it is the iota it stands for (case
# folding makes ``ᾳ`` ``αι``).
ACCENTS = st.characters(min_codepoint=0x0300, max_codepoint=0x036F, exclude_characters="\u0345")


def _atomic(char: str) -> bool:
    """A letter in its simplest form: no decomposition, no case to fold, no stroke fold.
    Independent of ``normalise_name``: only Unicode's properties."""
    return (
        is_name_letter(char)
        and unicodedata.normalize("NFKD", char) == char
        and char.casefold() == char
        and normalise_name.__globals__["_LATIN_FOLDS"].get(ord(char)) is None
    )


ATOMIC_LETTERS = st.characters(categories=("Ll", "Lm", "Lo", "Nl")).filter(_atomic)
ATOMIC_NAMES = st.text(ATOMIC_LETTERS, min_size=1, max_size=12)


def _accent_folded(char: str) -> bool:
    return unicodedata.name(char, "").startswith(("LATIN ", "GREEK ", "CYRILLIC "))


@st.composite
def decorated(draw: st.DrawFn, name: str) -> str:
    """``name`` as people write it: in any case, spaced and punctuated anyhow, with accents
    on its Latin, Greek and Cyrillic letters."""
    out = [draw(st.text(st.sampled_from(" \t-'."), max_size=2))]
    for char in name:
        cased = draw(st.sampled_from([char, char.upper(), char.lower(), char.title()]))
        out.append(cased)
        if _accent_folded(char):
            out.append(draw(st.text(ACCENTS, max_size=2)))
        out.append(draw(st.one_of(st.just(""), SEPARATORS)))
    return "".join(out)


@given(ANY_TEXT)
def test_normalising_twice_changes_nothing(raw: str) -> None:
    key = normalise_name(raw)
    assert normalise_name(key) == key


@given(ANY_TEXT)
def test_a_key_holds_only_letters_their_marks_and_ascii_digits(raw: str) -> None:
    key = normalise_name(raw)
    assert key == unicodedata.normalize("NFC", key)
    for char in unicodedata.normalize("NFD", key):
        category = unicodedata.category(char)
        assert is_name_letter(char) or category in ("Mn", "Mc") or char in "0123456789", (
            f"U+{ord(char):04X}"
        )


@given(ANY_TEXT, ATOMIC_LETTERS, st.data())
def test_a_name_with_a_letter_never_has_an_empty_key(
    raw: str, letter: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(raw)))
    assert has_letters(raw[:at] + letter + raw[at:])


@given(ANY_TEXT)
def test_case_does_not_matter(raw: str) -> None:
    key = normalise_name(raw)
    assert normalise_name(raw.upper()) == normalise_name(raw.lower()) == key
    assert normalise_name(raw.swapcase()) == key


@given(ATOMIC_NAMES, st.data())
def test_case_spacing_punctuation_and_accents_do_not_change_a_name(
    name: str, data: st.DataObject
) -> None:
    assert normalise_name(name) == unicodedata.normalize("NFC", name)  # nothing lost
    assert normalise_name(data.draw(decorated(name))) == normalise_name(name)


@settings(max_examples=300)
@given(ATOMIC_NAMES, st.data())
def test_two_different_names_never_share_a_key(one: str, data: st.DataObject) -> None:
    """However each is written, two names whose letters differ are two keys; the same
    letters, written differently, are one."""
    other = data.draw(st.one_of(st.just(one), ATOMIC_NAMES, st.just(one[:-1] or "a")))
    same = unicodedata.normalize("NFC", one) == unicodedata.normalize("NFC", other)
    written_one, written_other = data.draw(decorated(one)), data.draw(decorated(other))
    assert (normalise_name(written_one) == normalise_name(written_other)) is same
    assert (
        resident_keys(
            SECRET, council=NEWHAM, given_name=written_one, family_name="x", date_of_birth=BORN
        )
        == resident_keys(
            SECRET, council=NEWHAM, given_name=written_other, family_name="x", date_of_birth=BORN
        )
    ) is same


# -- where names come in -------------------------------------------------------------------


@pytest.mark.parametrize("field", ["given_name", "family_name"])
def test_a_feed_row_with_a_letterless_name_is_refused_naming_the_field(field: str) -> None:
    from services.risk.domain.feeds import Row, RowError, check

    row: dict[str, Any] = {
        "type": "job_loss",
        "council": "E09000025",
        "source": "dwp-feed",
        "observed_on": "2026-01-05",
        "resident": {"given_name": "Amina", "family_name": "Okafor", "postcode": "E8 1DY"},
    }
    assert isinstance(check(3, row), Row)
    row["resident"] = {**row["resident"], field: "--?"}
    refused = check(3, row)
    assert isinstance(refused, list)
    assert [(e.line, e.field) for e in refused] == [(3, f"resident.{field}")]
    assert all(isinstance(e, RowError) and "must contain a letter" in e.reason for e in refused)
    row["resident"] = {**row["resident"], field: "王"}
    assert isinstance(check(3, row), Row)
