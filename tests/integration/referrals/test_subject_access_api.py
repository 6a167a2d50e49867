"""Subject access over HTTP: a council's IG officer (or an operator) opens a request for a
resident of its council and reads its status and export, as JSON and as a page; another
council's IG officer finds neither the resident nor the request; a caseworker may not."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from shared.auth import OrganisationKind, Role, mint_token
from tests.e2e.browser import launched_browser, new_page
from tests.integration.referrals.conftest import ReferralsApi, referral

pytestmark = pytest.mark.integration

REQUESTS = "/v1/subject-access-requests"


def ig(api: ReferralsApi, council: str | None = None) -> dict[str, str]:
    token = mint_token(
        api.settings,
        subject="dpo-person",
        organisation=council or api.council,
        kind=OrganisationKind.COUNCIL,
        roles=[Role.INFORMATION_GOVERNANCE],
    )
    return {"Authorization": f"Bearer {token}"}


async def _resident(api: ReferralsApi) -> tuple[str, str]:
    created = await api.refer(referral())
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]
    async with api.engine.connect() as connection:
        resident = await connection.scalar(
            text("SELECT resident_id FROM cases WHERE id = :c"), {"c": case_id}
        )
    return str(resident), case_id


async def test_an_ig_officer_requests_follows_and_reads_the_export(api: ReferralsApi) -> None:
    resident, case_id = await _resident(api)

    opened = await api.client.post(REQUESTS, json={"resident_id": resident}, headers=ig(api))
    assert opened.status_code == 202, opened.text
    request = opened.json()
    assert request["resident_id"] == resident and request["council"] == api.council
    assert request["status"] == "in_progress" and request["pending"] == ["partners", "risk"]
    assert date.fromisoformat(request["due_by"]) > date.fromisoformat(request["requested_at"][:10])

    status = await api.client.get(f"{REQUESTS}/{request['id']}", headers=ig(api))
    assert status.status_code == 200 and status.json()["contributed"] == ["referrals"]

    export = await api.client.get(f"{REQUESTS}/{request['id']}/export", headers=ig(api))
    assert export.status_code == 200, export.text
    (own,) = export.json()["contributions"]
    assert own["service"] == "referrals"
    assert own["sections"]["residents"][0]["given_name"] == "Amina"
    assert [c["id"] for c in own["sections"]["cases"]] == [case_id]

    page = await api.client.get(f"{REQUESTS}/{request['id']}/export?format=html", headers=ig(api))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    html = page.text
    assert '<html lang="en">' in html and html.count("<h1>") == 1
    assert "Amina" in html and "Romford Road" in html and "Still pending" in html
    assert "The partners service has not contributed yet" in html
    by_accept = await api.client.get(
        f"{REQUESTS}/{request['id']}/export", headers={**ig(api), "Accept": "text/html"}
    )
    assert by_accept.headers["content-type"].startswith("text/html")

    async with api.engine.connect() as connection:
        operations = (
            await connection.scalars(
                text("SELECT operation FROM audit_log WHERE resident_ids ? :r ORDER BY id"),
                {"r": resident},
            )
        ).all()
    assert operations[-5:] == [
        "subject_access_request",
        "subject_access_status",
        "subject_access_export",
        "subject_access_export",
        "subject_access_export",
    ]


async def test_another_councils_ig_officer_finds_nothing(api: ReferralsApi) -> None:
    resident, _ = await _resident(api)
    other = ig(api, api.other_council)
    refused = await api.client.post(REQUESTS, json={"resident_id": resident}, headers=other)
    assert refused.status_code == 404, refused.text
    request = (
        await api.client.post(REQUESTS, json={"resident_id": resident}, headers=ig(api))
    ).json()
    for path in (f"{REQUESTS}/{request['id']}", f"{REQUESTS}/{request['id']}/export"):
        assert (await api.client.get(path, headers=other)).status_code == 404
    assert await api.count("subject_access_requests") == 1


async def test_a_caseworker_may_not_and_an_operator_may(api: ReferralsApi) -> None:
    resident, _ = await _resident(api)
    body = {"resident_id": resident}
    assert (await api.client.post(REQUESTS, json=body, headers=api.token())).status_code == 403
    opened = await api.client.post(REQUESTS, json=body, headers=api.token("operator"))
    assert opened.status_code == 202, opened.text
    request_id = opened.json()["id"]
    for path in (f"{REQUESTS}/{request_id}", f"{REQUESTS}/{request_id}/export"):
        assert (await api.client.get(path, headers=api.token())).status_code == 403
        assert (await api.client.get(path, headers=api.token("operator"))).status_code == 200
    unknown = await api.client.post(
        REQUESTS, json={"resident_id": "00000000-0000-4000-8000-000000000000"}, headers=ig(api)
    )
    assert unknown.status_code == 404
    invalid = await api.client.post(REQUESTS, json={"resident_id": "nobody"}, headers=ig(api))
    assert invalid.status_code == 422


async def test_the_export_page_passes_axe_in_a_real_browser(api: ReferralsApi) -> None:
    resident, _ = await _resident(api)
    opened = await api.client.post(REQUESTS, json={"resident_id": resident}, headers=ig(api))
    page = await api.client.get(
        f"{REQUESTS}/{opened.json()['id']}/export?format=html", headers=ig(api)
    )
    async with launched_browser() as browser:
        checked = await new_page(browser)
        await checked.page.set_content(page.text)
        await checked.axe("subject access export")
        await checked.shot("subject-access-export")
