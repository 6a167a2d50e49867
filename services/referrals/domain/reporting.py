"""The outcome measures, as plain Python over the facts of the reporting model (the
``reporting_*`` tables the ``referrals-reporting`` consumer group writes from events).

Facts carry pseudonymous references only (``case_ref``, ``resident_ref``: keyed hashes,
``service_layer/reporting.py``) and coarse attributes: council, age band, language,
postcode district, needs, partner, times. Nothing here can name a resident.

Cohorts: a report for a period counts the cases opened (referrals received, residents
flagged) in the period, and follows what happened to them whenever it happened; partner load
counts every offer open in the period's weeks. Durations are in hours.

Median and 90th percentile: linear interpolation between the closest ranks (Hyndman and
Fan's type 7: numpy's default, Excel's PERCENTILE.INC); none of an empty set.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from services.referrals.domain.needs import MET_OUTCOMES
from shared.vocabulary import Outcome

UNKNOWN = "unknown"
REPEAT_WINDOW = timedelta(days=90)
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
class Facts:
    """What the reporting model holds for one council and period (``adapters/reporting``)."""

    period_from: date
    period_to: date
    cases: Sequence[CaseFact] = ()
    offers: Sequence[OfferFact] = ()
    needs: Sequence[NeedFact] = ()
    referrals: Sequence[ReferralFact] = ()  # from 90 days before the period: repeats
    flags: Sequence[FlagFact] = ()  # from the period's start on: later returning flags
    assessments: Sequence[AssessmentFact] = ()
    load: Sequence[OfferFact] = ()  # every offer of the council open in the period

    def in_period(self, at: datetime) -> bool:
        return self.period_from <= at.date() <= self.period_to


@dataclass(frozen=True)
class Filters:
    area: str | None = None  # postcode district
    need: str | None = None


def _area_matches(area: str | None, wanted: str | None) -> bool:
    return wanted is None or (area or "").upper() == wanted.upper()


def _with_flag(case: CaseFact, flags_by_ref: dict[str, FlagFact]) -> CaseFact:
    """An outreach case not yet routed knows its needs, age band and area from its flag
    only (the packet brings them when it is routed)."""
    flag = flags_by_ref.get(case.flag_ref or "")
    if flag is None:
        return case
    return replace(
        case,
        needs=case.needs or flag.needs,
        age_band=case.age_band or flag.age_band,
        area=case.area or flag.area,
    )


def filtered(facts: Facts, filters: Filters) -> Facts:
    """The facts of the cases (and flags) in the area with the need, outreach cases
    completed from their flags. Under a need filter only that need counts: the other needs
    of a case or referral, and their offers, drop out."""
    flags_by_ref = {f.ref: f for f in facts.flags}
    wanted = filters.need

    def need_ok(need: str) -> bool:
        return wanted is None or need == wanted

    def only_wanted(needs: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(n for n in needs if need_ok(n))

    cases = [
        replace(c, needs=only_wanted(c.needs))
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
            if (filters.area is None or r.case_ref in kept)
            and (wanted is None or wanted in r.needs)
        ],
        flags=[
            replace(f, needs=only_wanted(f.needs))
            for f in facts.flags
            if _area_matches(f.area, filters.area) and (wanted is None or wanted in f.needs)
        ],
        assessments=[a for a in facts.assessments if a.case_ref in kept],
        load=[o for o in facts.load if _area_matches(o.area, filters.area) and need_ok(o.need)],
    )


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
    referrals: int


@dataclass(frozen=True)
class DurationMeasure:
    measure: str  # time_to_first_offer, time_to_acceptance, time_to_outcome
    cases: int  # cases that reached the milestone
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


@dataclass(frozen=True)
class AreaNeeds:
    area: str
    met: int
    not_met: int
    unroutable: int
    waiting: int
    in_progress: int


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


@dataclass(frozen=True)
class OutcomesReport:
    council: str
    period_from: date
    period_to: date
    area: str | None
    need: str | None
    referrals_by_source_and_need: list[SourceNeedCount] = field(default_factory=list)
    durations: list[DurationMeasure] = field(default_factory=list)
    offer_responses: list[OfferResponseCount] = field(default_factory=list)
    outcomes_by_need_and_partner: list[OutcomeCount] = field(default_factory=list)
    needs_by_area: list[AreaNeeds] = field(default_factory=list)
    repeat_referrals: list[RepeatReferrals] = field(default_factory=list)
    partner_load: list[PartnerWeek] = field(default_factory=list)


def referrals_by_source_and_need(facts: Facts) -> list[SourceNeedCount]:
    """Referrals received in the period, one per need they name, by referrer kind; an
    outreach case opened from a flag counts as a referral of source ``flag``."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for referral in facts.referrals:
        if facts.in_period(referral.received_at):
            for need in referral.needs:
                counts[(referral.source or UNKNOWN, need)] += 1
    for case in facts.cases:
        if case.origin == "flag" and facts.in_period(case.opened_at):
            for need in case.needs:
                counts[("flag", need)] += 1
    return [SourceNeedCount(s, n, c) for (s, n), c in sorted(counts.items())]


def durations(course_list: Sequence[CaseCourse]) -> list[DurationMeasure]:
    """From the case opening to its first offer, first acceptance and first outcome."""
    milestones: dict[str, Callable[[CaseCourse], datetime | None]] = {
        "time_to_first_offer": lambda c: c.first_offer_at,
        "time_to_acceptance": lambda c: c.first_accepted_at,
        "time_to_outcome": lambda c: c.first_outcome_at,
    }
    result = []
    for name, milestone in milestones.items():
        hours = [
            _hours(c.case.opened_at, at) for c in course_list if (at := milestone(c)) is not None
        ]
        result.append(
            DurationMeasure(
                name, len(hours), _rounded(median(hours)), _rounded(quantile(hours, 0.9))
            )
        )
    return result


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
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for course in course_list:
        for offer in course.offers:
            if offer.outcome is not None:
                counts[(offer.need, offer.partner_id, offer.outcome)] += 1
    return [OutcomeCount(n, p, o, c) for (n, p, o), c in sorted(counts.items())]


