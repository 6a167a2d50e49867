"""The outcome measures, as plain Python over the facts of the reporting model (the
``reporting_*`` tables the ``referrals-reporting`` consumer group writes from events).

Facts carry pseudonymous references only (``case_ref``, ``resident_ref``: keyed hashes,
``service_layer/reporting.py``) and coarse attributes: council, age band, language,
postcode district, needs, partner, times. Nothing here can name a resident.

Cohorts: a report for a period counts the cases opened (referrals received, residents
flagged) in the period, and follows what happened to them whenever it happened; partner load
counts the offers open in the period's weeks (made at most a year before it). Days, weeks
and months are Europe/London's (a London council's), whatever the offset of the times.
Durations are in hours.

Each measure is linear or n log n in the facts: everything is grouped once, never rescanned
per case, week or partner.

Median and 90th percentile: linear interpolation between the closest ranks (Hyndman and
Fan's type 7: numpy's default, Excel's PERCENTILE.INC); none of an empty set.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from services.referrals.domain.needs import MET_OUTCOMES
from shared.clock import LONDON
from shared.vocabulary import Outcome, RiskLevel

UNKNOWN = "unknown"
REPEAT_WINDOW = timedelta(days=90)
# How long after a period a flag still counts as a resident flagged again after help (the
# rule evaluation's follow-up): later ones belong to a later period's figures.
REFLAG_FOLLOW_UP = timedelta(days=90)
# Upper bounds (inclusive) of each age band but the last.
AGE_BANDS: tuple[tuple[str, int | None], ...] = (
    ("0-17", 17),
    ("18-24", 24),
    ("25-34", 34),
    ("35-49", 49),
    ("50-64", 64),
    ("65+", None),
)


def age_band(age_years: int | None) -> str:
    """The band of an age in years; ``unknown`` when the age is not known."""
    if age_years is None or age_years < 0:
        return UNKNOWN
    for band, upper in AGE_BANDS:
        if upper is None or age_years <= upper:
            return band
    return UNKNOWN  # pragma: no cover - the last band has no upper bound


def quantile(values: Iterable[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks (type 7)."""
    if not 0 <= q <= 1:
        raise ValueError("q is between 0 and 1")
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * q
    lower, upper = math.floor(position), math.ceil(position)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def median(values: Iterable[float]) -> float | None:
    return quantile(values, 0.5)


def is_positive(outcome: str | None) -> bool:
    """Help arrived: support provided or the need partly resolved (as the risk service's
    returning window and the needs' ``met`` status count it)."""
    return outcome is not None and Outcome(outcome) in MET_OUTCOMES


def local_day(at: datetime) -> date:
    """The London day of a time (the council's day, not UTC's)."""
    return at.astimezone(LONDON).date()


