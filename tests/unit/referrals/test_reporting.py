"""The outcome measures over hand-made facts: age bands, median and 90th percentile (type 7
interpolation), the cohort and filters, each measure's definition; London days; partner
load's sweep against a plain count."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from services.referrals.domain.reporting import (
    AssessmentFact,
    CaseFact,
    Facts,
    Filters,
    FlagFact,
    NeedFact,
    OfferFact,
    PartnerWeek,
    ReferralFact,
    age_band,
    local_day,
    median,
    need_state,
    outcomes_report,
    partner_load,
    quantile,
    reach_report,
    repeat_referrals,
    rules_report,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday
PERIOD = (date(2026, 11, 1), date(2026, 11, 30))


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def facts(**parts: object) -> Facts:
    return Facts(PERIOD[0], PERIOD[1], **parts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (None, "unknown"),
        (-1, "unknown"),
        (0, "0-17"),
        (17, "0-17"),
        (18, "18-24"),
        (24, "18-24"),
        (25, "25-34"),
        (34, "25-34"),
        (35, "35-49"),
        (49, "35-49"),
        (50, "50-64"),
        (64, "50-64"),
        (65, "65+"),
        (101, "65+"),
    ],
)
def test_age_bands(age: int | None, band: str) -> None:
    assert age_band(age) == band


def test_quantiles_interpolate_between_closest_ranks() -> None:
    assert median([]) is None
    assert quantile([], 0.9) is None
    assert median([5.0]) == 5.0
    assert median([1.0, 3.0]) == 2.0
    assert median([3.0, 1.0, 2.0]) == 2.0
    # Ten values 1..10: position (10-1)*0.9 = 8.1, between the 9th (9) and 10th (10).
    assert quantile([float(v) for v in range(10, 0, -1)], 0.9) == pytest.approx(9.1)
    assert quantile([1.0, 2.0], 0.0) == 1.0 and quantile([1.0, 2.0], 1.0) == 2.0
    with pytest.raises(ValueError):
        quantile([1.0], 1.5)


def case(ref: str, **values: object) -> CaseFact:
    defaults: dict[str, object] = {"council": "E09000025", "origin": "referral", "opened_at": T0}
    return CaseFact(ref=ref, **{**defaults, **values})  # type: ignore[arg-type]


def offer(ref: str, case_ref: str, **values: object) -> OfferFact:
    defaults: dict[str, object] = {
        "need": "food",
        "partner_id": "food-bank",
        "offered_at": hours(1),
    }
    return OfferFact(ref=ref, case_ref=case_ref, **{**defaults, **values})  # type: ignore[arg-type]


def test_durations_median_and_p90_from_the_case_opening() -> None:
    cases = [case(f"c{i}", needs=("food",)) for i in range(4)]
    offers = [
        offer(
            "o0",
            "c0",
            offered_at=hours(1),
            accepted_at=hours(2),
            outcome="support_provided",
            outcome_at=hours(10),
        ),
        offer("o1", "c1", offered_at=hours(3), accepted_at=hours(5)),
        offer("o2", "c2", offered_at=hours(5), declined_at=hours(6), decline_reason="no_capacity"),
        offer("o3", "c2", offered_at=hours(7), expired_at=hours(9)),
    ]
    report = outcomes_report("E09000025", facts(cases=cases, offers=offers), Filters())
    by_name = {d.measure: d for d in report.durations}
    # first offers at 1, 3, 5 hours (c2's first of two); c3 none
    assert by_name["time_to_first_offer"].cases == 3
    assert by_name["time_to_first_offer"].median_hours == 3.0
    assert by_name["time_to_first_offer"].p90_hours == pytest.approx(4.6)
    assert by_name["time_to_acceptance"].cases == 2
    assert by_name["time_to_acceptance"].median_hours == 3.5
    assert by_name["time_to_outcome"].cases == 1
    responses = {(r.response, r.reason): r.offers for r in report.offer_responses}
    assert responses == {("accepted", ""): 2, ("declined", "no_capacity"): 1, ("expired", ""): 1}
    assert [
        (o.need, o.partner_id, o.outcome, o.offers) for o in report.outcomes_by_need_and_partner
    ] == [("food", "food-bank", "support_provided", 1)]


def test_cases_outside_the_period_and_filters_drop_out() -> None:
    cases = [
        case("in", needs=("food",), area="E15"),
        case("other-area", needs=("food",), area="E7"),
        case("other-need", needs=("housing",), area="E15"),
        case("before", needs=("food",), area="E15", opened_at=T0 - timedelta(days=30)),
    ]
    offers = [offer(f"o-{c.ref}", c.ref) for c in cases]
    report = outcomes_report(
        "E09000025", facts(cases=cases, offers=offers), Filters(area="e15", need="food")
    )
    assert report.durations[0].cases == 1
    assert [(a.area, a.in_progress) for a in report.needs_by_area] == [("E15", 1)]


def test_need_states() -> None:
    done = offer("a", "c", outcome="support_provided", outcome_at=hours(3))
    failed = offer("b", "c", outcome="resident_uncontactable", outcome_at=hours(3))
    pending = offer("p", "c", accepted_at=hours(2))
    assert need_state("food", [failed, done], None) == "met"
    assert need_state("food", [failed], None) == "not_met"
    assert need_state("food", [pending], None) == "in_progress"
    waiting = NeedFact("c", "food", waiting_since=hours(4))
    assert need_state("food", [failed], waiting) == "waiting"  # after its last offer
    assert need_state("food", [], NeedFact("c", "food", unroutable_at=hours(0))) == "unroutable"
    # Unroutable once, offered since: it is with a partner now.
    assert need_state("food", [pending], NeedFact("c", "food", unroutable_at=hours(0))) == (
        "in_progress"
    )


def test_repeat_referrals_within_90_days_of_an_earlier_one() -> None:
    referrals = [
        ReferralFact("r-old", "c1", T0 - timedelta(days=60), "res-a", "council", ("food",)),
        ReferralFact("r1", "c2", T0, "res-a", "vcs", ("food",)),  # repeat (60 days)
        ReferralFact("r-older", "c3", T0 - timedelta(days=120), "res-b", "council", ("food",)),
        ReferralFact("r2", "c4", T0, "res-b", "council", ("housing",)),  # not: 120 days
        ReferralFact("r3", "c5", T0 + timedelta(days=1), "res-b", "council", ("housing",)),
    ]
    found = repeat_referrals(facts(referrals=referrals))
    assert (found.referrals, found.residents, found.repeat_within_90_days) == (3, 2, 2)
    report = outcomes_report("E09000025", facts(referrals=referrals), Filters())
    assert {(s.source, s.need, s.referral_needs) for s in report.referrals_by_source_and_need} == {
        ("vcs", "food", 1),
        ("council", "housing", 2),
    }


def test_partner_load_by_week() -> None:
    load = [
        offer("a", "c", offered_at=hours(1), accepted_at=hours(2)),  # in hand
        offer("b", "c", offered_at=hours(1)),  # open
        offer("c", "c", offered_at=hours(1), declined_at=hours(3)),  # ended in week 1
        offer("d", "c", offered_at=hours(24 * 8)),  # week 2
    ]
    weeks = partner_load(Facts(date(2026, 11, 2), date(2026, 11, 15), load=load))
    assert [
        (w.week_starting, w.offered, w.accepted, w.open_at_week_end, w.in_hand_at_week_end)
        for w in weeks
    ] == [
        (date(2026, 11, 2), 3, 1, 1, 1),
        (date(2026, 11, 9), 1, 0, 2, 1),
    ]


def test_rule_evaluation_follows_each_flag_to_its_outreach_case() -> None:
    flags = [
        FlagFact("f1", "res-a", hours(0), "high", "v1", ("arrears", "fuel")),
        FlagFact("f2", "res-b", hours(0), "medium", "v1", ("arrears",)),
        FlagFact("f3", "res-c", hours(0), "medium", "v1", ("fuel",)),
        # res-a again after help: returning
        FlagFact("f4", "res-a", hours(24 * 20), "medium", "v1", ("fuel",), returning=True),
    ]
    cases = [
        case("c1", origin="flag", flag_ref="f1", ready_at=hours(5), needs=("housing",)),
        case("c2", origin="flag", flag_ref="f2"),  # never consented
    ]
    offers = [offer("o1", "c1", outcome="support_provided", outcome_at=hours(48))]
    report = rules_report("E09000025", facts(cases=cases, offers=offers, flags=flags), Filters())
    by_rule = {r.rule_id: r for r in report.rules}
    arrears = by_rule["arrears"]
    assert (arrears.residents_flagged, arrears.outreach_cases_opened) == (2, 2)
    assert (arrears.consent_obtained, arrears.routed, arrears.positive_outcome) == (1, 1, 1)
    assert arrears.flag_to_help_median_hours == 48.0
    assert (arrears.residents_reflagged_after_help, arrears.share_reflagged_after_help) == (1, 0.5)
    fuel = by_rule["fuel"]
    assert (fuel.residents_flagged, fuel.outreach_cases_opened, fuel.positive_outcome) == (2, 1, 1)
    # res-a was flagged by fuel first, then again (returning) after help.
    assert fuel.residents_reflagged_after_help == 1


def test_assessment_levels_by_first_assessment() -> None:
    cases = [case("c1"), case("c2")]
    assessments = [
        AssessmentFact("c1", hours(0), "high", "v1", ("arrears",)),
        AssessmentFact("c1", hours(5), "low", "v1"),  # a later one does not move it
        AssessmentFact("c2", hours(0), "low", "v1"),
    ]
    offers = [offer("o1", "c1", outcome="partly_resolved", outcome_at=hours(10))]
    report = rules_report(
        "E09000025", facts(cases=cases, offers=offers, assessments=assessments), Filters()
    )
    assert [
        (a.level, a.cases_assessed, a.routed, a.positive_outcome) for a in report.assessment_levels
    ] == [
        ("high", 1, 1, 1),
        ("low", 1, 0, 0),
    ]
    assert report.assessment_levels[0].assessed_to_help_median_hours == 10.0


def test_reach_and_its_gaps() -> None:
    flags = [FlagFact("f1", "res-a", hours(0), "high", "v1", age_band="65+", area="E15")]
    cases = [
        case("c1", origin="flag", flag_ref="f1"),  # flagged, no consent: its flag's band/area
        case("c2", origin="flag", ready_at=hours(1), age_band="18-24", language="pl", area="E7"),
        case("c3", ready_at=hours(1), age_band="18-24", language="en", area="E7"),
    ]
    offers = [offer("o3", "c3", outcome="support_provided", outcome_at=hours(2))]
    report = reach_report("E09000025", facts(cases=cases, offers=offers, flags=flags), Filters())
    rows = {(r.dimension, r.value): r for r in report.reach}
    assert rows[("age_band", "65+")].flagged_no_consent == 1
    assert rows[("area", "E15")].cases == 1
    e7 = rows[("area", "E7")]
    assert (e7.cases, e7.flagged, e7.offered, e7.helped, e7.flagged_no_offer) == (2, 1, 1, 1, 1)
    assert rows[("language", "unknown")].cases == 1
    filtered = reach_report(
        "E09000025", facts(cases=cases, offers=offers, flags=flags), Filters(area="E15")
    )
    assert {r.value for r in filtered.reach if r.dimension == "area"} == {"E15"}


def test_closed_and_withdrawn_cases_needs_are_final() -> None:
    pending = offer("p", "c", accepted_at=hours(2))
    failed = offer("b", "c", outcome="resident_uncontactable", outcome_at=hours(3))
    done = offer("a", "c", outcome="support_provided", outcome_at=hours(3))
    waiting = NeedFact("c", "food", waiting_since=hours(4))
    closed = case("c", closed_at=hours(10), outcome="support_provided")
    withdrawn = case("c", closed_at=hours(10), withdrawn=True)
    assert need_state("food", [], waiting, closed) == "closed"  # no longer waiting
    assert need_state("food", [pending], None, closed) == "closed"  # no longer in progress
    assert need_state("food", [pending], None, withdrawn) == "withdrawn"
    assert need_state("food", [failed], None, withdrawn) == "not_met"  # an outcome came first
    assert need_state("food", [done], None, withdrawn) == "met"
    # Consent withdrawn on an open case: it waits for consent (in progress), no longer for a
    # place; waiting again once offered since and queued.
    no_consent = case("c", consent_withdrawn_at=hours(5))
    assert need_state("food", [pending], waiting, no_consent) == "in_progress"
    assert need_state("food", [failed], waiting, no_consent) == "not_met"  # stays so
    again = offer("q", "c", offered_at=hours(6), expired_at=hours(7))
    queued = NeedFact("c", "food", waiting_since=hours(8))
    assert need_state("food", [pending, again], queued, no_consent) == "waiting"
    # Open, nothing of the kind: as before.
    assert need_state("food", [pending], None, case("c")) == "in_progress"


def test_the_latest_of_waiting_and_unroutable_wins() -> None:
    both = NeedFact("c", "food", unroutable_at=hours(5), waiting_since=hours(2))
    assert need_state("food", [], both) == "unroutable"
    both = NeedFact("c", "food", unroutable_at=hours(2), waiting_since=hours(5))
    assert need_state("food", [], both) == "waiting"
    # An episode the same time as the last offer (an erased case's, kept to the day) holds.
    ended = offer("o", "c", offered_at=hours(0), expired_at=hours(0))
    assert need_state("food", [ended], NeedFact("c", "food", waiting_since=hours(0))) == "waiting"


def test_needs_by_area_counts_closed_and_withdrawn_needs() -> None:
    cases = [
        case("c1", needs=("food", "housing"), area="E15", closed_at=hours(9)),
        case("c2", needs=("food",), area="E15", closed_at=hours(9), withdrawn=True),
        case("c3", needs=("food",), area="E15"),
    ]
    offers = [offer("o1", "c1", outcome="support_provided", outcome_at=hours(5))]
    report = outcomes_report("E09000025", facts(cases=cases, offers=offers), Filters())
    (e15,) = report.needs_by_area
    assert (e15.met, e15.closed, e15.withdrawn, e15.in_progress) == (1, 1, 1, 1)


def test_a_referral_is_in_its_cases_area_and_areas_add_up() -> None:
    # The resident's first case opened before the period; the repeat referral joins it.
    before = T0 - timedelta(days=20)
    cases = [
        case("c1", needs=("food",), area="E15", opened_at=before),
        case("c2", needs=("food",), area="E7"),
    ]
    referrals = [
        ReferralFact("r0", "c1", before, "res-a", "council", ("food",), area="E15"),
        ReferralFact("r1", "c1", T0, "res-a", "council", ("food",), area="E15"),  # joins c1
        ReferralFact("r2", "c2", T0, "res-a", "vcs", ("food",), area="E7"),  # moved: E7
    ]
    everything = facts(cases=cases, referrals=referrals)
    whole = outcomes_report("E09000025", everything, Filters()).repeat_referrals[0]
    assert (whole.referrals, whole.repeat_within_90_days) == (2, 2)
    parts = [
        outcomes_report("E09000025", everything, Filters(area=a)).repeat_referrals[0]
        for a in ("E15", "E7")
    ]
    assert [(p.referrals, p.repeat_within_90_days) for p in parts] == [(1, 1), (1, 1)]
    e15 = outcomes_report("E09000025", everything, Filters(area="E15"))
    assert [(s.source, s.referral_needs) for s in e15.referrals_by_source_and_need] == [
        ("council", 1)
    ]


def test_referral_needs_distinct_referrals_and_a_referral_joining_an_outreach_case() -> None:
    flags = [FlagFact("f1", "res-a", hours(0), "high", "v1", needs=("fuel_and_utilities",))]
    cases = [
        # An outreach case a referral joined: the case's needs are the union.
        case("c1", origin="flag", flag_ref="f1", needs=("fuel_and_utilities", "food")),
        case("c2", needs=("food", "housing")),
    ]
    referrals = [
        ReferralFact("r1", "c1", hours(2), "res-a", "vcs", ("food",)),
        ReferralFact("r2", "c2", hours(0), "res-b", "council", ("food", "housing")),
    ]
    report = outcomes_report(
        "E09000025", facts(cases=cases, referrals=referrals, flags=flags), Filters()
    )
    assert {(s.source, s.need, s.referral_needs) for s in report.referrals_by_source_and_need} == {
        ("flag", "fuel_and_utilities", 1),  # the flag's need only: food is the vcs referral's
        ("vcs", "food", 1),
        ("council", "food", 1),
        ("council", "housing", 1),
    }
    assert [(s.source, s.referrals) for s in report.referrals_by_source] == [
        ("council", 1),
        ("flag", 1),
        ("vcs", 1),
    ]
    food = outcomes_report(
        "E09000025", facts(cases=cases, referrals=referrals, flags=flags), Filters(need="food")
    )
    assert [(s.source, s.referrals) for s in food.referrals_by_source] == [
        ("council", 1),
        ("vcs", 1),
    ]


def test_durations_say_their_cohort_and_who_has_not_reached_it_yet() -> None:
    cases = [
        case("r1"),
        case("r2"),
        case("r3", closed_at=hours(30)),
        case("f1", origin="flag", opened_at=hours(0)),
        case("f2", origin="flag"),
        case("x", origin=None),  # its case-opened event not yet in: a referral's row
    ]
    offers = [
        offer("o1", "r1", offered_at=hours(2)),
        offer("o2", "f1", offered_at=hours(48)),
        offer("o3", "x", offered_at=hours(4)),
    ]
    report = outcomes_report("E09000025", facts(cases=cases, offers=offers), Filters())
    rows = {
        d.measure: (d.cohort, d.cases, d.not_yet_reached, d.closed_without, d.median_hours)
        for d in report.durations
    }
    assert rows["time_to_first_offer"] == (6, 3, 2, 1, 4.0)
    assert rows["time_to_first_offer_from_referral"] == (4, 2, 1, 1, 3.0)
    assert rows["time_to_first_offer_from_flag"] == (2, 1, 1, 0, 48.0)
    assert rows["time_to_acceptance"] == (6, 0, 5, 1, None)


def test_days_are_london_days() -> None:
    summer = Facts(date(2026, 6, 1), date(2026, 6, 30))
    # 23:30 UTC on 31 May is 00:30 on 1 June in London (BST).
    assert local_day(datetime(2026, 5, 31, 23, 30, tzinfo=UTC)) == date(2026, 6, 1)
    assert summer.in_period(datetime(2026, 5, 31, 23, 30, tzinfo=UTC))
    assert not summer.in_period(datetime(2026, 6, 30, 23, 30, tzinfo=UTC))  # 1 July, 00:30
    opened = datetime(2026, 5, 31, 23, 30, tzinfo=UTC)
    report = outcomes_report(
        "E09000025",
        Facts(date(2026, 6, 1), date(2026, 6, 30), cases=[case("c", opened_at=opened)]),
        Filters(),
    )
    assert report.durations[0].cohort == 1


def test_repeat_referrals_of_one_time_count_once() -> None:
    # An erased resident's referrals, kept to the day: of two on one day one is the repeat.
    day = datetime(2026, 11, 2, tzinfo=UTC)
    referrals = [
        ReferralFact("r-b", "c1", day, "res-a", "council", ("food",)),
        ReferralFact("r-a", "c2", day, "res-a", "council", ("food",)),
    ]
    found = repeat_referrals(facts(referrals=referrals))
    assert (found.referrals, found.repeat_within_90_days) == (2, 1)


def test_partner_loads_first_week_is_clamped_to_the_period() -> None:
    # The period starts on a Wednesday: Monday's and Tuesday's offers are not its.
    monday = datetime(2026, 11, 2, 9, tzinfo=UTC)
    load = [
        offer("a", "c", offered_at=monday),  # before the period, still open in it
        offer("b", "c", offered_at=monday + timedelta(days=2)),  # the period's first day
    ]
    weeks = partner_load(Facts(date(2026, 11, 4), date(2026, 11, 8), load=load))
    assert [(w.week_starting, w.offered, w.open_at_week_end) for w in weeks] == [
        (date(2026, 11, 2), 1, 2)
    ]


def _plain_partner_load(facts_: Facts) -> list[PartnerWeek]:
    """Partner load counted the plain way, week by week and offer by offer."""
    result = []
    week = facts_.period_from - timedelta(days=facts_.period_from.weekday())
    while week <= facts_.period_to:
        first, last = max(week, facts_.period_from), min(week + timedelta(days=6), facts_.period_to)
        for partner in sorted({o.partner_id for o in facts_.load}):
            mine = [o for o in facts_.load if o.partner_id == partner]

            def within(at: datetime | None, first: date = first, last: date = last) -> bool:
                return at is not None and first <= local_day(at) <= last

            made = sum(1 for o in mine if within(o.offered_at))
            accepted = sum(1 for o in mine if within(o.accepted_at))
            open_ = in_hand = 0
            for o in mine:
                if o.offered_at is None or local_day(o.offered_at) > last:
                    continue
                if o.ended_at is not None and local_day(o.ended_at) <= last:
                    continue
                if o.accepted_at is not None and local_day(o.accepted_at) <= last:
                    in_hand += 1
                else:
                    open_ += 1
            if made or accepted or open_ or in_hand:
                result.append(PartnerWeek(week, partner, made, accepted, open_, in_hand))
        week += timedelta(days=7)
    return result


@pytest.mark.parametrize("seed", range(20))
def test_partner_loads_sweep_counts_as_the_plain_count(seed: int) -> None:
    chance = random.Random(seed)
    start = datetime(2026, 9, 20, tzinfo=UTC)

    def later(at: datetime) -> datetime | None:
        if chance.random() < 0.4:
            return None
        return at + timedelta(hours=chance.uniform(0, 24 * 30))

    load = []
    for i in range(60):
        offered = start + timedelta(hours=chance.uniform(0, 24 * 120))
        accepted = later(offered)
        load.append(
            offer(
                f"o{i}",
                "c",
                partner_id=chance.choice(["p1", "p2", "p3"]),
                offered_at=offered if chance.random() < 0.95 else None,
                accepted_at=accepted,
                declined_at=None if accepted else later(offered),
                outcome=None,
                outcome_at=later(accepted) if accepted else None,
            )
        )
    period = Facts(date(2026, 10, 7), date(2026, 12, 24), load=load)
    assert partner_load(period) == _plain_partner_load(period)