def need_state(need: str, offers: Sequence[OfferFact], fact: NeedFact | None) -> str:
    """Where one need of a case stands: ``met`` (a positive outcome), ``not_met`` (outcomes,
    none positive, none pending), ``waiting`` for a place or ``unroutable`` (since its last
    offer, if any), else ``in_progress``."""
    mine = [o for o in offers if o.need == need]
    if any(is_positive(o.outcome) for o in mine):
        return "met"
    last_offer = _latest(o.offered_at for o in mine)
    pending = any(o.offered_at is not None and o.ended_at is None for o in mine)
    if fact is not None and not pending:
        if fact.waiting_since is not None and (
            last_offer is None or fact.waiting_since > last_offer
        ):
            return "waiting"
        if fact.unroutable_at is not None and (
            last_offer is None or fact.unroutable_at > last_offer
        ):
            return "unroutable"
    if mine and not pending and any(o.outcome is not None for o in mine):
        return "not_met"
    return "in_progress"


def _latest(times: Iterable[datetime | None]) -> datetime | None:
    present = [t for t in times if t is not None]
    return max(present) if present else None


def needs_by_area(facts: Facts, course_list: Sequence[CaseCourse]) -> list[AreaNeeds]:
    need_facts = {(n.case_ref, n.need): n for n in facts.needs}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for course in course_list:
        area = course.case.area or UNKNOWN
        needs = set(course.case.needs) | {o.need for o in course.offers}
        needs |= {need for (ref, need) in need_facts if ref == course.case.ref}
        for need in sorted(needs):
            state = need_state(need, course.offers, need_facts.get((course.case.ref, need)))
            counts[area][state] += 1
    return [
        AreaNeeds(
            area=area,
            met=c["met"],
            not_met=c["not_met"],
            unroutable=c["unroutable"],
            waiting=c["waiting"],
            in_progress=c["in_progress"],
        )
        for area, c in sorted(counts.items())
    ]


def repeat_referrals(facts: Facts) -> RepeatReferrals:
    """Referrals received in the period whose resident had another referral in the 90 days
    before (the resident by their pseudonymous reference)."""
    by_resident: dict[str, list[datetime]] = defaultdict(list)
    for referral in facts.referrals:
        if referral.resident_ref:
            by_resident[referral.resident_ref].append(referral.received_at)
    in_period = [r for r in facts.referrals if facts.in_period(r.received_at)]
    repeats = sum(
        1
        for r in in_period
        if r.resident_ref
        and any(
            r.received_at - REPEAT_WINDOW <= earlier < r.received_at
            for earlier in by_resident[r.resident_ref]
        )
    )
    residents = len({r.resident_ref or r.ref for r in in_period})
    return RepeatReferrals(len(in_period), residents, repeats, _share(repeats, len(in_period)))


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def partner_load(facts: Facts) -> list[PartnerWeek]:
    """Per partner and week (Monday to Sunday, UTC) of the period: offers made and accepted
    in the week, and those open (not yet accepted) or in hand (accepted, no outcome yet) at
    the week's end (or the period's, for the last week)."""
    result = []
    partners = sorted({o.partner_id for o in facts.load})
    week = _monday(facts.period_from)
    while week <= facts.period_to:
        end_day = min(week + timedelta(days=6), facts.period_to)
        for partner in partners:
            offers = [o for o in facts.load if o.partner_id == partner]
            made = sum(1 for o in offers if o.offered_at and week <= o.offered_at.date() <= end_day)
            accepted = sum(
                1 for o in offers if o.accepted_at and week <= o.accepted_at.date() <= end_day
            )
            open_ = in_hand = 0
            for offer in offers:
                if offer.offered_at is None or offer.offered_at.date() > end_day:
                    continue
                ended = offer.ended_at is not None and offer.ended_at.date() <= end_day
                accepted_by_end = (
                    offer.accepted_at is not None and offer.accepted_at.date() <= end_day
                )
                if ended:
                    continue
                if accepted_by_end:
                    in_hand += 1
                else:
                    open_ += 1
            if made or accepted or open_ or in_hand:
                result.append(PartnerWeek(week, partner, made, accepted, open_, in_hand))
        week += timedelta(days=7)
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
        durations=durations(course_list),
        offer_responses=offer_responses(course_list),
        outcomes_by_need_and_partner=outcomes_by_need_and_partner(course_list),
        needs_by_area=needs_by_area(chosen, course_list),
        repeat_referrals=[repeat_referrals(chosen)],
        partner_load=partner_load(chosen),
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
class RulesReport:
    council: str
    period_from: date
    period_to: date
    area: str | None
    need: str | None
    rules: list[RuleMeasure] = field(default_factory=list)
    assessment_levels: list[AssessmentMeasure] = field(default_factory=list)


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


def rules_report(council: str, facts: Facts, filters: Filters) -> RulesReport:
    chosen = filtered(facts, filters)
    course_list = courses(chosen)
    return RulesReport(
        council=council,
        period_from=facts.period_from,
        period_to=facts.period_to,
        area=filters.area,
        need=filters.need,
        rules=rule_measures(chosen, course_list),
        assessment_levels=assessment_measures(chosen, course_list),
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
