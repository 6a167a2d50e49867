"""The routing function on hand-made directories. No I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from services.partners.domain.routing import (
    NO_AGREEMENT,
    PACKET_CATEGORIES,
    Agreement,
    Candidate,
    NeedToRoute,
    route,
    why,
)
from shared.vocabulary import LawfulBasis, Need, PartnerKind

NEWHAM, HACKNEY = "E09000025", "E09000012"
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
TODAY = NOW.date()


def agreement(council: str = NEWHAM, **changes) -> Agreement:
    base = Agreement(
        id=f"dsa-{council}",
        reference=f"DSA-{council}",
        council=council,
        needs=frozenset(Need),
        data_categories=frozenset(c.value for c in PACKET_CATEGORIES),
        special_category=False,
        lawful_bases=frozenset({LawfulBasis.CONSENT}),
        starts_on=date(2026, 1, 1),
    )
    return replace(base, **changes)


def service(service_id: str, **changes) -> Candidate:
    base = Candidate(
        service_id=service_id,
        service_name=f"Service {service_id}",
        organization_id=f"org-{service_id}",
        organization_name=f"Org {service_id}",
        organization_kind=PartnerKind.FOOD,
        active=True,
        paused=False,
        needs=frozenset({Need.FOOD}),
        councils=frozenset({NEWHAM}),
        districts=frozenset(),
        minimum_age=None,
        maximum_age=None,
        languages=frozenset({"en"}),
        interpretation=False,
        agreements=(agreement(),),
        capacity=10,
        load=0,
    )
    return replace(base, **changes)


def request(**changes) -> NeedToRoute:
    base = NeedToRoute(
        need=Need.FOOD,
        council=NEWHAM,
        district="E15",
        age=40,
        language="en",
        interpreter_needed=False,
        lawful_basis=LawfulBasis.CONSENT,
        consent_kinds=frozenset({PartnerKind.FOOD}),
        at=NOW,
        today=TODAY,
    )
    return replace(base, **changes)


FILTER_CASES = [
    ("active", service("x", paused=True), "every food service is paused or inactive"),
    ("active", service("x", active=False), "every food service is paused or inactive"),
    ("need", service("x", needs=frozenset({Need.HOUSING})), "no service meets the need for food"),
    ("area", service("x", councils=frozenset({HACKNEY})), f"no service covers food in {NEWHAM}"),
    ("eligibility", service("x", minimum_age=50), "takes someone aged 40"),
    ("eligibility", service("x", maximum_age=25), "takes someone aged 40"),
    ("agreement", service("x", agreements=()), NO_AGREEMENT),
    ("agreement", service("x", agreements=(agreement(HACKNEY),)), NO_AGREEMENT),
    ("consent", service("x", organization_kind=PartnerKind.ADVICE), "the resident consented to"),
    ("capacity", service("x", load=10), f"all food services in {NEWHAM} are at capacity"),
]


@pytest.mark.parametrize(
    ("filter_name", "excluded", "sentence"),
    FILTER_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(FILTER_CASES)],
)
def test_each_filter_excludes_exactly_the_right_service(filter_name, excluded, sentence) -> None:
    kept = service("kept")
    decision = route(request(), [excluded, kept])
    assert [r.candidate.service_id for r in decision.ranked] == ["kept"]
    assert decision.excluded == {"x": filter_name}
    alone = route(request(), [excluded])
    assert alone.chosen is None and sentence in alone.unroutable_reason


def test_language_needs_the_language_or_interpretation() -> None:
    polish = request(language="pl", interpreter_needed=True)
    speaks = service("speaks", languages=frozenset({"en", "pl"}))
    interprets = service("interprets", interpretation=True)
    neither = service("neither")
    decision = route(polish, [neither, interprets, speaks])
    assert [r.candidate.service_id for r in decision.ranked] == ["speaks", "interprets"]
    assert decision.excluded == {"neither": "language"}
    assert "speaks 'pl' or offers interpretation" in route(polish, [neither]).unroutable_reason


def test_the_postcode_district_counts_as_coverage() -> None:
    local = service("local", councils=frozenset(), districts=frozenset({"E15"}))
    assert route(request(), [local]).chosen.candidate.service_id == "local"
    assert route(request(district="E13"), [local]).chosen is None


def test_sensitive_needs_need_an_agreement_allowing_special_category_data() -> None:
    counselling = request(
        need=Need.MENTAL_HEALTH, consent_kinds=frozenset({PartnerKind.HEALTH_AND_WELLBEING})
    )
    kinds = {
        "organization_kind": PartnerKind.HEALTH_AND_WELLBEING,
        "needs": frozenset({Need.MENTAL_HEALTH}),
    }
    without = service("without", **kinds)
    allowed = service("allowed", agreements=(agreement(special_category=True),), **kinds)
    decision = route(counselling, [without, allowed])
    assert [r.candidate.service_id for r in decision.ranked] == ["allowed"]
    assert decision.excluded == {"without": "agreement"}


def test_consent_to_any_voluntary_partner_admits_every_kind() -> None:
    advice = service("advice", organization_kind=PartnerKind.ADVICE)
    assert route(request(), [advice]).chosen is None
    any_kind = request(consent_kinds=frozenset({PartnerKind.ANY_VOLUNTARY}))
    assert route(any_kind, [advice]).chosen is not None
    vital = request(lawful_basis=LawfulBasis.VITAL_INTERESTS, consent_kinds=frozenset())
    assert route(vital, [advice]).chosen is None  # its agreement does not cover vital interests
    covered = replace(
        advice, agreements=(agreement(lawful_bases=frozenset({LawfulBasis.VITAL_INTERESTS})),)
    )
    assert route(vital, [covered]).chosen is not None


def test_a_partner_is_never_offered_the_same_need_twice() -> None:
    first, second = service("first"), service("second")
    handed_on = request(excluded_organizations=frozenset({"org-first"}))
    assert [r.candidate.service_id for r in route(handed_on, [first, second]).ranked] == ["second"]
    exhausted = request(excluded_organizations=frozenset({"org-first", "org-second"}))
    decision = route(exhausted, [first, second])
    assert decision.chosen is None
    assert "has already been offered this case" in decision.unroutable_reason


def test_ranking_is_as_documented() -> None:
    specialist = service("specialist", load=5)  # 40 + 15 + 15 + 7.5 = 77.5
    generalist = service("generalist", needs=frozenset({Need.FOOD, Need.HOUSING}))  # 20+30+15+7.5
    reliable = service("reliable", load=5, offers_made=10, offers_accepted=10)  # 40+15+15+15
    decision = route(request(), [generalist, specialist, reliable])
    assert [(r.candidate.service_id, r.score) for r in decision.ranked] == [
        ("reliable", 85.0),
        ("specialist", 77.5),
        ("generalist", 72.5),
    ]
    assert decision.ranked[0].reasons[1] == "headroom 15.0 (5 of 10 free)"


def test_ties_are_broken_by_service_id_whatever_the_order() -> None:
    twins = [service("b-food"), service("a-food"), service("c-food")]
    for order in (twins, twins[::-1], twins[1:] + twins[:1]):
        assert [r.candidate.service_id for r in route(request(), order).ranked] == [
            "a-food",
            "b-food",
            "c-food",
        ]


def test_why_says_in_plain_words_what_put_the_partner_first_and_who_was_left_out() -> None:
    full = service("full", service_name="Full Pantry", load=10)
    chosen = service("open", service_name="Open Pantry")
    reasons = why(route(request(), [full, chosen]))
    assert reasons is not None
    assert "has capacity" in reasons.passed
    assert reasons.ranking[0].startswith("ranked first of 1 with")
    assert reasons.excluded == ("Full Pantry (Org full): is at capacity",)
    assert why(route(request(), [full])) is None


# -- agreements between a council and a partner ----------------------------------------------

PUBLIC_TASK = frozenset({LawfulBasis.CONSENT, LawfulBasis.PUBLIC_TASK})
BOTH = frozenset({NEWHAM, HACKNEY})  # a partner working in both boroughs


def public_task_case(**changes) -> NeedToRoute:
    return request(lawful_basis=LawfulBasis.PUBLIC_TASK, consent_kinds=frozenset(), **changes)


def excluded_because(decision, service_id: str) -> str:
    """The plain words the council sees for a service left out."""
    return decision.excluded_details[service_id]


def test_a_public_task_case_never_goes_to_a_partner_whose_only_agreement_is_with_another_council():
    hackney_only = service(
        "hackney-only", councils=BOTH, agreements=(agreement(HACKNEY, lawful_bases=PUBLIC_TASK),)
    )
    newham = service(
        "newham", councils=BOTH, agreements=(agreement(NEWHAM, lawful_bases=PUBLIC_TASK),)
    )
    decision = route(public_task_case(), [hackney_only, newham])
    assert [r.candidate.service_id for r in decision.ranked] == ["newham"]
    assert decision.excluded == {"hackney-only": "agreement"}
    assert excluded_because(decision, "hackney-only") == (
        f"has no data-sharing agreement with {NEWHAM}"
    )
    alone = route(public_task_case(), [hackney_only])
    assert alone.chosen is None
    assert alone.unroutable_reason.startswith(NO_AGREEMENT)
    # and the same partner does get Hackney's public-task cases
    assert route(public_task_case(council=HACKNEY), [hackney_only]).chosen is not None


def test_a_public_task_case_needs_the_basis_covered_by_that_councils_agreement() -> None:
    # a public-task agreement with Hackney does not lend its basis to the one with Newham
    consent_with_newham = service(
        "x",
        councils=BOTH,
        agreements=(agreement(NEWHAM), agreement(HACKNEY, lawful_bases=PUBLIC_TASK)),
    )
    decision = route(public_task_case(), [consent_with_newham])
    assert decision.chosen is None
    assert excluded_because(decision, "x") == (
        f"its agreement with {NEWHAM} does not cover public task"
    )
    assert route(request(), [consent_with_newham]).chosen is not None  # a consent case does


def test_a_consent_case_needs_an_agreement_that_lists_consent() -> None:
    # the resident's consent is a basis like any other: an agreement that covers public task
    # only does not let a consent case through (as before agreements were per council)
    public_task_only = service(
        "public-task-only",
        agreements=(agreement(lawful_bases=frozenset({LawfulBasis.PUBLIC_TASK})),),
    )
    lists_consent = service("lists-consent")
    decision = route(request(), [public_task_only, lists_consent])
    assert [r.candidate.service_id for r in decision.ranked] == ["lists-consent"]
    assert decision.excluded == {"public-task-only": "agreement"}
    assert excluded_because(decision, "public-task-only") == (
        f"its agreement with {NEWHAM} does not cover consent"
    )
    alone = route(request(), [public_task_only])
    assert alone.chosen is None and alone.unroutable_reason.startswith(NO_AGREEMENT)


def test_a_case_naming_an_agreement_goes_only_to_a_partner_holding_that_very_agreement() -> None:
    named = public_task_case(agreement_reference="NEWHAM-DSA-7")
    holds_it = service(
        "holds", agreements=(agreement(reference="NEWHAM-DSA-7", lawful_bases=PUBLIC_TASK),)
    )
    another = service(
        "another", agreements=(agreement(reference="NEWHAM-DSA-2", lawful_bases=PUBLIC_TASK),)
    )
    decision = route(named, [another, holds_it])
    assert [r.candidate.service_id for r in decision.ranked] == ["holds"]
    assert "NEWHAM-DSA-7" in excluded_because(decision, "another")
    reasons = why(decision)
    assert reasons is not None
    assert (
        f"has data-sharing agreement NEWHAM-DSA-7 with {NEWHAM}, in force, covering this case"
        in (reasons.passed)
    )
    assert any("Org another" in line and "NEWHAM-DSA-7" in line for line in reasons.excluded)
    # a consent case is not held to the named agreement: the resident's consent is the basis
    assert route(request(agreement_reference="NEWHAM-DSA-7"), [another]).chosen is not None


@pytest.mark.parametrize(
    ("terms", "words"),
    [
        ({"ends_on": date(2026, 11, 30)}, "is not in force: ended on 2026-11-30"),
        ({"starts_on": date(2027, 1, 1)}, "is not in force: starts on 2027-01-01"),
        (
            {"ended_at": datetime(2026, 12, 1, 9, 0, tzinfo=UTC)},
            "is not in force: ended early on 2026-12-01",
        ),
    ],
    ids=["expired", "not-started", "ended-early"],
)
def test_an_agreement_not_in_force_stops_new_offers(terms, words) -> None:
    out_of_force = service("x", agreements=(agreement(**terms),))
    decision = route(request(), [out_of_force])
    assert decision.chosen is None and decision.excluded == {"x": "agreement"}
    assert words in excluded_because(decision, "x")
    assert decision.unroutable_reason.startswith(NO_AGREEMENT)


def test_an_agreement_is_in_force_through_its_last_day_and_until_the_moment_it_is_ended() -> None:
    last_day = service("x", agreements=(agreement(ends_on=TODAY),))
    assert route(request(), [last_day]).chosen is not None
    ends_later_today = service(
        "y", agreements=(agreement(ended_at=datetime(2026, 12, 1, 11, 0, tzinfo=UTC)),)
    )
    assert route(request(), [ends_later_today]).chosen is not None
    assert (
        route(request(at=datetime(2026, 12, 1, 11, 0, tzinfo=UTC)), [ends_later_today]).chosen
        is None
    )


def test_a_renewed_agreement_takes_over_from_the_expired_one() -> None:
    renewed = service(
        "x",
        agreements=(
            agreement(reference="OLD", ends_on=date(2026, 6, 30)),
            agreement(reference="NEW", starts_on=date(2026, 7, 1)),
        ),
    )
    chosen = route(request(), [renewed]).chosen
    assert chosen is not None and chosen.agreement is not None
    assert chosen.agreement.reference == "NEW"


def test_the_agreement_must_cover_the_need() -> None:
    food_only = service(
        "x",
        needs=frozenset({Need.FOOD, Need.HOUSING}),
        agreements=(agreement(needs=frozenset({Need.FOOD})),),
    )
    assert route(request(), [food_only]).chosen is not None
    housing = route(request(need=Need.HOUSING), [food_only])
    assert housing.chosen is None
    assert excluded_because(housing, "x") == f"its agreement with {NEWHAM} does not cover housing"


def test_the_agreement_must_cover_every_category_of_data_the_packet_holds() -> None:
    no_identity = service(
        "x", agreements=(agreement(data_categories=frozenset({"contact", "needs"})),)
    )
    decision = route(request(), [no_identity])
    assert decision.chosen is None
    assert excluded_because(decision, "x") == (
        f"its agreement with {NEWHAM} does not cover the data sent (contact, identity, needs)"
    )


def test_special_category_needs_go_only_where_that_councils_agreement_allows_them() -> None:
    counselling = request(
        need=Need.MENTAL_HEALTH, consent_kinds=frozenset({PartnerKind.ANY_VOLUNTARY})
    )
    # allowed with Hackney, not with Newham: a Newham case does not go
    partner = service(
        "x",
        needs=frozenset({Need.MENTAL_HEALTH, Need.FOOD}),
        councils=BOTH,
        agreements=(agreement(NEWHAM), agreement(HACKNEY, special_category=True)),
    )
    decision = route(counselling, [partner])
    assert decision.chosen is None
    assert "does not allow special category" in excluded_because(decision, "x")
    assert route(replace(counselling, council=HACKNEY), [partner]).chosen is not None
    # food is not special category: the same agreement carries it
    assert route(request(consent_kinds=frozenset({PartnerKind.ANY_VOLUNTARY})), [partner]).chosen


def test_a_vital_interests_case_needs_vital_interests_in_that_councils_agreement() -> None:
    vital = request(lawful_basis=LawfulBasis.VITAL_INTERESTS, consent_kinds=frozenset())
    covered_elsewhere = service(
        "x",
        agreements=(
            agreement(NEWHAM),
            agreement(HACKNEY, lawful_bases=frozenset({LawfulBasis.VITAL_INTERESTS})),
        ),
    )
    decision = route(vital, [covered_elsewhere])
    assert decision.chosen is None
    assert excluded_because(decision, "x") == (
        f"its agreement with {NEWHAM} does not cover vital interests"
    )