def _hours(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 3600


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


# -- facts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFact:
    ref: str
    council: str
    origin: str | None  # referral or flag
    opened_at: datetime
    resident_ref: str | None = None
    needs: tuple[str, ...] = ()
    age_band: str | None = None
    language: str | None = None
    area: str | None = None
    ready_at: datetime | None = None  # first ready for routing: consent obtained (or basis)
    closed_at: datetime | None = None
    flag_ref: str | None = None  # an outreach case: the flag it was opened for
    outcome: str | None = None  # the outcome it closed with
    withdrawn: bool = False  # closed as withdrawn
    consent_withdrawn_at: datetime | None = None  # the latest time sharing stopped
    flag_needs: tuple[str, ...] | None = None  # an outreach case: its flag's suggested needs

    @property
    def origin_or_referral(self) -> str:
        # A row made from a referral before its case-opened event arrived has no origin yet.
        return self.origin or "referral"


@dataclass(frozen=True)
class OfferFact:
    ref: str
    case_ref: str
    need: str
    partner_id: str
    offered_at: datetime | None = None
    accepted_at: datetime | None = None
    declined_at: datetime | None = None
    decline_reason: str | None = None
    expired_at: datetime | None = None
    withdrawn_at: datetime | None = None
    outcome: str | None = None
    outcome_at: datetime | None = None
    area: str | None = None  # partner load only: the case's area

    @property
    def ended_at(self) -> datetime | None:
        """When the offer stopped being in a partner's hands (declined, expired, withdrawn,
        or its outcome recorded)."""
        ends = [
            t for t in (self.declined_at, self.expired_at, self.withdrawn_at, self.outcome_at) if t
        ]
        return min(ends) if ends else None


@dataclass(frozen=True)
class NeedFact:
    case_ref: str
    need: str
    unroutable_at: datetime | None = None
    waiting_since: datetime | None = None


@dataclass(frozen=True)
class ReferralFact:
    ref: str
    case_ref: str
    received_at: datetime
    resident_ref: str | None = None
    source: str | None = None
    needs: tuple[str, ...] = ()
    area: str | None = None  # its case's postcode district (the area filter's)


@dataclass(frozen=True)
class FlagFact:
    ref: str
    resident_ref: str
    flagged_at: datetime
    level: str
    ruleset_version: str
    rule_ids: tuple[str, ...] = ()
    returning: bool = False
    needs: tuple[str, ...] = ()
    age_band: str | None = None
    area: str | None = None


@dataclass(frozen=True)
class AssessmentFact:
    case_ref: str
    assessed_at: datetime
    level: str
    ruleset_version: str
    rule_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class DryRunRuleFact:
    rule_id: str
    in_force: int  # residents the rule fires for under the ruleset in force
    candidate: int  # ... and under the candidate


@dataclass(frozen=True)
class DryRunFact:
    """The latest dry run of a candidate ruleset for the council (risk's
    ``risk.ruleset.dry_run_completed``): over every stored profile of the council then,
    whatever a report's period, area or need."""

    candidate_version: str
    in_force_version: str
    ran_at: datetime
    residents: int
    residents_changing_level: int
    levels_in_force: Mapping[str, int] = field(default_factory=dict)
    levels_candidate: Mapping[str, int] = field(default_factory=dict)
    rules: tuple[DryRunRuleFact, ...] = ()


@dataclass(frozen=True)
class CapacityFact:
    """A partner service's capacity from ``at`` on (partners'
    ``partners.service.capacity_changed``): open offers and active referrals it takes at once."""

    service_id: str
    partner_id: str
    at: datetime
    capacity: int
    paused: bool = False  # intake paused: it takes nothing new, so none of it is in force
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Facts:
    """What the reporting model holds for one council and period (``adapters/reporting``)."""

    period_from: date
    period_to: date
    cases: Sequence[CaseFact] = ()
    offers: Sequence[OfferFact] = ()
    needs: Sequence[NeedFact] = ()
    referrals: Sequence[ReferralFact] = ()  # from 90 days before the period: repeats
    # From the period's start to REFLAG_FOLLOW_UP after its end: later returning flags.
    flags: Sequence[FlagFact] = ()
    assessments: Sequence[AssessmentFact] = ()
    load: Sequence[OfferFact] = ()  # the council's offers open in the period (made < 1 year before)
    # Every capacity change, by the period's end, of the services of the partners in ``load``.
    capacity: Sequence[CapacityFact] = ()
    # The latest dry run of each recent candidate ruleset, run by the period's end: newest first.
    dry_runs: Sequence[DryRunFact] = ()

    def in_period(self, at: datetime) -> bool:
        return self.period_from <= local_day(at) <= self.period_to


@dataclass(frozen=True)
class Filters:
    area: str | None = None  # postcode district
    need: str | None = None


def _area_matches(area: str | None, wanted: str | None) -> bool:
    return wanted is None or (area or "").upper() == wanted.upper()


def _with_flag(case: CaseFact, flags_by_ref: dict[str, FlagFact]) -> CaseFact:
    """An outreach case not yet routed knows its needs, age band and area from its flag
    only (the packet brings them when it is routed); the flag's own needs are kept apart
    (what the data signal referred, whatever referral joined the case since)."""
    flag = flags_by_ref.get(case.flag_ref or "")
    if flag is None:
        return case
    return replace(
        case,
        needs=case.needs or flag.needs,
        age_band=case.age_band or flag.age_band,
        area=case.area or flag.area,
        flag_needs=flag.needs,
    )


def filtered(facts: Facts, filters: Filters) -> Facts:
    """The facts of the cases (and flags) in the area with the need, outreach cases
    completed from their flags. Under a need filter only that need counts: the other needs
    of a case or referral, and their offers, drop out. A referral is in the area of its
    case (whenever the case opened), so the areas' figures add up to the council's."""
    flags_by_ref = {f.ref: f for f in facts.flags}
    wanted = filters.need

    def need_ok(need: str) -> bool:
        return wanted is None or need == wanted

    def only_wanted(needs: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(n for n in needs if need_ok(n))

    cases = [
        replace(
            c,
            needs=only_wanted(c.needs),
            flag_needs=None if c.flag_needs is None else only_wanted(c.flag_needs),
        )
        for c in (_with_flag(c, flags_by_ref) for c in facts.cases)
        if _area_matches(c.area, filters.area) and (wanted is None or wanted in c.needs)
    ]
    kept = {c.ref for c in cases}
    return replace(
        facts,
        cases=cases,
        offers=[o for o in facts.offers if o.case_ref in kept and need_ok(o.need)],
        needs=[n for n in facts.needs if n.case_ref in kept and need_ok(n.need)],
        referrals=[
            replace(r, needs=only_wanted(r.needs))
            for r in facts.referrals
            if _area_matches(r.area, filters.area) and (wanted is None or wanted in r.needs)
        ],
        flags=[
            replace(f, needs=only_wanted(f.needs))
            for f in facts.flags
            if _area_matches(f.area, filters.area) and (wanted is None or wanted in f.needs)
        ],
        assessments=[a for a in facts.assessments if a.case_ref in kept],
        load=[o for o in facts.load if _area_matches(o.area, filters.area) and need_ok(o.need)],
        capacity=_capacity_for_need(facts.capacity, wanted),
    )


def _capacity_for_need(history: Sequence[CapacityFact], need: str | None) -> list[CapacityFact]:
    """Under a need filter, the capacity of the services that meet the need (at any time):
    while a service does not meet it, none of its capacity counts. A service's capacity is
    not by area: the area filter leaves it whole."""
    if need is None:
        return list(history)
    meeting = {c.service_id for c in history if need in c.needs}
    return [
        c if need in c.needs else replace(c, capacity=0) for c in history if c.service_id in meeting
    ]


# -- what happened to each case ----------------------------------------------------------


@dataclass(frozen=True)
class CaseCourse:
    """A case's milestones: first offer, first acceptance, first outcome, first help."""

    case: CaseFact
    offers: tuple[OfferFact, ...]
    first_offer_at: datetime | None
    first_accepted_at: datetime | None
    first_outcome_at: datetime | None
    helped_at: datetime | None


def _first(times: Iterable[datetime | None]) -> datetime | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


def courses(facts: Facts) -> list[CaseCourse]:
    by_case: dict[str, list[OfferFact]] = defaultdict(list)
    for offer in facts.offers:
        by_case[offer.case_ref].append(offer)
    result = []
    for case in facts.cases:
        if not facts.in_period(case.opened_at):
            continue
        offers = tuple(by_case.get(case.ref, ()))
        result.append(
            CaseCourse(
                case=case,
                offers=offers,
                first_offer_at=_first(o.offered_at for o in offers),
                first_accepted_at=_first(o.accepted_at for o in offers),
                first_outcome_at=_first(o.outcome_at for o in offers),
                helped_at=_first(o.outcome_at for o in offers if is_positive(o.outcome)),
            )
        )
    return result


# -- the outcome measures --------------------------------------------------------------


@dataclass(frozen=True)
class SourceNeedCount:
    source: str  # the referring organisation's kind, or ``flag`` for outreach
    need: str
    referral_needs: int  # referrals naming the need (a referral of two needs counts in two rows)


@dataclass(frozen=True)
class SourceCount:
    source: str
    referrals: int  # distinct referrals (outreach: cases opened from a flag)


@dataclass(frozen=True)
class DurationMeasure:
    # time_to_first_offer (and split by the case's origin: _from_referral, _from_flag),
    # time_to_acceptance, time_to_outcome
    measure: str
    cohort: int  # cases opened in the period (of that origin)
    cases: int  # cases that reached the milestone: the median and p90 are of these
    not_yet_reached: int  # still open, milestone not reached: the medians cannot see them yet
    closed_without: int  # closed (or withdrawn) without reaching it
    median_hours: float | None
    p90_hours: float | None


@dataclass(frozen=True)
class OfferResponseCount:
    response: str  # accepted, declined, expired, withdrawn, open
    reason: str  # the decline reason; empty otherwise
    offers: int


@dataclass(frozen=True)
class OutcomeCount:
    need: str
    partner_id: str
    outcome: str
    offers: int


NEED_STATES = ("met", "not_met", "unroutable", "waiting", "in_progress", "closed", "withdrawn")


@dataclass(frozen=True)
class AreaNeeds:
    area: str
    met: int
    not_met: int
    unroutable: int
    waiting: int
    in_progress: int
    closed: int  # the case closed before the need had an outcome
    withdrawn: int  # the case withdrawn before the need had an outcome


@dataclass(frozen=True)
class RepeatReferrals:
    referrals: int
    residents: int
    repeat_within_90_days: int
    share: float | None


@dataclass(frozen=True)
class PartnerWeek:
    week_starting: date
    partner_id: str
    offered: int
    accepted: int
    open_at_week_end: int  # offered, not yet accepted or ended
    in_hand_at_week_end: int  # accepted, no outcome yet
    # The sum over the partner's services of the capacity in force at the week's end (a
    # paused one's: 0); None while none of its services' capacity is known.
    capacity: int | None = None


@dataclass(frozen=True)
class OutcomesReport:
    council: str
    period_from: date
    period_to: date
    area: str | None
    need: str | None
    referrals_by_source_and_need: list[SourceNeedCount] = field(default_factory=list)
    referrals_by_source: list[SourceCount] = field(default_factory=list)
    durations: list[DurationMeasure] = field(default_factory=list)
    offer_responses: list[OfferResponseCount] = field(default_factory=list)
    outcomes_by_need_and_partner: list[OutcomeCount] = field(default_factory=list)
    needs_by_area: list[AreaNeeds] = field(default_factory=list)
    repeat_referrals: list[RepeatReferrals] = field(default_factory=list)
    partner_load: list[PartnerWeek] = field(default_factory=list)


def _outreach_needs(case: CaseFact) -> tuple[str, ...]:
    """What an outreach case was referred for: its flag's needs (a referral that joined the
    case since counts as that referral), or the case's if the flag is not known."""
    return case.flag_needs if case.flag_needs is not None else case.needs


def _outreach_in_period(facts: Facts) -> list[CaseFact]:
    return [c for c in facts.cases if c.origin == "flag" and facts.in_period(c.opened_at)]


def referrals_by_source_and_need(facts: Facts) -> list[SourceNeedCount]:
    """Referrals received in the period, one per need they name, by referrer kind; an
    outreach case opened from a flag counts as a referral of source ``flag`` for the needs
    its flag suggested."""
    counts = Counter((s, n) for s, n, _ in _referral_need_units(facts))
    return [SourceNeedCount(s, n, c) for (s, n), c in sorted(counts.items())]


def _person(resident_ref: str | None, case_ref: str) -> str:
    """Who a counted unit is about, to count people: the resident's pseudonymous reference,
    or, where none is known, the case's (a case is one resident's)."""
    return resident_ref or case_ref


def _referral_need_units(facts: Facts) -> Iterator[tuple[str, str, str]]:
    """(source, need, person) for each need of each referral ``referrals_by_source_and_need``
    counts."""
    for referral in facts.referrals:
        if facts.in_period(referral.received_at):
            for need in referral.needs:
                person = _person(referral.resident_ref, referral.case_ref)
                yield referral.source or UNKNOWN, need, person
    for case in _outreach_in_period(facts):
        for need in _outreach_needs(case):
            yield "flag", need, _person(case.resident_ref, case.ref)


def referrals_by_source(facts: Facts, need: str | None = None) -> list[SourceCount]:
    """Distinct referrals received in the period by referrer kind (outreach cases opened
    from a flag as ``flag``), each once however many needs it names; under a need filter
    (``need``) those naming it, an outreach case if its flag did."""
    counts: Counter[str] = Counter(
        r.source or UNKNOWN for r in facts.referrals if facts.in_period(r.received_at)
    )
    for case in _outreach_in_period(facts):
        if need is None or need in _outreach_needs(case):
            counts["flag"] += 1
    return [SourceCount(s, n) for s, n in sorted(counts.items())]


def _is_closed(case: CaseFact) -> bool:
    return case.closed_at is not None or case.withdrawn


def _duration(
    name: str,
    cohort: Sequence[CaseCourse],
    milestone: Callable[[CaseCourse], datetime | None],
) -> DurationMeasure:
    hours: list[float] = []
    not_yet = closed_without = 0
    for course in cohort:
        at = milestone(course)
        if at is not None:
            hours.append(_hours(course.case.opened_at, at))
        elif _is_closed(course.case):
            closed_without += 1
        else:
            not_yet += 1
    return DurationMeasure(
        measure=name,
        cohort=len(cohort),
        cases=len(hours),
        not_yet_reached=not_yet,
        closed_without=closed_without,
        median_hours=_rounded(median(hours)),
        p90_hours=_rounded(quantile(hours, 0.9)),
    )


def durations(course_list: Sequence[CaseCourse]) -> list[DurationMeasure]:
    """From the case opening to its first offer (all cases, then referred and outreach
    cases apart: an outreach case waits for consent first), first acceptance and first
    outcome. Each says its cohort and how many have not reached the milestone (yet), since
    a median of the cases that did hides the ones still waiting."""

    def first_offer(c: CaseCourse) -> datetime | None:
        return c.first_offer_at

    by_origin: dict[str, list[CaseCourse]] = defaultdict(list)
    for course in course_list:
        by_origin[course.case.origin_or_referral].append(course)
    return [
        _duration("time_to_first_offer", course_list, first_offer),
        _duration("time_to_first_offer_from_referral", by_origin["referral"], first_offer),
        _duration("time_to_first_offer_from_flag", by_origin["flag"], first_offer),
        _duration("time_to_acceptance", course_list, lambda c: c.first_accepted_at),
        _duration("time_to_outcome", course_list, lambda c: c.first_outcome_at),
    ]


def offer_responses(course_list: Sequence[CaseCourse]) -> list[OfferResponseCount]:
    """Each offer once, by where it ended: accepted (whatever came after), declined (by
    reason), expired, withdrawn before a response, or still open."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for course in course_list:
        for offer in course.offers:
            if offer.accepted_at is not None:
                counts[("accepted", "")] += 1
            elif offer.declined_at is not None:
                counts[("declined", offer.decline_reason or UNKNOWN)] += 1
            elif offer.expired_at is not None:
                counts[("expired", "")] += 1
            elif offer.withdrawn_at is not None:
                counts[("withdrawn", "")] += 1
            elif offer.offered_at is not None:
                counts[("open", "")] += 1
    return [OfferResponseCount(r, why, n) for (r, why), n in sorted(counts.items())]


def outcomes_by_need_and_partner(course_list: Sequence[CaseCourse]) -> list[OutcomeCount]:
    counts = Counter((n, p, o) for n, p, o, _ in _outcome_units(course_list))
    return [OutcomeCount(n, p, o, c) for (n, p, o), c in sorted(counts.items())]


def _outcome_units(course_list: Sequence[CaseCourse]) -> Iterator[tuple[str, str, str, str]]:
    """(need, partner, outcome, person) for each offer with an outcome."""
    for course in course_list:
        person = _person(course.case.resident_ref, course.case.ref)
        for offer in course.offers:
            if offer.outcome is not None:
                yield offer.need, offer.partner_id, offer.outcome, person


def need_state(
    need: str, offers: Sequence[OfferFact], fact: NeedFact | None, case: CaseFact | None = None
) -> str:
    """Where one need of a case stands, as the live model's need status would put it
    (docs/referrals.md, Needs one by one): ``met`` (a positive outcome); once the case is
    closed or withdrawn, ``not_met`` (outcomes, none positive), else ``withdrawn`` or
    ``closed``; on an open case ``waiting`` for a place or ``unroutable``, whichever episode
    is the latest (since its last offer, if any), ``not_met`` (outcomes, none positive, none
    pending), else ``in_progress``. Consent withdrawn (or expired) and not offered since:
    partners hold nothing of it, so their earlier offers and episodes no longer count (it
    waits for consent: ``in_progress``). A time equal to the one it is compared with (an
    erased case's, kept to the day) counts as after it."""
    mine = [o for o in offers if o.need == need]
    if any(is_positive(o.outcome) for o in mine):
        return "met"
    has_outcome = any(o.outcome is not None for o in mine)
    if case is not None and _is_closed(case):
        if has_outcome:
            return "not_met"
        return "withdrawn" if case.withdrawn else "closed"
    last_offer = _latest(o.offered_at for o in mine)
    # Consent withdrawn: the partners withdrew what they held; offers made since still count.
    cut = case.consent_withdrawn_at if case is not None else None
    pending = any(
        o.offered_at is not None and o.ended_at is None and (cut is None or o.offered_at > cut)
        for o in mine
    )
    since = _latest((last_offer, cut))
    if fact is not None and not pending:
        episodes = [
            (at, state)
            for at, state in ((fact.waiting_since, "waiting"), (fact.unroutable_at, "unroutable"))
            if at is not None and (since is None or at >= since)
        ]
        if episodes:
            # The later episode is where the need is now (a tie: waiting, the kinder guess).
            return max(episodes, key=lambda e: (e[0], e[1] == "waiting"))[1]
    if has_outcome and not pending:
        return "not_met"
    return "in_progress"


def _latest(times: Iterable[datetime | None]) -> datetime | None:
    present = [t for t in times if t is not None]
    return max(present) if present else None


def _need_state_units(
    facts: Facts, course_list: Sequence[CaseCourse]
) -> Iterator[tuple[str, str, str]]:
    """(area, state, person) for each need of each case ``needs_by_area`` counts."""
    need_facts: dict[str, dict[str, NeedFact]] = defaultdict(dict)
    for fact in facts.needs:
        need_facts[fact.case_ref][fact.need] = fact
    for course in course_list:
        area = course.case.area or UNKNOWN
        person = _person(course.case.resident_ref, course.case.ref)
        mine = need_facts.get(course.case.ref, {})
        needs = set(course.case.needs) | {o.need for o in course.offers} | set(mine)
        for need in sorted(needs):
            yield area, need_state(need, course.offers, mine.get(need), course.case), person


def needs_by_area(facts: Facts, course_list: Sequence[CaseCourse]) -> list[AreaNeeds]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for area, state, _ in _need_state_units(facts, course_list):
        counts[area][state] += 1
    return [
        AreaNeeds(
            area=area,
            met=c["met"],
            not_met=c["not_met"],
            unroutable=c["unroutable"],
            waiting=c["waiting"],
            in_progress=c["in_progress"],
            closed=c["closed"],
            withdrawn=c["withdrawn"],
        )
        for area, c in sorted(counts.items())
    ]


def repeat_referrals(
    facts: Facts, history: Sequence[ReferralFact] | None = None
) -> RepeatReferrals:
    """Referrals received in the period whose resident had another referral in the 90 days
    before (the resident by their pseudonymous reference). The earlier referral is looked
    for among ``history`` (default: the facts' own referrals): the council's, whatever
    their area or need, so a filtered figure is the part of the council's that matches.
    Two of one time (an erased resident's, kept to the day) count the second one by
    reference as the repeat."""
    by_resident: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for referral in facts.referrals if history is None else history:
        if referral.resident_ref:
            by_resident[referral.resident_ref].append((referral.received_at, referral.ref))
    for earlier in by_resident.values():
        earlier.sort()
    in_period = [r for r in facts.referrals if facts.in_period(r.received_at)]
    repeats = 0
    for r in in_period:
        if not r.resident_ref:
            continue
        earlier = by_resident[r.resident_ref]
        # The resident's referrals before this one (by time, then reference) ...
        before = bisect_left(earlier, (r.received_at, r.ref))
        # ... the latest of which is within the window.
        if before and earlier[before - 1][0] >= r.received_at - REPEAT_WINDOW:
            repeats += 1
    residents = len({r.resident_ref or r.ref for r in in_period})
    return RepeatReferrals(len(in_period), residents, repeats, _share(repeats, len(in_period)))


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def capacity_at(
    history: Iterable[CapacityFact], ends: Sequence[date]
) -> dict[str, list[int | None]]:
    """Per partner, the capacity in force at the end of each day of ``ends`` (ascending,
    London days): the sum over its services of each one's latest capacity set by that day's
    end, a paused service's 0; None at the days before any of its services' is known.

    Each change lands on the first end on or after its day, as the difference from the
    service's previous figure (a difference array per partner, summed once): n log n."""
    count = len(ends)
    by_service: dict[str, list[CapacityFact]] = defaultdict(list)
    for change in history:
        by_service[change.service_id].append(change)
    deltas: dict[str, list[int]] = defaultdict(lambda: [0] * (count + 1))
    known_from: dict[str, int] = {}
    for changes in by_service.values():
        changes.sort(key=lambda c: c.at)
        previous = 0
        for change in changes:
            index = bisect_left(ends, local_day(change.at))
            in_force = 0 if change.paused else change.capacity
            partner = change.partner_id
            deltas[partner][index] += in_force - previous
            previous = in_force
            known_from[partner] = min(known_from.get(partner, count), index)
    result: dict[str, list[int | None]] = {}
    for partner, partner_deltas in deltas.items():
        total, figures = 0, []
        for i in range(count):
            total += partner_deltas[i]
            figures.append(total if i >= known_from[partner] else None)
        result[partner] = figures
    return result


def partner_load(facts: Facts) -> list[PartnerWeek]:
    """Per partner and week (Monday to Sunday, London days) of the period: offers made and
    accepted in the week, and those open (not yet accepted) or in hand (accepted, no
    outcome yet) at the week's end. The first and last weeks are clamped to the period:
    they count its days only, and the last ends with the period.

    One pass over the offers: each adds to its week's made and accepted counts and, for
    the run of weeks it is open or in hand at the end of, a start and a stop (a difference
    array summed once per partner)."""
    week_starts: list[date] = []
    week = _monday(facts.period_from)
    while week <= facts.period_to:
        week_starts.append(week)
        week += timedelta(days=7)
    if not week_starts:
        return []
    ends = [min(w + timedelta(days=6), facts.period_to) for w in week_starts]
    count = len(week_starts)

    def week_of(day: date) -> int | None:
        """The index of the week a day of the period is in."""
        if not facts.period_from <= day <= facts.period_to:
            return None
        return bisect_left(ends, day)

    def first_end_on_or_after(day: date) -> int:
        return bisect_left(ends, day)

    @dataclass
    class Tally:
        made: list[int] = field(default_factory=lambda: [0] * count)
        accepted: list[int] = field(default_factory=lambda: [0] * count)
        open_: list[int] = field(default_factory=lambda: [0] * (count + 1))
        in_hand: list[int] = field(default_factory=lambda: [0] * (count + 1))

    def mark(deltas: list[int], start: date, stop: date | None) -> None:
        """+1 on the weeks whose end is on or after ``start`` and before ``stop``."""
        first = first_end_on_or_after(start)
        last = count if stop is None else first_end_on_or_after(stop)
        if first < last:
            deltas[first] += 1
            deltas[last] -= 1

    tallies: dict[str, Tally] = defaultdict(Tally)
    for offer in facts.load:
        tally = tallies[offer.partner_id]
        offered = local_day(offer.offered_at) if offer.offered_at else None
        accepted = local_day(offer.accepted_at) if offer.accepted_at else None
        ended = local_day(offer.ended_at) if offer.ended_at else None
        if offered is not None and (i := week_of(offered)) is not None:
            tally.made[i] += 1
        if accepted is not None and (i := week_of(accepted)) is not None:
            tally.accepted[i] += 1
        if offered is None:
            continue
        open_stop = min((d for d in (accepted, ended) if d is not None), default=None)
        mark(tally.open_, offered, open_stop)
        if accepted is not None:
            mark(tally.in_hand, max(offered, accepted), ended)

    capacity = capacity_at(facts.capacity, ends)
    unknown: list[int | None] = [None] * count
    result = []
    for partner in sorted(tallies):
        tally = tallies[partner]
        in_force = capacity.get(partner, unknown)
        open_ = in_hand = 0
        for i, week_starting in enumerate(week_starts):
            open_ += tally.open_[i]
            in_hand += tally.in_hand[i]
            made, accepted_ = tally.made[i], tally.accepted[i]
            if made or accepted_ or open_ or in_hand:
                result.append(
                    PartnerWeek(
                        week_starting, partner, made, accepted_, open_, in_hand, in_force[i]
                    )
                )
    result.sort(key=lambda w: (w.week_starting, w.partner_id))
    return result


def outcomes_report(council: str, facts: Facts, filters: Filters) -> OutcomesReport:
    chosen = filtered(facts, filters)
    course_list = courses(chosen)
    return OutcomesReport(
        council=council,
        period_from=facts.period_from,
        period_to=facts.period_to,
        area=filters.area,
        need=filters.need,
        referrals_by_source_and_need=referrals_by_source_and_need(chosen),
        referrals_by_source=referrals_by_source(chosen, filters.need),
        durations=durations(course_list),
        offer_responses=offer_responses(course_list),
        outcomes_by_need_and_partner=outcomes_by_need_and_partner(course_list),
        needs_by_area=needs_by_area(chosen, course_list),
        repeat_referrals=[repeat_referrals(chosen, facts.referrals)],
        partner_load=partner_load(chosen),
    )


@dataclass(frozen=True)
class CellResidents:
    """Who is behind the counts of the open statistics' tables: for each count of an
    outcome report's ``referrals_by_source_and_need``, ``needs_by_area`` and
    ``outcomes_by_need_and_partner``, the distinct residents (pseudonymous references, or a
    case's where its resident is not known) its units are about. For the disclosure
    control's threshold, which counts people; never shown."""

    referral_needs: dict[tuple[str, str], frozenset[str]]  # by (source, need)
    needs_by_area: dict[tuple[str, str], frozenset[str]]  # by (area, state)
    outcomes: dict[tuple[str, str, str], frozenset[str]]  # by (need, partner, outcome)


def _residents_by_key(units: Iterable[tuple[str, ...]]) -> dict[tuple[str, ...], frozenset[str]]:
    found: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for *key, person in units:
        found[tuple(key)].add(person)
    return {key: frozenset(people) for key, people in found.items()}


def cell_residents(facts: Facts, filters: Filters) -> CellResidents:
    """The residents behind ``outcomes_report``'s counts of the same facts and filters."""
    chosen = filtered(facts, filters)
    course_list = courses(chosen)
    referral_needs = _residents_by_key(_referral_need_units(chosen))
    areas = _residents_by_key(_need_state_units(chosen, course_list))
    outcomes = _residents_by_key(_outcome_units(course_list))
    return CellResidents(
        referral_needs={(s, n): p for (s, n), p in referral_needs.items()},
        needs_by_area={(a, state): p for (a, state), p in areas.items()},
        outcomes={(n, partner, o): p for (n, partner, o), p in outcomes.items()},
    )


# -- rule evaluation ---------------------------------------------------------------------


@dataclass(frozen=True)
class RuleMeasure:
    ruleset_version: str
    rule_id: str
    residents_flagged: int
    outreach_cases_opened: int
    consent_obtained: int  # the case became ready for routing
    routed: int  # offered to a partner
    positive_outcome: int
    flag_to_help_median_hours: float | None
    flag_to_help_p90_hours: float | None
    residents_reflagged_after_help: int
    share_reflagged_after_help: float | None  # of the residents flagged


@dataclass(frozen=True)
class AssessmentMeasure:
    ruleset_version: str
    level: str
    cases_assessed: int
    routed: int
    positive_outcome: int
    assessed_to_help_median_hours: float | None
    assessed_to_help_p90_hours: float | None


@dataclass(frozen=True)
class DryRunMeasure:
    """One rule of a recent dry run, beside what the rule's flags under the ruleset in force
    led to in the period: its expected reach under the candidate, its actual conversion."""

    candidate_version: str
    in_force_version: str  # the ruleset in force for the council when the dry run ran
    ran_at: datetime
    rule_id: str
    residents_flagged: int  # actual: flagged in the period by the rule, under in_force_version
    positive_outcome: int  # actual: their outreach cases with a positive outcome
    flag_to_help_share: float | None  # actual: positive_outcome of residents_flagged
    would_fire_in_force: int  # dry run: residents the rule fires for under the ruleset in force
    would_fire_candidate: int  # dry run: ... under the candidate
    change: int  # would_fire_candidate - would_fire_in_force


@dataclass(frozen=True)
class DryRunLevel:
    """Residents per level under each ruleset of a recent dry run."""

    candidate_version: str
    in_force_version: str
    ran_at: datetime
    level: str
    residents_in_force: int
    residents_candidate: int
    change: int


@dataclass(frozen=True)
class RulesReport:
    council: str
    period_from: date
    period_to: date
    area: str | None
    need: str | None
    rules: list[RuleMeasure] = field(default_factory=list)
    assessment_levels: list[AssessmentMeasure] = field(default_factory=list)
    dry_runs: list[DryRunMeasure] = field(default_factory=list)
    dry_run_levels: list[DryRunLevel] = field(default_factory=list)


NO_RULE = "(no rule)"


def rule_measures(facts: Facts, course_list: Sequence[CaseCourse]) -> list[RuleMeasure]:
    """Per rule (and ruleset version) of the flags raised in the period: a flag counts for
    every rule that fired on it; its outreach case (if it opened one) follows it."""
    course_by_flag = {c.case.flag_ref: c for c in course_list if c.case.flag_ref}
    returning = [f for f in facts.flags if f.returning]
    groups: dict[tuple[str, str], list[FlagFact]] = defaultdict(list)
    for flag in facts.flags:
        if facts.in_period(flag.flagged_at):
            for rule in flag.rule_ids or (NO_RULE,):
                groups[(flag.ruleset_version, rule)].append(flag)
    result = []
    for (version, rule), flags in sorted(groups.items()):
        cases = [course_by_flag[f.ref] for f in flags if f.ref in course_by_flag]
        linked = [(f, course_by_flag[f.ref]) for f in flags if f.ref in course_by_flag]
        to_help = [_hours(f.flagged_at, c.helped_at) for f, c in linked if c.helped_at is not None]
        residents = {f.resident_ref for f in flags}
        first_flag: dict[str, datetime] = {}
        for f in flags:
            if f.resident_ref not in first_flag or f.flagged_at < first_flag[f.resident_ref]:
                first_flag[f.resident_ref] = f.flagged_at
        reflagged = {
            r.resident_ref
            for r in returning
            if r.resident_ref in first_flag and r.flagged_at > first_flag[r.resident_ref]
        }
        result.append(
            RuleMeasure(
                ruleset_version=version,
                rule_id=rule,
                residents_flagged=len(residents),
                outreach_cases_opened=len(cases),
                consent_obtained=sum(1 for c in cases if c.case.ready_at is not None),
                routed=sum(1 for c in cases if c.first_offer_at is not None),
                positive_outcome=sum(1 for c in cases if c.helped_at is not None),
                flag_to_help_median_hours=_rounded(median(to_help)),
                flag_to_help_p90_hours=_rounded(quantile(to_help, 0.9)),
                residents_reflagged_after_help=len(reflagged),
                share_reflagged_after_help=_share(len(reflagged), len(residents)),
            )
        )
    return result


def assessment_measures(facts: Facts, course_list: Sequence[CaseCourse]) -> list[AssessmentMeasure]:
    """Per ruleset version and level of each referred case's first assessment."""
    first: dict[str, AssessmentFact] = {}
    for assessment in facts.assessments:
        held = first.get(assessment.case_ref)
        if held is None or assessment.assessed_at < held.assessed_at:
            first[assessment.case_ref] = assessment
    groups: dict[tuple[str, str], list[tuple[AssessmentFact, CaseCourse]]] = defaultdict(list)
    for course in course_list:
        found = first.get(course.case.ref)
        if found is not None:
            groups[(found.ruleset_version, found.level)].append((found, course))
    result = []
    for (version, level), pairs in sorted(groups.items()):
        to_help = [_hours(a.assessed_at, c.helped_at) for a, c in pairs if c.helped_at]
        result.append(
            AssessmentMeasure(
                ruleset_version=version,
                level=level,
                cases_assessed=len(pairs),
                routed=sum(1 for _, c in pairs if c.first_offer_at is not None),
                positive_outcome=sum(1 for _, c in pairs if c.helped_at is not None),
                assessed_to_help_median_hours=_rounded(median(to_help)),
                assessed_to_help_p90_hours=_rounded(quantile(to_help, 0.9)),
            )
        )
    return result


def dry_run_measures(
    dry_runs: Sequence[DryRunFact], rules: Sequence[RuleMeasure]
) -> list[DryRunMeasure]:
    """Per recent dry run (newest first) and rule (in the dry run's order): the residents it
    would fire for under each ruleset, beside the period's actual flags of the rule under
    the ruleset that was in force (``rules``: the period's rule measures, filtered as they
    are; a rule that flagged no one in the period shows zeros)."""
    actual = {(r.ruleset_version, r.rule_id): r for r in rules}
    result = []
    for run in dry_runs:
        for rule in run.rules:
            measured = actual.get((run.in_force_version, rule.rule_id))
            flagged = measured.residents_flagged if measured else 0
            helped = measured.positive_outcome if measured else 0
            result.append(
                DryRunMeasure(
                    candidate_version=run.candidate_version,
                    in_force_version=run.in_force_version,
                    ran_at=run.ran_at,
                    rule_id=rule.rule_id,
                    residents_flagged=flagged,
                    positive_outcome=helped,
                    flag_to_help_share=_share(helped, flagged),
                    would_fire_in_force=rule.in_force,
                    would_fire_candidate=rule.candidate,
                    change=rule.candidate - rule.in_force,
                )
            )
    return result


def dry_run_levels(dry_runs: Sequence[DryRunFact]) -> list[DryRunLevel]:
    """Per recent dry run (newest first) and level, lowest first."""
    order = {level.value: n for n, level in enumerate(RiskLevel)}
    result = []
    for run in dry_runs:
        levels = {*run.levels_in_force, *run.levels_candidate}
        for level in sorted(levels, key=lambda name: (order.get(name, len(order)), name)):
            in_force = run.levels_in_force.get(level, 0)
            candidate = run.levels_candidate.get(level, 0)
            result.append(
                DryRunLevel(
                    candidate_version=run.candidate_version,
                    in_force_version=run.in_force_version,
                    ran_at=run.ran_at,
                    level=level,
                    residents_in_force=in_force,
                    residents_candidate=candidate,
                    change=candidate - in_force,
                )
            )
    return result


def rules_report(council: str, facts: Facts, filters: Filters) -> RulesReport:
    chosen = filtered(facts, filters)
    course_list = courses(chosen)
    rules = rule_measures(chosen, course_list)
    return RulesReport(
        council=council,
        period_from=facts.period_from,
        period_to=facts.period_to,
        area=filters.area,
        need=filters.need,
        rules=rules,
        assessment_levels=assessment_measures(chosen, course_list),
        dry_runs=dry_run_measures(facts.dry_runs, rules),
        dry_run_levels=dry_run_levels(facts.dry_runs),
    )


# -- reach ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReachRow:
    dimension: str  # age_band, language, area
    value: str
    cases: int
    flagged: int  # outreach cases (from a flag)
    consent_obtained: int
    offered: int
    helped: int
    flagged_no_consent: int  # the gap: flagged, never ready for routing
    flagged_no_offer: int  # the gap: ready, never offered to a partner


@dataclass(frozen=True)
class ReachReport:
    council: str
    period_from: date
    period_to: date
    area: str | None
    need: str | None
    reach: list[ReachRow] = field(default_factory=list)


def reach(course_list: Sequence[CaseCourse]) -> list[ReachRow]:
    """Who the cases opened in the period reach, by age band, preferred language and area
    (protected characteristics are not collected), and the gap: flagged residents never
    reached. An outreach case's language is known only once it is routed."""
    dimensions: dict[str, Callable[[CaseFact], str | None]] = {
        "age_band": lambda c: c.age_band,
        "language": lambda c: c.language,
        "area": lambda c: c.area,
    }
    result = []
    for dimension, value_of in dimensions.items():
        groups: dict[str, list[CaseCourse]] = defaultdict(list)
        for course in course_list:
            groups[value_of(course.case) or UNKNOWN].append(course)
        for value, members in sorted(groups.items()):
            flagged = [c for c in members if c.case.origin == "flag"]
            result.append(
                ReachRow(
                    dimension=dimension,
                    value=value,
                    cases=len(members),
                    flagged=len(flagged),
                    consent_obtained=sum(1 for c in members if c.case.ready_at is not None),
                    offered=sum(1 for c in members if c.first_offer_at is not None),
                    helped=sum(1 for c in members if c.helped_at is not None),
                    flagged_no_consent=sum(1 for c in flagged if c.case.ready_at is None),
                    flagged_no_offer=sum(
                        1
                        for c in flagged
                        if c.case.ready_at is not None and c.first_offer_at is None
                    ),
                )
            )
    return result


def reach_report(council: str, facts: Facts, filters: Filters) -> ReachReport:
    chosen = filtered(facts, filters)
    return ReachReport(
        council=council,
        period_from=facts.period_from,
        period_to=facts.period_to,
        area=filters.area,
        need=filters.need,
        reach=reach(courses(chosen)),
    )
