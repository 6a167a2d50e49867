"""Referral intake and the caseworker API against a real PostgreSQL."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from services.referrals.adapters.erasure import delete_idempotent_responses_before
from shared.db import session_factory
from shared.events.envelope import utc_now
from tests.integration.referrals.conftest import FOOD_BANK, ReferralsApi, referral

pytestmark = pytest.mark.integration


async def test_a_council_referral_opens_a_case_and_records_its_events(api: ReferralsApi) -> None:
    response = await api.refer(referral())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["case_status"] == "received"
    assert body["sharing"] == {
        "allowed": True,
        "reason": "the resident consented to sharing with partners",
    }
    assert body["attached_to_open_case"] is False and body["possible_duplicates"] == 0

    case = await api.case(body["case_id"])
    assert case["council"] == api.council  # the council referrer's own by default
    assert case["resident"]["postcode"] == "E15 4HT"  # normalised
    assert case["needs"] == ["food", "money_and_debt"] and case["urgency"] == "high"
    assert case["consent"]["partner_kinds"] == ["food", "advice"]
    assert [e["action"] for e in case["timeline"]] == [
        "case opened (referral)",
        "referral received",
    ]
    (opened,) = await api.events("referrals.case.opened")
    (received,) = await api.events("referrals.referral.received")
    assert opened["case_id"] == received["case_id"] == body["case_id"]
    assert len(received["resident_keys"]) == 2  # name+birth date, name+postcode
    # The risk service gets no direct identifiers.
    assert "Okafor" not in str(received) and "1984" not in str(received)
    assert received["age_years"] == 42


async def test_a_retried_post_with_the_same_idempotency_key_creates_one_referral(
    api: ReferralsApi,
) -> None:
    first = await api.refer(referral(), **{"Idempotency-Key": "intake-7f3a"})
    again = await api.refer(referral(), **{"Idempotency-Key": "intake-7f3a"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await api.count("referrals") == 1
    assert await api.count("outbox") == 2  # case opened, referral received: once

    changed = await api.refer(referral(urgency="low"), **{"Idempotency-Key": "intake-7f3a"})
    assert changed.status_code == 422
    assert changed.json()["errors"] == [
        {"field": "Idempotency-Key", "reason": "already used for a different request"}
    ]
    assert await api.count("referrals") == 1

    # Its stored answer (naming the case) is kept idempotency_key_days, then swept.
    kept_for = timedelta(days=api.settings.idempotency_key_days)
    async with session_factory(api.engine)() as session, session.begin():
        window_start = utc_now() - kept_for
        assert await delete_idempotent_responses_before(session, window_start, 100) == 0
        # (the sweep's cutoff, idempotency_key_days after the answer was stored)
        stored_since = utc_now() + timedelta(minutes=1)
        assert await delete_idempotent_responses_before(session, stored_since, 100) == 1
    assert await api.count("idempotency_keys") == 0


async def test_a_council_and_a_food_bank_referring_one_resident_share_one_case(
    api: ReferralsApi,
) -> None:
    council = await api.refer(referral())
    food_bank = await api.refer(
        referral(
            council=api.council,
            resident={
                "given_name": " AMINA",
                "family_name": "okafor",
                "address": {"postcode": "E154HT"},
            },
            needs=["food", "fuel_and_utilities"],
            urgency="crisis",
        ),
        kind="food_bank",
    )
    assert food_bank.status_code == 201, food_bank.text
    # A charity learns nothing of the council's records from the answer: not the case, nor
    # its status, nor that the resident had one.
    assert set(food_bank.json()) == {"referral_id", "sharing"}
    case = await api.case(council.json()["case_id"])
    assert case["needs"] == ["food", "money_and_debt", "fuel_and_utilities"]
    assert case["urgency"] == "crisis" and case["priority"] == 4
    assert [r["referrer_org"] for r in case["referrals"]] == [api.council, FOOD_BANK]
    assert await api.count("residents") == 1 and await api.count("cases") == 1
    assert len(await api.events("referrals.case.opened")) == 1
    assert len(await api.events("referrals.referral.received")) == 2


async def test_an_uncertain_match_is_flagged_for_a_caseworker_not_merged(
    api: ReferralsApi,
) -> None:
    first = await api.refer(referral())
    moved = await api.refer(referral(resident={"address": {"postcode": "E8 1DY"}}))
    assert moved.json()["possible_duplicates"] == 1
    assert moved.json()["case_id"] != first.json()["case_id"]
    assert await api.count("residents") == 2

    listed = await api.client.get("/v1/duplicates", headers=api.token())
    (duplicate,) = listed.json()
    assert "date of birth exact, postcode different" in duplicate["reason"]
    assert duplicate["score"] >= 10 and duplicate["contributions"][0] == {
        "field": "given name",
        "agreement": "exact",
        "weight": 5.0,
    }
    assert duplicate["resident_name"] == duplicate["candidate_name"] == "Amina Okafor"
    # Both have an open case: confirming merges them into one (the one known first).
    confirmed = await api.client.post(
        f"/v1/duplicates/{duplicate['id']}/confirm", headers=api.token()
    )
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    survivor = await api.case(first.json()["case_id"])
    merged_case = await api.case(moved.json()["case_id"])
    assert merged_case["resident"]["id"] == survivor["resident"]["id"]  # one person
    assert merged_case["status"] == "withdrawn"  # both timelines kept
    assert merged_case["timeline"][-1]["action"] == "resident records merged"
    assert len(survivor["referrals"]) == 2
    assert "case merged in" in [entry["action"] for entry in survivor["timeline"]]
    again = await api.client.post(f"/v1/duplicates/{duplicate['id']}/confirm", headers=api.token())
    assert again.status_code == 409
    assert set(again.json()) == {"detail", "current_status", "allowed"}  # one 409 body


async def test_rejecting_a_possible_duplicate_keeps_both_residents(api: ReferralsApi) -> None:
    await api.refer(referral())
    await api.refer(referral(resident={"date_of_birth": None}))
    (duplicate,) = (await api.client.get("/v1/duplicates", headers=api.token())).json()
    rejected = await api.client.post(
        f"/v1/duplicates/{duplicate['id']}/reject", headers=api.token()
    )
    assert rejected.json()["status"] == "rejected"
    assert await api.count("residents", "merged_into IS NULL") == 2
    assert (await api.client.get("/v1/duplicates", headers=api.token())).json() == []


async def test_tenancy_is_enforced_in_every_read(api: ReferralsApi) -> None:
    newham = (await api.refer(referral())).json()
    theirs = (await api.refer(referral(council=api.council), kind="food_bank")).json()

    other_council = api.token("other_council")
    assert (
        await api.client.get(f"/v1/cases/{newham['case_id']}", headers=other_council)
    ).status_code == 404
    listed = await api.client.get("/v1/cases", headers=other_council)
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert (
        await api.client.get(f"/v1/referrals/{newham['referral_id']}", headers=other_council)
    ).status_code == 404

    food_bank = api.token("food_bank")
    assert (
        await api.client.get(f"/v1/cases/{newham['case_id']}", headers=food_bank)
    ).status_code == 403
    assert (
        await api.client.get(f"/v1/referrals/{newham['referral_id']}", headers=food_bank)
    ).status_code == 404
    other_charity = api.token("food_bank", organisation="hackney-advice-centre")
    assert (
        await api.client.get(f"/v1/referrals/{theirs['referral_id']}", headers=other_charity)
    ).status_code == 404

    own = await api.client.get(f"/v1/referrals/{theirs['referral_id']}", headers=food_bank)
    assert own.status_code == 200
    assert set(own.json()) == {"referral_id", "case_status", "needs", "referred_at", "timeline"}
    # Its own entry, written in the same transaction as the referral: nothing of the council's.
    assert [e["action"] for e in own.json()["timeline"]] == ["referral received"]
    assert all(
        set(e) <= {"at", "action", "status", "actor", "detail"} and e.get("actor") is None
        for e in own.json()["timeline"]
    )
    operator = await api.client.get(f"/v1/cases/{newham['case_id']}", headers=api.token("operator"))
    assert operator.status_code == 200


def _without(path: str) -> dict[str, Any]:
    body = referral()
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[part]
    del node[last]
    return body


BAD_INPUT = [
    ("missing resident", _without("resident"), 422, "resident"),
    ("missing needs", _without("needs"), 422, "needs"),
    ("missing given name", _without("resident.given_name"), 422, "resident.given_name"),
    ("wrong type", referral(urgency=5), 422, "urgency"),
    ("needs not a list", referral(needs="food"), 422, "needs"),
    (
        "bad postcode",
        referral(resident={"address": {"postcode": "E15"}}),
        422,
        "resident.address.postcode",
    ),
    ("unknown need", referral(needs=["food", "yachts"]), 422, "needs.1"),
    (
        "birth date in the future",
        referral(resident={"date_of_birth": "2099-01-01"}),
        422,
        "resident.date_of_birth",
    ),
    ("oversized text", referral(circumstances_text="x" * 2001), 422, "circumstances_text"),
    ("oversized name", referral(resident={"given_name": "A" * 101}), 422, "resident.given_name"),
    ("unknown field", referral(shoe_size=9), 422, "shoe_size"),
    (
        "consent basis without consent",
        referral(sharing={"lawful_basis": "consent", "consent": None}),
        422,
        "sharing",
    ),
    (
        "vital interests without a justification",
        referral(sharing={"lawful_basis": "vital_interests", "consent": None}),
        422,
        "sharing.justification",
    ),
    (
        "public task without who decided",
        referral(sharing={"lawful_basis": "public_task", "consent": None, "justification": "j"}),
        422,
        "sharing.decided_by",
    ),
    (
        "a health need on public task without an Article 9 condition",
        referral(
            needs=["mental_health"],
            sharing={
                "lawful_basis": "public_task",
                "consent": None,
                "justification": "the council's duty of care",
                "decided_by": "Team manager",
            },
        ),
        422,
        "sharing.article9_condition",
    ),
    ("preferred route missing", referral(resident={"contact": {"phone": None}}), 422, "resident"),
    ("council not served", referral(council="E09000001"), 422, "council"),
    ("no letter in a name", referral(resident={"family_name": "--"}), 422, "resident.family_name"),
    ("malformed council", referral(council="Newham"), 422, "council"),
    (
        "consent in the future",
        referral(sharing={"consent": {"given_at": "2099-01-01T00:00:00Z"}}),
        422,
        "sharing.consent.given_at",
    ),
    (
        # Read as seconds since 1970, 0 would be a birth on 1 January 1970 for everyone so sent.
        "date of birth as a number",
        referral(resident={"date_of_birth": 0}),
        422,
        "resident.date_of_birth",
    ),
    (
        "consent time as a number",
        referral(sharing={"consent": {"given_at": 1764590400}}),
        422,
        "sharing.consent.given_at",
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "field"), BAD_INPUT, ids=[b[0] for b in BAD_INPUT]
)
async def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    api: ReferralsApi, case: str, body: Any, status: int, field: str
) -> None:
    response = await api.refer(body)
    assert response.status_code == status, response.text
    fields = [e["field"] for e in response.json()["errors"]]
    assert any(f == field or f.startswith(field) for f in fields), fields
    for table in ("residents", "cases", "referrals", "consents", "outbox"):
        assert await api.count(table) == 0, table


async def test_a_refusal_names_the_field_never_the_value(api: ReferralsApi) -> None:
    response = await api.refer(referral(resident={"address": {"postcode": "N1 9GUX"}}))
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["resident.address.postcode"]
    assert "not a UK postcode" in response.text and "9GUX" not in response.text.upper()


async def test_other_bad_requests_are_clear_4xx(api: ReferralsApi) -> None:
    not_json = await api.client.post(
        "/v1/referrals",
        content=b"{not json",
        headers={**api.token(), "content-type": "application/json"},
    )
    assert not_json.status_code == 422
    unknown = await api.client.get(
        "/v1/cases/6b0f0b9e-4a57-4d0c-9a07-0d6d8a0c1f11", headers=api.token()
    )
    assert unknown.status_code == 404
    not_an_id = await api.client.get("/v1/cases/42", headers=api.token())
    assert not_an_id.status_code == 422 and not_an_id.json()["errors"][0]["field"] == "path.case_id"
    cursor = await api.client.get("/v1/cases?cursor=bm9wZQ", headers=api.token())
    assert cursor.status_code == 422 and cursor.json()["errors"][0]["field"] == "cursor"
    # A cursor is base64 JSON anyone can write: each part is checked, never a 500.
    for forged in (
        [False, 1, "2026-01-01T00:00:00+00:00", 5],
        [False, 1e308 * 10, "2026-01-01T00:00:00+00:00", str(uuid.uuid4())],
        [False, 10**30, "2026-01-01T00:00:00+00:00", str(uuid.uuid4())],
        [False, 1, "0001-01-01T00:00:00+14:00", str(uuid.uuid4())],
        [False, 1, "2026-01-01T00:00:00", str(uuid.uuid4())],
        [True, True, "2026-01-01T00:00:00+00:00", str(uuid.uuid4())],
        {"held": False},
    ):
        written = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
        answer = await api.client.get("/v1/cases", params={"cursor": written}, headers=api.token())
        assert answer.status_code == 422, (forged, answer.text)
        assert answer.json()["errors"][0]["field"] == "cursor"
    too_many = await api.client.get("/v1/cases?limit=1000", headers=api.token())
    assert too_many.status_code == 422
    no_token = await api.client.post("/v1/referrals", json=referral())
    assert no_token.status_code == 401
    operator = await api.refer(referral(), kind="operator")
    assert operator.status_code == 403
    assert await api.count("referrals") == 0


async def test_caseworker_actions_follow_the_lifecycle(api: ReferralsApi) -> None:
    case_id = (await api.refer(referral())).json()["case_id"]
    close = await api.client.post(
        f"/v1/cases/{case_id}/close", json={"outcome": "support_provided"}, headers=api.token()
    )
    assert close.status_code == 409
    assert close.json() == {
        "detail": "a received case cannot become closed; allowed: assessed, withdrawn",
        "current_status": "received",
        "allowed": ["assessed", "withdrawn"],
    }
    no_outcome = await api.client.post(f"/v1/cases/{case_id}/close", json={}, headers=api.token())
    assert no_outcome.status_code == 422 and no_outcome.json()["errors"][0]["field"] == "outcome"

    assert (
        await api.client.post(
            f"/v1/cases/{case_id}/assign", json={"caseworker": "kemi"}, headers=api.token()
        )
    ).status_code == 200
    assert (
        await api.client.post(
            f"/v1/cases/{case_id}/notes",
            json={"text": "Called; will visit Thursday."},
            headers=api.token(),
        )
    ).status_code == 201
    withdrawn = await api.client.post(
        f"/v1/cases/{case_id}/withdraw",
        json={"reason": "moved out of the borough"},
        headers=api.token(),
    )
    assert withdrawn.json() == {"case_id": case_id, "status": "withdrawn"}
    again = await api.client.post(
        f"/v1/cases/{case_id}/withdraw", json={"reason": "again"}, headers=api.token()
    )
    assert again.status_code == 409 and again.json()["allowed"] == []
    assert again.json()["current_status"] == "withdrawn"

    case = await api.case(case_id)
    assert case["assigned_to"] == "kemi" and case["notes"][0]["text"].startswith("Called")
    assert set(case["status_times"]) == {"received", "withdrawn"}
    (closed,) = await api.events("referrals.case.closed")
    assert closed["withdrawn"] is True and closed["outcome"] is None


async def test_the_queue_is_most_urgent_first_then_oldest_with_filters_and_a_cursor(
    api: ReferralsApi,
) -> None:
    people = [
        ("Ade", "low", ["food"]),
        ("Bea", "crisis", ["housing"]),
        ("Cal", "high", ["food"]),
        ("Dee", "crisis", ["food"]),
        ("Eli", "medium", ["benefits"]),
    ]
    for name, urgency, needs in people:
        response = await api.refer(
            referral(resident={"given_name": name}, urgency=urgency, needs=needs)
        )
        assert response.status_code == 201
    names: list[str] = []
    cursor = None
    while True:
        query = "/v1/cases?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await api.client.get(query, headers=api.token())).json()
        names += [item["resident_name"].split()[0] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == ["Bea", "Dee", "Cal", "Eli", "Ade"]

    food = (await api.client.get("/v1/cases?need=food", headers=api.token())).json()["items"]
    assert [i["resident_name"].split()[0] for i in food] == ["Dee", "Cal", "Ade"]
    received = (
        await api.client.get(
            "/v1/cases?status=received&status=assessed&origin=referral", headers=api.token()
        )
    ).json()["items"]
    assert len(received) == 5
    none = (await api.client.get("/v1/cases?risk_level=high", headers=api.token())).json()
    assert none["items"] == []


# -- no cross-council oracle ---------------------------------------------------------------


async def test_a_council_refers_only_into_its_own_council_and_learns_nothing_of_another(
    api: ReferralsApi,
) -> None:
    """A Hackney caseworker naming Newham in the body is refused the same way whether or not
    Newham has a case on the person, and nothing is written."""
    newham = await api.refer(referral())
    before = {t: await api.count(t) for t in ("residents", "cases", "referrals", "outbox")}
    answers = []
    for person in ({}, {"given_name": "Bea", "family_name": "Someone-New"}):
        probe = await api.refer(
            referral(council=api.council, resident=person), kind="other_council"
        )
        assert probe.status_code == 422, probe.text
        answers.append(probe.json())
    assert answers[0] == answers[1]
    (error,) = answers[0]["errors"]
    assert error["field"] == "council" and newham.json()["case_id"] not in str(answers[0])
    assert {t: await api.count(t) for t in before} == before

    # Its own council, named or by default, is unchanged.
    own = await api.refer(referral(council=api.other_council), kind="other_council")
    assert own.status_code == 201 and own.json()["attached_to_open_case"] is False
    assert await api.count("cases", "council = :c", c=api.other_council) == 1


async def test_a_partner_s_receipt_is_the_same_whether_it_opened_a_case_or_joined_one(
    api: ReferralsApi,
) -> None:
    council = (await api.refer(referral(urgency="low"))).json()
    await api.client.post(
        f"/v1/cases/{council['case_id']}/notes", json={"text": "Visited."}, headers=api.token()
    )
    joined = await api.refer(referral(council=api.council), kind="food_bank")
    opened = await api.refer(
        referral(council=api.council, resident={"given_name": "Bea", "family_name": "Mensah"}),
        kind="food_bank",
    )
    assert joined.status_code == opened.status_code == 201
    assert joined.json().keys() == opened.json().keys() == {"referral_id", "sharing"}
    assert joined.json()["sharing"] == opened.json()["sharing"]
    assert joined.json()["referral_id"] != opened.json()["referral_id"]
    assert council["case_id"] not in joined.text
    views = []
    for receipt in (joined, opened):
        progress = await api.client.get(
            f"/v1/referrals/{receipt.json()['referral_id']}", headers=api.token("food_bank")
        )
        assert progress.status_code == 200
        view = progress.json()
        views.append({**view, "referral_id": None, "referred_at": None, "timeline": None})
        # Only what happened from its referral on: no opening, no note, no earlier status.
        assert [e["action"] for e in view["timeline"]] == ["referral received"]
        assert view["case_status"] == "received"
    assert views[0] == views[1]

    replayed = await api.refer(
        referral(council=api.council), kind="food_bank", **{"Idempotency-Key": "fb-1"}
    )
    again = await api.refer(
        referral(council=api.council), kind="food_bank", **{"Idempotency-Key": "fb-1"}
    )
    assert again.headers["idempotent-replayed"] == "true"
    assert replayed.json() == again.json() and replayed.json().keys() == {"referral_id", "sharing"}

    # The council still sees its case, and the partner's referral in it, as before.
    case = await api.case(council["case_id"])
    assert FOOD_BANK in [r["referrer_org"] for r in case["referrals"]]
    council_view = await api.client.get(
        f"/v1/referrals/{council['referral_id']}", headers=api.token()
    )
    assert [e["action"] for e in council_view.json()["timeline"]][:2] == [
        "case opened (referral)",
        "referral received",
    ]


async def test_a_justified_basis_is_kept_and_a_caseworker_can_change_it(api: ReferralsApi) -> None:
    vital = {
        "lawful_basis": "vital_interests",
        "consent": None,
        "justification": "no heating in a frost; the resident cannot be reached",
        "decided_by": "Duty manager, Housing Needs",
        "article9_condition": "vital_interests",
    }
    answer = await api.refer(referral(needs=["fuel_and_utilities", "mental_health"], sharing=vital))
    assert answer.status_code == 201, answer.text
    assert answer.json()["sharing"]["allowed"] is True
    case_id = answer.json()["case_id"]
    case = await api.case(case_id)
    assert (case["basis_justification"], case["basis_decided_by"]) == (
        vital["justification"],
        vital["decided_by"],
    )
    assert case["article9_condition"] == "vital_interests"

    basis = f"/v1/cases/{case_id}/basis"
    missing = await api.client.post(
        basis,
        json={"lawful_basis": "legal_obligation", "reason": "the risk has passed"},
        headers=api.token(),
    )
    assert missing.status_code == 422, missing.text
    assert [e["field"] for e in missing.json()["errors"]] == [
        "justification",
        "decided_by",
        "article9_condition",
    ]
    changed = await api.client.post(
        basis,
        json={
            "lawful_basis": "legal_obligation",
            "reason": "the risk has passed",
            "justification": "Care Act 2014 assessment duty",
            "decided_by": "Team manager",
            "article9_condition": "health_or_social_care",
        },
        headers=api.token(),
    )
    assert changed.status_code == 200, changed.text
    case = await api.case(case_id)
    assert (case["lawful_basis"], case["article9_condition"]) == (
        "legal_obligation",
        "health_or_social_care",
    )
    assert case["timeline"][-1]["action"] == "lawful basis changed"
    stranger = await api.client.post(
        basis,
        json={
            "lawful_basis": "public_task",
            "reason": "r",
            "justification": "j",
            "decided_by": "d",
        },
        headers=api.token("food_bank"),
    )
    assert stranger.status_code in (403, 404)
