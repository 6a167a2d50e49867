"""Routing one need of a case to a partner service: a pure function over plain data.

Candidates must, in this order: meet the need; be active and not paused; cover the
resident's area (the council, or the postcode district); be eligible (age); speak the
resident's language or provide interpretation; be allowed by the partner's data-sharing
agreement (lawful basis, data categories, and the kinds of partner the resident consented
to); have capacity; not have had this need already (a partner is never offered it twice).

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

from shared.vocabulary import SENSITIVE_NEEDS, LawfulBasis, Need, PartnerKind


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
    allowed_bases: frozenset[LawfulBasis]
    allowed_categories: frozenset[str]
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
    excluded_organizations: frozenset[str] = frozenset()
    excluded_services: frozenset[str] = frozenset()

    @property
    def data_categories(self) -> frozenset[str]:
        """What the packet reveals beyond contact details: a sensitive need is health or
        safeguarding data (UK GDPR Article 9)."""
        return frozenset({"special_category"}) if self.need in SENSITIVE_NEEDS else frozenset()


@dataclass(frozen=True)
class Ranked:
    candidate: Candidate
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    ranked: tuple[Ranked, ...]
    excluded: dict[str, str] = field(default_factory=dict)  # service id -> why
    unroutable_reason: str | None = None
    # service id -> "service (organisation)", for the plain-words reasons (``why``)
    excluded_names: dict[str, str] = field(default_factory=dict, compare=False)
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
            "agreement",
            lambda c: (
                request.lawful_basis in c.allowed_bases
                and request.data_categories <= c.allowed_categories
                and (consent_ok or c.organization_kind in request.consent_kinds)
            ),
            f"no {need} partner in {where} has a data-sharing agreement covering this case",
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
    for name, test, sentence in _filters(request):
        kept = [c for c in remaining if test(c)]
        for candidate in remaining:
            if candidate not in kept:
                excluded[candidate.service_id] = name
                names[candidate.service_id] = (
                    f"{candidate.service_name} ({candidate.organization_name})"
                )
        if not kept:
            return Decision((), excluded, sentence, names)
        remaining = kept
    ranked = sorted(
        (_score(c, request) for c in remaining), key=lambda r: (-r.score, r.candidate.service_id)
    )
    return Decision(tuple(ranked), excluded, None, names)


# -- why this partner -----------------------------------------------------------------------

# What each filter checked, in plain words: passed by the chosen service, failed by those
# excluded at that step.
_PASSED = {
    "need": "meets the need",
    "active": "is open (not paused or inactive)",
    "area": "covers the resident's area",
    "eligibility": "takes someone of the resident's age",
    "language": "speaks the resident's language or offers interpretation",
    "agreement": "has a data-sharing agreement covering this case",
    "not tried": "has not been offered this need before",
    "capacity": "has capacity",
}
_FAILED = {
    "need": "does not meet the need",
    "active": "is paused or inactive",
    "area": "does not cover the resident's area",
    "eligibility": "does not take someone of the resident's age",
    "language": "does not speak the resident's language or offer interpretation",
    "agreement": "has no data-sharing agreement covering this case",
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
    passed = tuple(_PASSED.values())
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
        f"{decision.excluded_names.get(service_id, service_id)}: {_FAILED.get(step, step)}"
        for service_id, step in sorted(decision.excluded.items())
        if service_id not in names
    )
    return Why(chosen.score, passed, ranking, runners_up + excluded)
