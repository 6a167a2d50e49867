"""Routing one need of a case to a partner service: a pure function over plain data.

Candidates must, in this order: meet the need; be active and not paused; cover the
resident's area (the council, or the postcode district); be eligible (age); speak the
resident's language or provide interpretation; be a kind of partner the resident consented
to (a consent case); hold a data-sharing agreement with the case's council that is in force
and covers the case (``agreement_problem``: the case's lawful basis, consent included; for
any basis but consent the agreement the case names; the need, the data categories sent,
special category data if the need is one); not have had this need already (a partner is
never offered it twice); have capacity.

Ranking (higher first), out of 100:
- specialism fit, 40: a service meeting fewer needs is more specialised (40 / needs met);
- capacity headroom, 30: the share of its capacity still free;
- language, 15: speaks the language (15), or interprets (5);
- past acceptance, 15: the share of its past offers it accepted (a newcomer counts as 0.5).
Ties are broken by service id, so the same directory always gives the same answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum

from shared.vocabulary import SENSITIVE_NEEDS, LawfulBasis, Need, PartnerKind


class DataCategory(StrEnum):
    """The categories of personal data a routing packet holds (the names are those of
    ``shared.audit.Category``): identity (first name, age), contact (one contact route,
    language, accessibility needs), needs (the needs, urgency and a short summary)."""

    IDENTITY = "identity"
    CONTACT = "contact"
    NEEDS = "needs"


# Every packet holds all three (domain.md: the least a partner needs to contact and help).
PACKET_CATEGORIES = frozenset(DataCategory)

# How an unroutable reason caused by agreements begins (the gap reason ``no_agreement``).
NO_AGREEMENT = "no agreement in force"


@dataclass(frozen=True)
class Agreement:
    """A data-sharing agreement between one council and one partner organisation: what it
    lets the council send that partner, and when. ``ends_on`` is the last day it covers;
    ``ended_at`` is when it was ended early (from that moment it covers nothing new)."""

    id: str
    reference: str
    council: str
    needs: frozenset[Need]
    data_categories: frozenset[str]
    special_category: bool
    lawful_bases: frozenset[LawfulBasis]
    starts_on: date
    ends_on: date | None = None
    ended_at: datetime | None = None

    def in_force(self, at: datetime, today: date) -> bool:
        return (
            self.starts_on <= today
            and (self.ends_on is None or today <= self.ends_on)
            and (self.ended_at is None or at < self.ended_at)
        )

    def why_not_in_force(self, at: datetime, today: date) -> str:
        if self.ended_at is not None and self.ended_at <= at:
            return f"ended early on {self.ended_at.date().isoformat()}"
        if today < self.starts_on:
            return f"starts on {self.starts_on.isoformat()}"
        return f"ended on {self.ends_on.isoformat() if self.ends_on else '?'}"


@dataclass(frozen=True)
class Candidate:
    service_id: str
    service_name: str
    organization_id: str
    organization_name: str
    organization_kind: PartnerKind
    active: bool
    paused: bool
    needs: frozenset[Need]
    councils: frozenset[str]
    districts: frozenset[str]
    minimum_age: int | None
    maximum_age: int | None
    languages: frozenset[str]
    interpretation: bool
    agreements: tuple[Agreement, ...]  # the organisation's, with every council
    capacity: int
    load: int
    offers_made: int = 0
    offers_accepted: int = 0


@dataclass(frozen=True)
class NeedToRoute:
    need: Need
    council: str
    district: str | None
    age: int | None
    language: str
    interpreter_needed: bool
    lawful_basis: LawfulBasis
    consent_kinds: frozenset[PartnerKind]
    at: datetime  # when it is routed: agreements in force then
    today: date  # the date then, in the council's time zone (agreement dates are days)
    excluded_organizations: frozenset[str] = frozenset()
    excluded_services: frozenset[str] = frozenset()
    agreement_reference: str | None = None  # the agreement the case names, if it names one

    @property
    def data_categories(self) -> frozenset[str]:
        """What the packet reveals."""
        return frozenset(c.value for c in PACKET_CATEGORIES)

    @property
    def special_category(self) -> bool:
        """A sensitive need is health or safeguarding data (UK GDPR Article 9)."""
        return self.need in SENSITIVE_NEEDS


def _basis_words(basis: LawfulBasis) -> str:
    return basis.value.replace("_", " ")


def covering_agreement(request: NeedToRoute, candidate: Candidate) -> Agreement | None:
    """The agreement with the case's council that lets this case go to the candidate's
    organisation (the latest to start, if several do), or None."""
    found = _covering(request, candidate)
    return found if isinstance(found, Agreement) else None


def agreement_problem(request: NeedToRoute, candidate: Candidate) -> str | None:
    """Which condition of its agreements with the council a candidate fails, in plain words
    (None: one covers the case). Conditions in order: an agreement with this council; in
    force now; covering the case's lawful basis (consent included); for a basis other than
    consent, being the agreement the case names (if it names one); covering the need; the
    data categories sent; special category data, when the need is one."""
    found = _covering(request, candidate)
    return None if isinstance(found, Agreement) else found


def _covering(request: NeedToRoute, candidate: Candidate) -> Agreement | str:
    council, need = request.council, _words(request.need)
    basis = request.lawful_basis
    mine = [a for a in candidate.agreements if a.council == council]
    if not mine:
        return f"has no data-sharing agreement with {council}"
    in_force = [a for a in mine if a.in_force(request.at, request.today)]
    if not in_force:
        latest = max(mine, key=lambda a: (a.starts_on, a.reference))
        return (
            f"its agreement with {council} ({latest.reference}) is not in force: "
            f"{latest.why_not_in_force(request.at, request.today)}"
        )
    remaining = in_force
    # Every case is held to its lawful basis, consent included: an agreement that does not
    # list consent does not let a consent case through.
    checks: list[tuple[Callable[[Agreement], bool], str]] = [
        (
            lambda a: basis in a.lawful_bases,
            f"its agreement with {council} does not cover {_basis_words(basis)}",
        )
    ]
    if basis is not LawfulBasis.CONSENT and request.agreement_reference:
        reference = request.agreement_reference
        checks.append(
            (
                lambda a: a.reference == reference,
                f"the case names agreement {reference}, which it does not hold with {council}",
            )
        )
    sent = ", ".join(sorted(request.data_categories))
    checks += [
        (lambda a: request.need in a.needs, f"its agreement with {council} does not cover {need}"),
        (
            lambda a: request.data_categories <= a.data_categories,
            f"its agreement with {council} does not cover the data sent ({sent})",
        ),
        (
            lambda a: a.special_category or not request.special_category,
            f"its agreement with {council} does not allow special category (health or "
            "safeguarding) data",
        ),
    ]
    for test, failed in checks:
        remaining = [a for a in remaining if test(a)]
        if not remaining:
            return failed
    return max(remaining, key=lambda a: (a.starts_on, a.reference))


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    score: float
    reasons: tuple[str, ...]
    agreement: Agreement | None = None  # the agreement with the council that allows it


@dataclass(frozen=True)
class Decision:
    ranked: tuple[Ranked, ...]
    excluded: dict[str, str] = field(default_factory=dict)  # service id -> why
    unroutable_reason: str | None = None
    # service id -> "service (organisation)", for the plain-words reasons (``why``)
    excluded_names: dict[str, str] = field(default_factory=dict, compare=False)
    # service id -> which condition failed, in plain words, where a step says more (the
    # agreement step names the condition of the agreement that failed)
    excluded_details: dict[str, str] = field(default_factory=dict, compare=False)
    # none chosen, but a service could take the need once it has room (a place frees, or
    # it resumes intake): the need waits for it instead of going back to the council
    full: bool = False

    @property
    def chosen(self) -> Ranked | None:
        return self.ranked[0] if self.ranked else None


def _words(need: Need) -> str:
    return need.value.replace("_", " ")


# Each filter: (name, test, reason shown when it excludes a service, sentence when none left).
def _filters(request: NeedToRoute) -> list[tuple[str, Callable[[Candidate], bool], str]]:
    need, where = _words(request.need), request.council
    consent_ok = (
        request.lawful_basis is not LawfulBasis.CONSENT
        or not request.consent_kinds
        or PartnerKind.ANY_VOLUNTARY in request.consent_kinds
    )
    return [
        ("need", lambda c: request.need in c.needs, f"no service meets the need for {need}"),
        (
            "active",
            lambda c: c.active and not c.paused,
            f"every {need} service is paused or inactive",
        ),
        (
            "area",
            lambda c: (
                request.council in c.councils
                or (request.district is not None and request.district in c.districts)
            ),
            f"no service covers {need} in {where}",
        ),
        (
            "eligibility",
            lambda c: (
                (request.age is None)
                or (
                    (c.minimum_age is None or request.age >= c.minimum_age)
                    and (c.maximum_age is None or request.age <= c.maximum_age)
                )
            ),
            f"no {need} service in {where} takes someone aged {request.age}",
        ),
        (
            "language",
            lambda c: (
                request.language in c.languages
                or c.interpretation
                or (request.language == "en" and not request.interpreter_needed and not c.languages)
            ),
            f"no {need} service in {where} speaks '{request.language}' or offers interpretation",
        ),
        (
            "consent",
            lambda c: consent_ok or c.organization_kind in request.consent_kinds,
            f"no {need} partner in {where} is of a kind the resident consented to",
        ),
        (
            "agreement",
            lambda c: agreement_problem(request, c) is None,
            f"{NO_AGREEMENT}: no {need} partner in {where} holds a data-sharing agreement "
            f"with {where} covering this case",
        ),
        (
            "not tried",
            lambda c: (
                c.organization_id not in request.excluded_organizations
                and c.service_id not in request.excluded_services
            ),
            f"every {need} partner in {where} has already been offered this case",
        ),
        (
            "capacity",
            lambda c: c.load < c.capacity,
            f"all {need} services in {where} are at capacity",
        ),
    ]


def _score(candidate: Candidate, request: NeedToRoute) -> Ranked:
    ranked = _rank(candidate, request)
    return replace(ranked, agreement=covering_agreement(request, candidate))


def _rank(candidate: Candidate, request: NeedToRoute) -> Ranked:
    specialism = 40 / max(1, len(candidate.needs))
    headroom = 30 * (candidate.capacity - candidate.load) / max(1, candidate.capacity)
    speaks = request.language in candidate.languages or (
        request.language == "en" and not candidate.languages
    )
    language = 15 if speaks else 5
    rate = (candidate.offers_accepted / candidate.offers_made) if candidate.offers_made else 0.5
    acceptance = 15 * rate
    reasons = (
        f"specialism {specialism:.1f} (meets {len(candidate.needs)} needs)",
        f"headroom {headroom:.1f} ({candidate.capacity - candidate.load} of "
        f"{candidate.capacity} free)",
        f"language {language} ({'speaks it' if speaks else 'interprets'})",
        f"acceptance {acceptance:.1f}",
    )
    return Ranked(candidate, round(specialism + headroom + language + acceptance, 3), reasons)


def route(request: NeedToRoute, candidates: Iterable[Candidate]) -> Decision:
    every = list(candidates)
    decision = _route(request, every)
    if decision.chosen is None and _route(request, [_with_room(c) for c in every]).chosen:
        return replace(decision, full=True)
    return decision


def _with_room(candidate: Candidate) -> Candidate:
    """The candidate as if it had a free place and were taking referrals (an active service
    that paused intake, or is full, will again)."""
    return replace(candidate, paused=False, capacity=max(candidate.capacity, candidate.load + 1))


def _route(request: NeedToRoute, candidates: Sequence[Candidate]) -> Decision:
    remaining: Sequence[Candidate] = candidates
    excluded: dict[str, str] = {}
    names: dict[str, str] = {}
    details: dict[str, str] = {}
    for name, test, sentence in _filters(request):
        kept = [c for c in remaining if test(c)]
        for candidate in remaining:
            if candidate not in kept:
                excluded[candidate.service_id] = name
                names[candidate.service_id] = (
                    f"{candidate.service_name} ({candidate.organization_name})"
                )
                if name == "agreement":
                    details[candidate.service_id] = agreement_problem(request, candidate) or ""
        if not kept:
            return Decision((), excluded, sentence, names, details)
        remaining = kept
    ranked = sorted(
        (_score(c, request) for c in remaining), key=lambda r: (-r.score, r.candidate.service_id)
    )
    return Decision(tuple(ranked), excluded, None, names, details)


# -- why this partner -----------------------------------------------------------------------

# What each filter checked, in plain words: passed by the chosen service, failed by those
# excluded at that step.
_PASSED = {
    "need": "meets the need",
    "active": "is open (not paused or inactive)",
    "area": "covers the resident's area",
    "eligibility": "takes someone of the resident's age",
    "language": "speaks the resident's language or offers interpretation",
    "consent": "is a kind of partner the case may be shared with",
    "agreement": "has a data-sharing agreement with the council, in force, covering this case",
    "not tried": "has not been offered this need before",
    "capacity": "has capacity",
}
_FAILED = {
    "need": "does not meet the need",
    "active": "is paused or inactive",
    "area": "does not cover the resident's area",
    "eligibility": "does not take someone of the resident's age",
    "language": "does not speak the resident's language or offer interpretation",
    "consent": "is not a kind of partner the resident consented to",
    "agreement": "has no data-sharing agreement with the council covering this case",
    "not tried": "has already been offered this need",
    "capacity": "is at capacity",
}


@dataclass(frozen=True)
class Why:
    """Why a need went to this partner, in plain words: the filters it passed, the ranking
    factors that put it first, and the other candidates and why they were not chosen. The
    first two are about the partner itself (shown to it); the last only to the council."""

    score: float
    passed: tuple[str, ...]
    ranking: tuple[str, ...]
    excluded: tuple[str, ...]


def why(decision: Decision) -> Why | None:
    """The reasons of a decision that chose a candidate (None if it chose none)."""
    chosen = decision.chosen
    if chosen is None:
        return None
    names = {r.candidate.service_id: r.candidate for r in decision.ranked}
    passed = tuple(
        _agreement_passed(chosen.agreement) if step == "agreement" else words
        for step, words in _PASSED.items()
    )
    ranking = (
        f"ranked first of {len(decision.ranked)} with {chosen.score:g} of 100",
        *chosen.reasons,
    )
    runners_up = tuple(
        f"{r.candidate.service_name} ({r.candidate.organization_name}): ranked lower, "
        f"{r.score:g} of 100"
        for r in decision.ranked[1:]
    )
    excluded = tuple(
        f"{decision.excluded_names.get(service_id, service_id)}: "
        f"{decision.excluded_details.get(service_id) or _FAILED.get(step, step)}"
        for service_id, step in sorted(decision.excluded.items())
        if service_id not in names
    )
    return Why(chosen.score, passed, ranking, runners_up + excluded)


def _agreement_passed(agreement: Agreement | None) -> str:
    if agreement is None:
        return _PASSED["agreement"]
    return (
        f"has data-sharing agreement {agreement.reference} with {agreement.council}, in force, "
        "covering this case"
    )
