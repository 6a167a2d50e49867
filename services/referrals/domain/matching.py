"""Is this referral about a resident we already know? A scored comparison, after Splink and
NHS demographic tracing: each field is compared, the kind of agreement found gives a match
weight (Fellegi-Sunter: ``log2(m / u)``, where m is how often the same person's records
agree that way and u how often two different people's do), and the weights add up.

Two thresholds split the score into three outcomes:

- **certain** (``score >= CERTAIN_AT``) — the referral attaches to that resident. Besides
  the score, a certain match needs the *exact* name (given and family, after
  ``shared.identity.normalise_name``) and either the same date of birth and the same home
  (postcode or UPRN), or the same UPRN with the date of birth not known on one side; and it
  must be the only certain one among the candidates. A near miss of any kind — a typo, a
  swap, a variant, a transposed date — is never attached: a person decides. So two
  different people who share a date of birth and a postcode (twins, neighbours) are never
  one resident.
- **possible** (``score >= POSSIBLE_AT``) — a new resident is created and the pair listed
  for a caseworker, with the score and each field's contribution.
- **different** — below ``POSSIBLE_AT``.

The weights (bits) per field and per kind of agreement, strongest level that applies:

| field | agreement | weight |
|---|---|---|
| given name | exact | +5 |
| given name | known variant (``NAME_VARIANTS``: Mohammed/Muhammad, Segun/Olusegun…) | +4 |
| given name | close: Jaro-Winkler ≥ 0.90, or one edit (4+ letters), or two (8+) | +3 |
| given name | phonetic (Metaphone, Latin letters) | +2 |
| given name | different | -5 |
| family name | exact | +6 |
| family name | known variant (Hussain/Hossain, Chen/Chan…) | +5 |
| family name | one part of a hyphenated or double-barrelled name (Smith / Smith-Jones) | +4 |
| family name | close (as for given names) | +4 |
| family name | phonetic | +3 |
| family name | different | -8 |
| both names | given and family swapped | the crossed comparison, -2 |
| date of birth | exact | +7 |
| date of birth | day and month transposed (03/02 for 02/03) | +4 |
| date of birth | two of day, month, year equal | +1 |
| date of birth | different | -6 |
| postcode | exact | +4 |
| postcode | same district (outward code) only | 0 |
| postcode | different | -1 (people move) |
| UPRN | equal | +9 |
| phone | equal (last ten digits) | +5 |
| email | equal (case folded) | +5 |

A field missing on either side weighs 0. Different UPRNs, phones or emails weigh 0 too:
they change more often than people do. ``CERTAIN_AT = 20``: exact name, date of birth and
postcode score 22; exact name and UPRN 20. ``POSSIBLE_AT = 10``: a single near miss of
any kind in name or date, a move, or a missing date of birth stays well above it, while
two different people from the same name pools (different date of birth and postcode)
score well below it. ``tests/bench/test_matching_quality.py`` measures both on generated
pairs (``docs/referrals.md``).

Blocking (which residents are compared at all) uses :func:`blocking_keys`: the date of
birth (and its transposition), the phonetic keys of both names in either order, the
postcode district with the family name's key, the postcode (these, when the date of birth
is known, only for residents born the same year or with no date), UPRN, phone and email.
The adapter queries the same keys through indexes, at most 50 residents a key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum

import jellyfish
from rapidfuzz.distance import OSA, JaroWinkler

from shared.identity import normalise_name

CERTAIN_AT = 20.0
POSSIBLE_AT = 10.0

# Known variants: the same name as different communities and transcriptions write it.
# Each group is one name; compared after normalise_name.
NAME_VARIANTS: tuple[frozenset[str], ...] = tuple(
    frozenset(normalise_name(n) for n in group.split())
    for group in (
        # Arabic, and Somali and Turkish forms of the same names
        "Mohammed Muhammad Mohammad Mohamed Muhammed Mohamad Mohamud Maxamed Mehmet Mehmed",
        "Ahmed Ahmad Ahmet Axmed",
        "Yusuf Yousef Yusef Youssef Yousuf",
        "Fatima Fatimah Fatma Faduma",
        "Aisha Ayesha Aysha Aishah Ayse Caisha",
        "Ibrahim Ebrahim Ibraahim",
        "Abdi Cabdi",
        "Abdullahi Abdullah Cabdullahi",
        "Hussain Hossain Hussein Husain Hosain Huseyin",
        "Rahman Rehman",
        "Chowdhury Choudhury Chaudhry Chowdhry",
        "Begum Begom",
        "Mustafa Mustapha Mostafa",
        "Osman Usman Uthman Othman",
        # Yoruba short forms
        "Olusegun Segun",
        "Oluwaseun Seun",
        "Oluwatobi Tobi",
        "Adebayo Bayo",
        "Olumide Mide",
        # Slavic, Polish and Greek transcriptions and familiar forms
        "Aleksandr Alexander Aleksander Oleksandr Alexandr Aleksandar",
        "Dmitri Dmitry Dmitriy Dimitri",
        "Sergei Sergey Serhiy Sergiy",
        "Yuri Yury Yuriy Iurii",
        "Yevgeny Evgeny Evgeniy Yevhen",
        "Katarzyna Kasia",
        "Malgorzata Gosia",
        "Wojciech Wojtek",
        "Georgios Giorgos George Yiorgos",
        "Konstantinos Kostas",
        "Nikolaos Nikos Nicholas",
        "Ioannis Yiannis Giannis John",
        # Chinese romanisations (pinyin and Cantonese)
        "Chen Chan",
        "Li Lee",
        "Zhang Cheung",
        "Liu Lau",
        # English familiar forms
        "Elizabeth Liz Beth Lizzie",
        "William Bill Will",
        "Robert Bob Rob",
        "Margaret Maggie Peggy",
    )
)
_VARIANT_OF: dict[str, int] = {name: i for i, group in enumerate(NAME_VARIANTS) for name in group}
_ASCII_LETTERS = re.compile(r"^[a-z]+$")
_NAME_PARTS = re.compile(r"[\s\-\u2010-\u2014]+")  # spaces, hyphens and dashes


class Certainty(StrEnum):
    CERTAIN = "certain"
    UNCERTAIN = "uncertain"


class Agreement(StrEnum):
    EXACT = "exact"
    VARIANT = "known variant"
    PART = "one part of a double-barrelled name"
    CLOSE = "close"
    PHONETIC = "sounds alike"
    TRANSPOSED = "day and month transposed"
    PARTLY = "two of day, month and year"
    DISTRICT = "same district"
    SWAPPED = "given and family swapped"
    DIFFERENT = "different"
    MISSING = "not known on both"


@dataclass(frozen=True)
class Identity:
    resident_id: str | None
    given_name: str
    family_name: str
    date_of_birth: date | None
    postcode: str | None  # normalised
    uprn: str | None
    phone: str | None = None
    email: str | None = None

    @property
    def given(self) -> str:
        return normalise_name(self.given_name)

    @property
    def family(self) -> str:
        return normalise_name(self.family_name)


@dataclass(frozen=True)
class Contribution:
    """One field's part in a score: how it agreed and what that weighs."""

    field: str
    agreement: Agreement
    weight: float


