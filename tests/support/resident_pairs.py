"""Labelled referral pairs for evaluating resident matching (used by tests/bench and by a
unit test): true matches carrying the errors real referrals carry, at assumed realistic
rates, and true non-matches drawn from the same name pools — including the hard ones
(twins, a parent and child of the same name at one address, neighbours born the same day).

Name pools: English, Arabic (transcribed and in Arabic script), Bengali (transcribed and in
Bengali script), Chinese (pinyin and characters), Russian and Ukrainian (Cyrillic), Greek,
Polish, Somali, Turkish and Yoruba.
"""

# ruff: noqa: RUF001 -- names in other scripts are the point here

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum

from services.referrals.domain.matching import NAME_VARIANTS, Identity, transposed
from shared.identity import normalise_name

POOLS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "english": (
        ("James", "Olivia", "Jack", "Amelia", "Emily", "Thomas", "Sophie", "George", "Grace"),
        ("Smith", "Jones", "Williams", "Brown", "Taylor", "Davies", "Evans", "Wilson", "Clarke"),
    ),
    "arabic": (
        ("Mohammed", "Ahmed", "Fatima", "Aisha", "Omar", "Khalid", "Layla", "Yusuf", "Mariam"),
        ("Haddad", "Khalil", "Mansour", "Nasser", "Saleh", "Hamdan", "Al-Sayed", "Abdullah"),
    ),
    "arabic script": (
        ("محمد", "أحمد", "فاطمة", "عائشة", "عمر", "خالد", "ليلى", "يوسف", "مريم"),
        ("الحداد", "خليل", "منصور", "ناصر", "صالح", "حمدان", "السيد", "عبدالله"),
    ),
    "bengali": (
        ("Rahim", "Karim", "Nusrat", "Taslima", "Shamim", "Farhana", "Sultana", "Jamal"),
        ("Begum", "Hussain", "Rahman", "Chowdhury", "Uddin", "Miah", "Islam", "Khatun"),
    ),
    "bengali script": (
        ("রহিম", "করিম", "নুসরাত", "তাসলিমা", "শামীম", "ফারহানা"),
        ("বেগম", "হোসেন", "রহমান", "চৌধুরী", "উদ্দিন", "মিয়া"),
    ),
    "chinese": (
        ("Wei", "Fang", "Jing", "Lei", "Yan", "Hui", "Ming", "Xiaoling", "Jun"),
        ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Zhou"),
    ),
    "chinese characters": (
        ("伟", "芳", "静", "磊", "燕", "慧", "明", "小玲"),
        ("王", "李", "张", "刘", "陈", "杨", "黄", "赵"),
    ),
    "cyrillic": (
        ("Иван", "Ольга", "Дмитрий", "Наталья", "Сергей", "Олена", "Андрій", "Татьяна"),
        ("Иванов", "Петрова", "Смирнов", "Кузнецова", "Шевченко", "Коваленко", "Попов"),
    ),
    "greek": (
        ("Γιώργος", "Μαρία", "Νίκος", "Ελένη", "Κώστας", "Σοφία", "Δημήτρης"),
        ("Παπαδόπουλος", "Νικολάου", "Γεωργίου", "Παπαδάκη", "Οικονόμου", "Βασιλείου"),
    ),
    "polish": (
        ("Katarzyna", "Małgorzata", "Wojciech", "Łukasz", "Agnieszka", "Piotr", "Zofia"),
        ("Nowak", "Kowalski", "Wiśniewska", "Wójcik", "Kamińska", "Lewandowski", "Zieliński"),
    ),
    "somali": (
        ("Abdi", "Hodan", "Faduma", "Mohamed", "Ayaan", "Hawa", "Abdirahman", "Sahra"),
        ("Warsame", "Farah", "Hassan", "Abdullahi", "Jama", "Osman", "Ali", "Omar"),
    ),
    "turkish": (
        ("Mehmet", "Ayşe", "Mustafa", "Emine", "Hüseyin", "Zeynep", "Elif", "Emre"),
        ("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Öztürk", "Aydın"),
    ),
    "yoruba": (
        ("Olusegun", "Oluwaseun", "Adebayo", "Folake", "Temitope", "Olumide", "Funmilayo"),
        ("Adeyemi", "Ogunleye", "Balogun", "Oladipo", "Afolabi", "Okafor", "Adewale"),
    ),
}

# East London outward codes and a few inward codes each: neighbours share postcodes.
DISTRICTS = ("E6", "E7", "E12", "E13", "E15", "E16", "E8", "E9", "E5", "N16", "N1", "E2")
INWARD = tuple(f"{d}{a}{b}" for d in "12345679" for a in "ABDEFGHJ" for b in "LNPQRSTU")


