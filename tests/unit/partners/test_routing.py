"""The routing function on hand-made directories. No I/O."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.partners.domain.routing import Candidate, NeedToRoute, route
from shared.vocabulary import LawfulBasis, Need, PartnerKind

NEWHAM, HACKNEY = "E09000025", "E09000012"


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
        allowed_bases=frozenset({LawfulBasis.CONSENT}),
        allowed_categories=frozenset(),
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
    )
    return replace(base, **changes)


FILTER_CASES = [
    ("active", service("x", paused=True), "every food service is paused or inactive"),
    ("active", service("x", active=False), "every food service is paused or inactive"),
    ("need", service("x", needs=frozenset({Need.HOUSING})), "no service meets the need for food"),
    ("area", service("x", councils=frozenset({HACKNEY})), f"no service covers food in {NEWHAM}"),
    ("eligibility", service("x", minimum_age=50), "takes someone aged 40"),
    ("eligibility", service("x", maximum_age=25), "takes someone aged 40"),
    (
        "agreement",
        service("x", allowed_bases=frozenset({LawfulBasis.VITAL_INTERESTS})),
        "data-sharing agreement",
    ),
    ("agreement", service("x", organization_kind=PartnerKind.ADVICE), "data-sharing agreement"),
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
    allowed = service("allowed", allowed_categories=frozenset({"special_category"}), **kinds)
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
    covered = replace(advice, allowed_bases=frozenset({LawfulBasis.VITAL_INTERESTS}))
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
    from services.partners.domain.routing import why

    full = service("full", service_name="Full Pantry", load=10)
    chosen = service("open", service_name="Open Pantry")
    reasons = why(route(request(), [full, chosen]))
    assert reasons is not None
    assert "has capacity" in reasons.passed
    assert reasons.ranking[0].startswith("ranked first of 1 with")
    assert reasons.excluded == ("Full Pantry (Org full): is at capacity",)
    assert why(route(request(), [full])) is None
