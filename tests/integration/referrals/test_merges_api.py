"""Merges through the caseworker API against a real PostgreSQL: listed by council, undone
by a caseworker of that council with a reason, once."""

from __future__ import annotations

import pytest

from tests.integration.referrals.conftest import ReferralsApi, referral

pytestmark = pytest.mark.integration


async def test_a_caseworker_lists_and_undoes_a_merge_of_their_council_once(
    api: ReferralsApi,
) -> None:
    first = (await api.refer(referral())).json()
    moved = (await api.refer(referral(resident={"address": {"postcode": "E8 1DY"}}))).json()
    (duplicate,) = (await api.client.get("/v1/duplicates", headers=api.token())).json()
    confirmed = await api.client.post(
        f"/v1/duplicates/{duplicate['id']}/confirm", headers=api.token()
    )
    assert confirmed.status_code == 200, confirmed.text

    listed = await api.client.get(
        "/v1/merges", params={"resident": duplicate["resident_id"]}, headers=api.token()
    )
    assert listed.status_code == 200, listed.text
    (merge,) = listed.json()
    assert (merge["merged_resident_id"], merge["into_resident_id"]) == (
        duplicate["resident_id"],
        duplicate["candidate_id"],
    )
    assert (merge["merged_case_id"], merge["survivor_case_id"]) == (
        moved["case_id"],
        first["case_id"],
    )
    assert merge["undone_at"] is None and "given_name" not in merge  # ids, no names
    other = api.token(organisation=api.other_council)
    assert (await api.client.get("/v1/merges", headers=other)).json() == []

    undo = f"/v1/merges/{merge['id']}/undo"
    assert (await api.client.post(undo, json={"reason": "x"}, headers=other)).status_code == 404
    missing = await api.client.post(undo, json={}, headers=api.token())
    assert missing.status_code == 422 and "reason" in missing.text
    undone = await api.client.post(undo, json={"reason": "twins"}, headers=api.token())
    assert undone.status_code == 200, undone.text
    assert undone.json()["undone_by"] == f"caseworker-person ({api.council})"

    restored, survivor = await api.case(moved["case_id"]), await api.case(first["case_id"])
    assert restored["resident"]["id"] != survivor["resident"]["id"]  # two people again
    assert restored["status"] == "received" and len(restored["referrals"]) == 1
    assert len(survivor["referrals"]) == 1
    for case in (restored, survivor):
        actions = [entry["action"] for entry in case["timeline"]]
        assert "un-merged" in actions and (
            "case merged in" in actions or "merged into another case" in actions
        )
    assert len(await api.events("referrals.residents.unmerged")) == 1
    (rejected,) = (
        await api.client.get("/v1/duplicates", params={"state": "rejected"}, headers=api.token())
    ).json()
    assert rejected["id"] == duplicate["id"]  # the two are different people after all

    again = await api.client.post(undo, json={"reason": "twins"}, headers=api.token())
    assert again.status_code == 409
    assert again.json()["detail"].startswith("already undone")
