"""The closed loop end to end: the three services as separate processes (``upstream up``)
over the real broker and PostgreSQL, driven through their HTTP APIs only, each step seen
through the API of the right service by the right principal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shared.auth import OrganisationKind, Role
from tests.e2e.stack import NEWHAM, Stack, referral, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Low-urgency offers lapse after about four seconds, so expiry can be seen here.
    hours = {"crisis": 4, "high": 24, "medium": 72, "low": 0.001, "none": 120}
    with running_stack(
        tmp_path_factory, "closed-loop", {"UPSTREAM_RESPONSE_HOURS": json.dumps(hours)}
    ) as running:
        yield running


def test_a_council_referral_goes_round_the_whole_loop(stack: Stack) -> None:
    advice = stack.add_partner("newham-benefits-advice", ["benefits"])
    created = stack.call(
        "POST",
        "referrals",
        "/v1/referrals",
        stack.caseworker,
        expect=201,
        json=referral("Bola", ["benefits"]),
    )
    case_id = created["case_id"]
    assessed = stack.until_status(case_id, "offered")
    assert assessed["assessment"]["ruleset_version"].startswith("default@")
    why = stack.call("GET", "risk", f"/v1/cases/{case_id}/assessment", stack.caseworker)
    assert why["level"] == assessed["assessment"]["level"] and why["explanation"]

    offer = stack.offered_to(advice)
    assert offer["packet"]["first_name"] == "Bola" and "Adeyemi" not in json.dumps(offer)
    stack.call("POST", "partners", f"/v1/inbox/offers/{offer['id']}/accept", stack.partner(advice))
    stack.until_status(case_id, "accepted")
    stack.call(
        "POST",
        "partners",
        f"/v1/inbox/offers/{offer['id']}/outcome",
        stack.partner(advice),
        json={"outcome": "support_provided"},
    )
    closed = stack.until_status(case_id, "closed")
    assert closed["outcome"] == "support_provided"
    assert set(closed["status_times"]) >= {
        "received",
        "assessed",
        "ready_for_routing",
        "offered",
        "accepted",
        "closed",
    }
    # The referrer follows it without seeing the assessment.
    progress = stack.call(
        "GET", "referrals", f"/v1/referrals/{created['referral_id']}", stack.caseworker
    )
    assert progress["case_status"] == "closed" and "assessment" not in progress


def test_a_food_bank_referral_joins_the_case_the_council_has(stack: Stack) -> None:
    council = stack.call(
        "POST",
        "referrals",
        "/v1/referrals",
        stack.caseworker,
        expect=201,
        json=referral("Chidi", ["digital_inclusion"]),
    )
    food_bank = stack.call(
        "POST",
        "referrals",
        "/v1/referrals",
        stack.token("e2e-food-bank", OrganisationKind.VCS, Role.REFERRER),
        expect=201,
        json=referral("chidi", ["food"], council=NEWHAM),
    )
    # The food bank learns nothing of the council's case (no id, no status): its referral
    # joining the case shows on the council's side only.
    assert set(food_bank) == {"referral_id", "sharing"}
    case = stack.case(council["case_id"])
    assert [r["referrer_org"] for r in case["referrals"]] == [NEWHAM, "e2e-food-bank"]


def test_a_decline_and_an_expiry_hand_on_and_then_the_council_sees_why(stack: Stack) -> None:
    first = stack.add_partner("fuel-poverty-action", ["fuel_and_utilities"])
    second = stack.add_partner("warm-homes-hub", ["fuel_and_utilities", "housing"])
    case_id = stack.call(
        "POST",
        "referrals",
        "/v1/referrals",
        stack.caseworker,
        expect=201,
        json=referral("Dami", ["fuel_and_utilities"], urgency="low"),
    )["case_id"]
    offer = stack.offered_to(first)
    stack.call(
        "POST",
        "partners",
        f"/v1/inbox/offers/{offer['id']}/decline",
        stack.partner(first),
        expect=204,
        json={"reason": "no_capacity"},
    )
    assert stack.inbox(first) == []
    stack.offered_to(second)  # …which nobody answers in time
    unroutable = stack.until_status(case_id, "unroutable")
    assert "already been offered this case" in unroutable["unroutable_reasons"][0]
    offers = {o["partner_id"]: o["status"] for o in unroutable["offers"]}
    assert offers == {first: "declined", second: "expired"}
    queue = stack.call("GET", "referrals", "/v1/cases?status=unroutable", stack.caseworker)
    assert case_id in [item["id"] for item in queue["items"]]


def test_a_signal_feed_flags_a_resident_consent_is_recorded_and_the_case_is_routed(
    stack: Stack,
) -> None:
    housing = stack.add_partner("newham-housing-advice", ["housing"], kind="housing")
    observed = (date.today() - timedelta(days=2)).isoformat()
    feed = (
        "type,council,given_name,family_name,date_of_birth,postcode,source,observed_on,"
        "notice_type,notice_date\n"
        f"eviction_notice,{NEWHAM},Efe,Okonkwo,1990-01-20,E16 1AB,newham-housing,"
        f"{observed},section_21,{observed}\n"
    )
    report = stack.call(
        "POST",
        "risk",
        "/v1/signals/import",
        {
            **stack.token(NEWHAM, OrganisationKind.COUNCIL, Role.DATA_FEED),
            "content-type": "text/csv",
        },
        content=feed.encode(),
    )
    assert report["flagged"] == 1

    def outreach() -> list[dict[str, Any]]:
        items = stack.call("GET", "referrals", "/v1/cases?origin=flag", stack.caseworker)["items"]
        return [i for i in items if i["resident_name"] == "Efe Okonkwo"]

    case_id = stack.until(outreach, "an outreach case")[0]["id"]
    case = stack.case(case_id)
    assert (case["status"], case["lawful_basis"]) == ("awaiting_consent", "public_task")
    assert case["assessment"]["level"] == "crisis"
    stack.call(
        "POST",
        "referrals",
        f"/v1/cases/{case_id}/consent",
        stack.caseworker,
        json={
            "given_by": "the resident",
            "method": "verbal",
            "given_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            "partner_kinds": ["housing"],
            "needs": ["housing"],
        },
    )
    offer = stack.offered_to(housing)
    assert offer["case_id"] == case_id and offer["packet"]["first_name"] == "Efe"


def test_consent_withdrawn_mid_flow_withdraws_offers_and_partners_lose_access(
    stack: Stack,
) -> None:
    befriending = stack.add_partner("newham-befriending", ["social_isolation"], kind="community")
    case_id = stack.call(
        "POST",
        "referrals",
        "/v1/referrals",
        stack.caseworker,
        expect=201,
        json=referral("Femi", ["social_isolation"]),
    )["case_id"]
    offer = stack.offered_to(befriending)
    stack.call(
        "POST",
        "referrals",
        f"/v1/cases/{case_id}/consent/withdraw",
        stack.caseworker,
        json={"reason": "the resident asked us to stop"},
    )
    stack.until(lambda: stack.inbox(befriending) == [] or None, "the offer to disappear")
    stack.call(
        "GET", "partners", f"/v1/inbox/offers/{offer['id']}", stack.partner(befriending), expect=404
    )
    case = stack.until(
        lambda: (
            (c := stack.case(case_id))["offers"] and c["offers"][0]["status"] == "withdrawn" and c
        ),
        "the withdrawal",
    )
    assert case["status"] == "awaiting_consent"