@dataclass(frozen=True)
class Match:
    resident_id: str
    certainty: Certainty
    reason: str
    score: float = 0.0
    contributions: tuple[Contribution, ...] = field(default=())


# -- keys ------------------------------------------------------------------------------


def phonetic_key(normalised: str) -> str:
    """Metaphone of a name in Latin letters; a name in any other script is its own key
    (a phonetic code of Latin spelling says nothing about it)."""
    if _ASCII_LETTERS.match(normalised):
        return jellyfish.metaphone(normalised) or normalised
    return normalised


def phone_key(phone: str | None) -> str | None:
    digits = re.sub(r"\D", "", phone or "")
    return digits[-10:] if len(digits) >= 7 else None


def email_key(email: str | None) -> str | None:
    return email.strip().casefold() if email and "@" in email else None


def district_of(postcode: str | None) -> str | None:
    return postcode.split(" ")[0] if postcode else None


def transposed(born: date) -> date | None:
    """The date with day and month swapped, when that is a different, valid date."""
    if born.day == born.month or born.day > 12:
        return None
    try:
        return born.replace(month=born.day, day=born.month)
    except ValueError:
        return None


@dataclass(frozen=True)
class BlockingKeys:
    """What the candidate query looks up (each through an index)."""

    dates_of_birth: tuple[date, ...]
    birth_year: int | None
    given_key: str
    family_key: str
    postcode: str | None
    district: str | None
    uprn: str | None
    phone: str | None
    email: str | None