class Pattern(StrEnum):
    """The error a true match carries; the rates are assumptions (what caseworkers report
    and linkage studies find: typing slips and moves most common), documented so that
    recall is read per pattern, not only overall."""

    EXACT = "exact"
    FAMILY_TYPO = "family name typo"
    GIVEN_TYPO = "given name typo"
    SWAPPED = "given and family names swapped"
    DOUBLE_BARRELLED = "hyphenated or double-barrelled family name"
    VARIANT = "known name variant"
    TRANSPOSED_DOB = "day and month transposed"
    MISSING_DOB = "date of birth missing"
    MOVED = "moved: new postcode and UPRN"


RATES: dict[Pattern, float] = {
    Pattern.EXACT: 0.30,
    Pattern.FAMILY_TYPO: 0.10,
    Pattern.GIVEN_TYPO: 0.10,
    Pattern.SWAPPED: 0.05,
    Pattern.DOUBLE_BARRELLED: 0.05,
    Pattern.VARIANT: 0.08,
    Pattern.TRANSPOSED_DOB: 0.05,
    Pattern.MISSING_DOB: 0.10,
    Pattern.MOVED: 0.17,
}


class Different(StrEnum):
    """Kinds of true non-match."""

    RANDOM = "two people from the same name pools"
    TWINS = "twins: same family name, birth date and home"
    NAMESAKE_AT_HOME = "parent and child of the same name at one home"
    NEIGHBOURS = "born the same day, same postcode"
    NAMESAKES = "same name and birth date, elsewhere in the borough"
    HOUSEHOLD = "same family, home and phone, different person"


NON_MATCH_RATES: dict[Different, float] = {
    Different.RANDOM: 0.55,
    Different.TWINS: 0.10,
    Different.NAMESAKE_AT_HOME: 0.10,
    Different.NEIGHBOURS: 0.10,
    Different.NAMESAKES: 0.05,
    Different.HOUSEHOLD: 0.10,
}


@dataclass(frozen=True)
class Pair:
    new: Identity
    known: Identity
    same_person: bool
    kind: str  # a Pattern or a Different


