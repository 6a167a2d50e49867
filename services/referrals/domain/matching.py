"""Is this referral about a resident we already know? Plain rules over normalised fields.

Certain (attach to that resident): same name, date of birth and postcode; or same name and
UPRN. Uncertain (a caseworker decides; never merged silently): same name and date of birth
at another or unknown postcode; same family name, date of birth and postcode with another
given name; same name and postcode with a date of birth missing on one side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from shared.identity import normalise_name


@dataclass(frozen=True)
class Identity:
    resident_id: str | None
    given_name: str
    family_name: str
    date_of_birth: date | None
    postcode: str | None  # normalised
    uprn: str | None

    @property
    def given(self) -> str:
        return normalise_name(self.given_name)

    @property
    def family(self) -> str:
        return normalise_name(self.family_name)


class Certainty(StrEnum):
    CERTAIN = "certain"
    UNCERTAIN = "uncertain"


@dataclass(frozen=True)
class Match:
    resident_id: str
    certainty: Certainty
    reason: str


def compare(new: Identity, known: Identity) -> Match | None:
    known_id = known.resident_id
    assert known_id is not None  # a known resident always has an id
    same_name = new.given == known.given and new.family == known.family
    same_dob = new.date_of_birth is not None and new.date_of_birth == known.date_of_birth
    same_postcode = new.postcode is not None and new.postcode == known.postcode
    dob_missing = new.date_of_birth is None or known.date_of_birth is None

    def match(certainty: Certainty, reason: str) -> Match:
        return Match(known_id, certainty, reason)

    if same_name and same_dob and same_postcode:
        return match(Certainty.CERTAIN, "same name, date of birth and postcode")
    if same_name and new.uprn and new.uprn == known.uprn:
        return match(Certainty.CERTAIN, "same name and UPRN")
    if same_name and same_dob:
        return match(Certainty.UNCERTAIN, "same name and date of birth, different postcode")
    if new.family == known.family and same_dob and same_postcode:
        return match(Certainty.UNCERTAIN, "same family name, date of birth and postcode")
    if same_name and same_postcode and dob_missing:
        return match(Certainty.UNCERTAIN, "same name and postcode, date of birth not known")
    return None


def find_matches(new: Identity, known: Iterable[Identity]) -> tuple[Match | None, list[Match]]:
    """The resident to attach to (first certain match), and the uncertain ones to review."""
    matches = [m for k in known if (m := compare(new, k)) is not None]
    certain = next((m for m in matches if m.certainty is Certainty.CERTAIN), None)
    if certain is not None:
        return certain, []
    return None, [m for m in matches if m.certainty is Certainty.UNCERTAIN]