def blocking_keys(new: Identity) -> BlockingKeys:
    dates: tuple[date, ...] = ()
    if new.date_of_birth is not None:
        swapped = transposed(new.date_of_birth)
        dates = (new.date_of_birth,) if swapped is None else (new.date_of_birth, swapped)
    return BlockingKeys(
        dates_of_birth=dates,
        birth_year=new.date_of_birth.year if new.date_of_birth else None,
        given_key=phonetic_key(new.given),
        family_key=phonetic_key(new.family),
        postcode=new.postcode,
        district=district_of(new.postcode),
        uprn=new.uprn or None,
        phone=phone_key(new.phone),
        email=email_key(new.email),
    )


def shares_a_block(new: Identity, known: Identity) -> bool:
    """Would the candidate query find ``known`` for ``new``? (The same keys, in Python: for
    the evaluation, which measures the blocking's recall with the comparison's.)"""
    a, b = blocking_keys(new), blocking_keys(known)
    born = a.birth_year is None or b.birth_year is None or a.birth_year == b.birth_year
    return bool(
        (known.date_of_birth is not None and known.date_of_birth in a.dates_of_birth)
        or (born and a.family_key == b.family_key and a.given_key == b.given_key)
        or (born and a.family_key == b.given_key and a.given_key == b.family_key)
        or (
            born
            and a.district is not None
            and a.district == b.district
            and a.family_key == b.family_key
        )
        or (born and a.postcode is not None and a.postcode == b.postcode)
        or any(x is not None and x == y for x, y in ((a.uprn, b.uprn), (a.phone, b.phone)))
        or (a.email is not None and a.email == b.email)
    )


# -- comparing -------------------------------------------------------------------------

_GIVEN_WEIGHTS = {
    Agreement.EXACT: 5.0,
    Agreement.VARIANT: 4.0,
    Agreement.CLOSE: 3.0,
    Agreement.PHONETIC: 2.0,
    Agreement.DIFFERENT: -5.0,
}
_FAMILY_WEIGHTS = {
    Agreement.EXACT: 6.0,
    Agreement.VARIANT: 5.0,
    Agreement.PART: 4.0,
    Agreement.CLOSE: 4.0,
    Agreement.PHONETIC: 3.0,
    Agreement.DIFFERENT: -8.0,
}
SWAPPED_PENALTY = 2.0


def _close(a: str, b: str) -> bool:
    shorter = min(len(a), len(b))
    if JaroWinkler.similarity(a, b) >= 0.90 and shorter >= 3:
        return True
    distance = OSA.distance(a, b)
    return (distance <= 1 and shorter >= 4) or (distance <= 2 and shorter >= 8)


def _parts(raw: str) -> frozenset[str]:
    return frozenset(p for p in (normalise_name(x) for x in _NAME_PARTS.split(raw)) if p)


def _name_agreement(a: str, b: str, raw_a: str, raw_b: str, *, family: bool) -> Agreement:
    if not a or not b:
        return Agreement.MISSING
    if a == b:
        return Agreement.EXACT
    group = _VARIANT_OF.get(a)
    if group is not None and group == _VARIANT_OF.get(b):
        return Agreement.VARIANT
    if family:
        parts_a, parts_b = _parts(raw_a), _parts(raw_b)
        if (len(parts_a) > 1 or len(parts_b) > 1) and (parts_a <= parts_b or parts_b <= parts_a):
            return Agreement.PART
    if _close(a, b):
        return Agreement.CLOSE
    key_a = phonetic_key(a)
    if key_a != a and key_a == phonetic_key(b):
        return Agreement.PHONETIC
    return Agreement.DIFFERENT


def _names(new: Identity, known: Identity) -> tuple[list[Contribution], bool]:
    """The name contributions, straight or crossed (given and family swapped), whichever
    agrees more; and whether both names are exactly the same (straight)."""

    def pair(g1: str, g2: str, rg1: str, rg2: str, f1: str, f2: str, rf1: str, rf2: str):
        given = _name_agreement(g1, g2, rg1, rg2, family=False)
        family = _name_agreement(f1, f2, rf1, rf2, family=True)
        return given, family, _GIVEN_WEIGHTS.get(given, 0.0) + _FAMILY_WEIGHTS.get(family, 0.0)

    g, f = new.given, new.family
    kg, kf = known.given, known.family
    given, family, straight = pair(
        g, kg, new.given_name, known.given_name, f, kf, new.family_name, known.family_name
    )
    c_given, c_family, crossed = pair(
        g, kf, new.given_name, known.family_name, f, kg, new.family_name, known.given_name
    )
    crossed -= SWAPPED_PENALTY
    if crossed > straight:
        return [
            Contribution("given name (as family name)", c_given, _GIVEN_WEIGHTS.get(c_given, 0.0)),
            Contribution(
                "family name (as given name)", c_family, _FAMILY_WEIGHTS.get(c_family, 0.0)
            ),
            Contribution("names", Agreement.SWAPPED, -SWAPPED_PENALTY),
        ], False
    exact = given is Agreement.EXACT and family is Agreement.EXACT
    return [
        Contribution("given name", given, _GIVEN_WEIGHTS.get(given, 0.0)),
        Contribution("family name", family, _FAMILY_WEIGHTS.get(family, 0.0)),
    ], exact