class People:
    """Random residents (seeded: the same figures each run)."""

    def __init__(self, seed: int = 12) -> None:
        self.rng = random.Random(seed)
        self.pools = list(POOLS.values())
        self._serial = 0

    def _id(self) -> str:
        self._serial += 1
        return f"r{self._serial}"

    def dob(self) -> date:
        return date(1930, 1, 1) + timedelta(days=self.rng.randrange(365 * 90))

    def postcode(self) -> str:
        return f"{self.rng.choice(DISTRICTS)} {self.rng.choice(INWARD)}"

    def phone(self) -> str:
        return f"07{self.rng.randrange(10**9):09d}"

    def person(self, pool: int | None = None) -> Identity:
        given, family = self.pools[self.rng.randrange(len(self.pools)) if pool is None else pool]
        rng = self.rng
        return Identity(
            resident_id=self._id(),
            given_name=rng.choice(given),
            family_name=rng.choice(family),
            date_of_birth=self.dob(),
            postcode=self.postcode(),
            uprn=str(rng.randrange(10**11, 10**12)) if rng.random() < 0.6 else None,
            phone=self.phone() if rng.random() < 0.7 else None,
            email=f"{self._serial}@example.org" if rng.random() < 0.4 else None,
        )

    # -- errors ---------------------------------------------------------------------------

    def typo(self, name: str) -> str:
        """One slip of the keyboard: a letter changed, dropped, doubled, or two swapped."""
        letters = list(name)
        if len(normalise_name(name)) < 4:
            return name  # too short to tell a slip from another name: not generated
        rng = self.rng
        i = rng.randrange(1, len(letters) - 1)
        alphabet = string.ascii_lowercase if name.isascii() else "".join(set(name))
        kind = rng.choice(("change", "drop", "double", "swap"))
        if kind == "change":
            letters[i] = rng.choice([c for c in alphabet if c.lower() != letters[i].lower()])
        elif kind == "drop":
            del letters[i]
        elif kind == "double":
            letters.insert(i, letters[i])
        else:
            letters[i], letters[i + 1] = letters[i + 1], letters[i]
        return "".join(letters)

    def with_error(self, known: Identity, pattern: Pattern) -> Identity:
        rng = self.rng
        new = replace(known, resident_id=None)
        # A second referrer knows the phone and email less often than the first.
        new = replace(
            new,
            phone=known.phone if rng.random() < 0.5 else None,
            email=known.email if rng.random() < 0.3 else None,
            uprn=known.uprn if rng.random() < 0.5 else None,
        )
        if pattern is Pattern.FAMILY_TYPO:
            return replace(new, family_name=self.typo(known.family_name))
        if pattern is Pattern.GIVEN_TYPO:
            return replace(new, given_name=self.typo(known.given_name))
        if pattern is Pattern.SWAPPED:
            return replace(new, given_name=known.family_name, family_name=known.given_name)
        if pattern is Pattern.DOUBLE_BARRELLED:
            other = rng.choice(rng.choice(self.pools)[1])
            return replace(new, family_name=f"{known.family_name}-{other}")
        if pattern is Pattern.VARIANT:
            group = next((g for g in NAME_VARIANTS if known.given in g), frozenset())
            if not group:
                return new  # the name has no known variant (``known_for`` picks one that has)
            variant = rng.choice(sorted(group - {normalise_name(known.given_name)}))
            return replace(new, given_name=variant.capitalize())
        if pattern is Pattern.TRANSPOSED_DOB:
            swapped = transposed(known.date_of_birth) if known.date_of_birth else None
            return replace(new, date_of_birth=swapped or known.date_of_birth)
        if pattern is Pattern.MISSING_DOB:
            return replace(new, date_of_birth=None)
        if pattern is Pattern.MOVED:
            return replace(new, postcode=self.postcode(), uprn=None)
        return new

    def known_for(self, pattern: Pattern) -> Identity:
        """A resident the pattern can apply to (a name with a variant; a transposable date;
        names long enough for a slip)."""
        while True:
            known = self.person()
            if pattern is Pattern.VARIANT:
                names = [n for g in NAME_VARIANTS for n in g]
                known = replace(known, given_name=self.rng.choice(names).capitalize())
            if pattern is Pattern.TRANSPOSED_DOB and (
                known.date_of_birth is None or transposed(known.date_of_birth) is None
            ):
                continue
            if pattern is Pattern.FAMILY_TYPO and len(normalise_name(known.family_name)) < 4:
                continue
            if pattern is Pattern.GIVEN_TYPO and len(normalise_name(known.given_name)) < 4:
                continue
            return known

    def matches(self, count: int) -> Iterator[Pair]:
        patterns, weights = list(RATES), list(RATES.values())
        for pattern in self.rng.choices(patterns, weights, k=count):
            known = self.known_for(pattern)
            yield Pair(self.with_error(known, pattern), known, True, pattern.value)

    # -- different people -----------------------------------------------------------------

    def different(self, kind: Different) -> tuple[Identity, Identity]:
        rng = self.rng
        a = self.person()
        b = self.person()
        if kind is Different.TWINS:
            given = self.pools[rng.randrange(len(self.pools))][0]
            other = rng.choice([g for g in given if normalise_name(g) != a.given])
            b = replace(a, resident_id=self._id(), given_name=other)
        elif kind is Different.NAMESAKE_AT_HOME:
            b = replace(a, resident_id=self._id(), date_of_birth=self.dob())
        elif kind is Different.NEIGHBOURS:
            b = replace(b, date_of_birth=a.date_of_birth, postcode=a.postcode)
        elif kind is Different.NAMESAKES:
            b = replace(b, given_name=a.given_name, family_name=a.family_name)
            b = replace(b, date_of_birth=a.date_of_birth)
        elif kind is Different.HOUSEHOLD:
            b = replace(
                b,
                family_name=a.family_name,
                postcode=a.postcode,
                uprn=a.uprn,
                phone=a.phone,
            )
        return replace(a, resident_id=None), b

    def non_matches(self, count: int) -> Iterator[Pair]:
        kinds, weights = list(NON_MATCH_RATES), list(NON_MATCH_RATES.values())
        for kind in self.rng.choices(kinds, weights, k=count):
            new, known = self.different(kind)
            if (new.given, new.family, new.date_of_birth, new.postcode) == (
                known.given,
                known.family,
                known.date_of_birth,
                known.postcode,
            ):
                continue  # indistinguishable on these fields: no method could tell
            yield Pair(new, known, False, kind.value)


@dataclass
class Evaluation:
    """What matching made of the pairs: automatic attaches of different people (must be
    none), and per error pattern how many true matches were found (attached or listed)."""

    false_attaches: int = 0
    non_matches: int = 0
    false_possible: int = 0
    found: dict[str, int] | None = None
    attached: dict[str, int] | None = None
    total: dict[str, int] | None = None

    def recall(self, kind: str) -> float:
        assert self.found is not None and self.total is not None
        return self.found.get(kind, 0) / self.total[kind]


def evaluate(pairs: Iterator[Pair]) -> Evaluation:
    """Each pair through the candidate search's keys (:func:`shares_a_block`) and the
    comparison, as intake runs them."""
    from services.referrals.domain.matching import Certainty, compare, shares_a_block

    result = Evaluation(found={}, attached={}, total={})
    assert result.found is not None and result.attached is not None and result.total is not None
    for pair in pairs:
        match = compare(pair.new, pair.known) if shares_a_block(pair.new, pair.known) else None
        if pair.same_person:
            result.total[pair.kind] = result.total.get(pair.kind, 0) + 1
            if match is not None:
                result.found[pair.kind] = result.found.get(pair.kind, 0) + 1
                if match.certainty is Certainty.CERTAIN:
                    result.attached[pair.kind] = result.attached.get(pair.kind, 0) + 1
        else:
            result.non_matches += 1
            if match is not None and match.certainty is Certainty.CERTAIN:
                result.false_attaches += 1
            elif match is not None:
                result.false_possible += 1
    return result
