"""An erasure and another request about the same resident at the same moment: each waits for
the other (the erasure locks the person's records first, as a merge does), and neither gets a
500. A clash PostgreSQL still breaks (a deadlock) is a 503 saying to try again, which then
goes through."""

from __future__ import annotations

import asyncio

import httpx

from tests.integration.referrals.conftest import ReferralsApi, referral


async def referred(api: ReferralsApi, given: str) -> tuple[str, str]:
    """A new resident's (resident id, case id)."""
    response = await api.refer(referral(resident={"given_name": given}))
    assert response.status_code == 201, response.text
    case_id = response.json()["case_id"]
    return (await api.case(case_id))["resident"]["id"], case_id


def erasure(api: ReferralsApi, resident_id: str) -> asyncio.Future[httpx.Response]:
    return asyncio.ensure_future(
        api.client.post(
            "/v1/erasure-requests",
            headers=api.token("information_governance"),
            json={"resident_id": resident_id, "ground": "consent_withdrawn"},
        )
    )


async def test_two_erasures_of_one_resident_at_once_erase_her_once(api: ReferralsApi) -> None:
    resident_id, _ = await referred(api, "Amina")
    answers = await asyncio.gather(erasure(api, resident_id), erasure(api, resident_id))
    assert sorted(a.status_code for a in answers) == [202, 404], [a.text for a in answers]
    assert await api.count("erasure_requests") == 1
    assert await api.count("residents") == 0


async def test_an_erasure_beside_a_merge_and_case_actions_is_never_a_500(
    api: ReferralsApi,
) -> None:
    resident_id, case_id = await referred(api, "Chidi")
    other_id, _ = await referred(api, "Dayo")
    caseworker = api.token()
    answers = await asyncio.gather(
        erasure(api, resident_id),
        api.client.post(
            f"/v1/residents/{resident_id}/merge", headers=caseworker, json={"into": other_id}
        ),
        api.client.post(f"/v1/cases/{case_id}/notes", headers=caseworker, json={"text": "a call"}),
        api.client.post(
            f"/v1/cases/{case_id}/assign", headers=caseworker, json={"caseworker": "x"}
        ),
        api.refer(referral(resident={"given_name": "Chidi"})),
    )
    assert all(a.status_code < 500 or a.status_code == 503 for a in answers), [
        (a.status_code, a.text) for a in answers
    ]
    erased = answers[0]
    if erased.status_code == 503:  # a deadlock PostgreSQL broke: said so, and it goes again
        assert "try again" in erased.json()["detail"] and erased.headers["Retry-After"] == "1"
        erased = await erasure(api, resident_id)
    assert erased.status_code == 202, erased.text
    assert await api.count("erasure_requests") == 1