def _date_of_birth(a: date | None, b: date | None) -> Contribution:
    if a is None or b is None:
        return Contribution("date of birth", Agreement.MISSING, 0.0)
    if a == b:
        return Contribution("date of birth", Agreement.EXACT, 7.0)
    if transposed(a) == b:
        return Contribution("date of birth", Agreement.TRANSPOSED, 4.0)
    same = (a.day == b.day) + (a.month == b.month) + (a.year == b.year)
    if same == 2:
        return Contribution("date of birth", Agreement.PARTLY, 1.0)
    return Contribution("date of birth", Agreement.DIFFERENT, -6.0)


def _postcode(a: str | None, b: str | None) -> Contribution:
    if a is None or b is None:
        return Contribution("postcode", Agreement.MISSING, 0.0)
    if a == b:
        return Contribution("postcode", Agreement.EXACT, 4.0)
    if district_of(a) == district_of(b):
        return Contribution("postcode", Agreement.DISTRICT, 0.0)
    return Contribution("postcode", Agreement.DIFFERENT, -1.0)


def _equal_only(name: str, a: str | None, b: str | None, weight: float) -> Contribution:
    if a is None or b is None:
        return Contribution(name, Agreement.MISSING, 0.0)
    if a == b:
        return Contribution(name, Agreement.EXACT, weight)
    return Contribution(name, Agreement.DIFFERENT, 0.0)


def _reason(contributions: Iterable[Contribution]) -> str:
    return ", ".join(
        f"{c.field} {c.agreement.value}" for c in contributions if c.agreement != Agreement.MISSING
    )


def score(new: Identity, known: Identity) -> tuple[float, tuple[Contribution, ...], bool]:
    """The match weight of the pair, each field's contribution, and whether it may be
    attached without a person (exact name, no date conflict, same home)."""
    names, exact_names = _names(new, known)
    dob = _date_of_birth(new.date_of_birth, known.date_of_birth)
    postcode = _postcode(new.postcode, known.postcode)
    uprn = _equal_only("UPRN", new.uprn or None, known.uprn or None, 9.0)
    phone = _equal_only("phone", phone_key(new.phone), phone_key(known.phone), 5.0)
    email = _equal_only("email", email_key(new.email), email_key(known.email), 5.0)
    contributions = (*names, dob, postcode, uprn, phone, email)
    total = sum(c.weight for c in contributions)
    same_home = Agreement.EXACT in (postcode.agreement, uprn.agreement)
    attachable = exact_names and (
        (dob.agreement is Agreement.EXACT and same_home)
        or (dob.agreement is Agreement.MISSING and uprn.agreement is Agreement.EXACT)
    )
    return total, contributions, attachable


def compare(new: Identity, known: Identity) -> Match | None:
    known_id = known.resident_id
    if known_id is None:
        raise ValueError("a known resident always has an id")
    total, contributions, attachable = score(new, known)
    if total >= CERTAIN_AT and attachable:
        certainty = Certainty.CERTAIN
    elif total >= POSSIBLE_AT:
        certainty = Certainty.UNCERTAIN
    else:
        return None
    return Match(known_id, certainty, _reason(contributions), total, contributions)


def find_matches(new: Identity, known: Iterable[Identity]) -> tuple[Match | None, list[Match]]:
    """The resident to attach to (the best certain match), and the possible ones to review
    (best first)."""
    matches = sorted(
        (m for k in known if (m := compare(new, k)) is not None),
        key=lambda m: -m.score,
    )
    certain = [m for m in matches if m.certainty is Certainty.CERTAIN]
    if len(certain) == 1:
        return certain[0], []
    # Two residents who could each be this person (a parent and child of one name at one
    # address, the date of birth not given): a person decides which.
    return None, [replace(m, certainty=Certainty.UNCERTAIN) for m in matches]
