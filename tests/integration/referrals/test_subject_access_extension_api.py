"""Extending a subject access request's deadline over HTTP (UK GDPR Article 12(3)): a
council's IG officer (or an operator) extends it once, before the original deadline, by two
further months, with the reason and the day the resident was told; the status, the JSON
export and the page show both deadlines and the reason; the extension is audited. Extended
twice, past the deadline or complete: 409 with the reason; bad input: 422 naming the field;
a caseworker: 403; another council's IG officer: 404."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import holidays
import pytest
from sqlalchemy import text

from services.referrals.domain.subject_access import MAX_EXTENSION_REASON, extended_due_by
from tests.integration.referrals.conftest import ReferralsApi
from tests.integration.referrals.test_subject_access_api import REQUESTS, _resident, ig

pytestmark = pytest.mark.integration

REASON = "complex: records held by three services and a merged duplicate to review"


async def _open(api: ReferralsApi) -> dict[str, Any]:
    resident, _ = await _resident(api)
    opened = await api.client.post(REQUESTS, json={"resident_id": resident}, headers=ig(api))
    assert opened.status_code == 202, opened.text
    request: dict[str, Any] = opened.json()
    return request


def _extension(told_on: date | None = None, reason: str = REASON) -> dict[str, str]:
    return {"reason": reason, "resident_told_on": (told_on or date.today()).isoformat()}


async def test_an_ig_officer_extends_the_deadline_once(api: ReferralsApi) -> None:
    request = await _open(api)
    assert request["extension"] is None and request["original_due_by"] == request["due_by"]
    url = f"{REQUESTS}/{request['id']}/extension"

    extended = await api.client.post(url, json=_extension(), headers=ig(api))
    assert extended.status_code == 200, extended.text
    body = extended.json()
    received = date.fromisoformat(request["requested_at"][:10])
    england = holidays.country_holidays(
        "GB", subdiv="ENG", years=[received.year, received.year + 1]
    )
    assert body["original_due_by"] == request["due_by"]
    assert body["due_by"] == extended_due_by(received, england).isoformat()
    assert body["due_by"] > body["original_due_by"]
    assert body["extension"]["due_by"] == body["due_by"]
    assert body["extension"]["reason"] == REASON
    assert body["extension"]["resident_told_on"] == date.today().isoformat()
    assert body["extension"]["extended_by"] == "dpo-person"
    assert body["status"] == "in_progress"

    status = (await api.client.get(f"{REQUESTS}/{request['id']}", headers=ig(api))).json()
    assert (status["due_by"], status["original_due_by"]) == (body["due_by"], request["due_by"])
    assert status["extension"]["reason"] == REASON
    export = await api.client.get(f"{REQUESTS}/{request['id']}/export", headers=ig(api))
    assert export.json()["request"]["extension"]["reason"] == REASON
    page = await api.client.get(f"{REQUESTS}/{request['id']}/export?format=html", headers=ig(api))
    assert "Originally due by" in page.text and request["due_by"] in page.text
    assert body["due_by"] in page.text and "complex: records held by three services" in page.text

    again = await api.client.post(url, json=_extension(), headers=ig(api))
    assert again.status_code == 409, again.text
    assert "extended already" in again.json()["detail"]
    async with api.engine.connect() as connection:
        audited = (
            await connection.scalars(
                text(
                    "SELECT operation FROM audit_log WHERE resident_ids ? :r "
                    "AND operation = 'subject_access_extension'"
                ),
                {"r": request["resident_id"]},
            )
        ).all()
        held = await connection.scalar(text("SELECT count(*) FROM subject_access_extensions"))
    assert audited == ["subject_access_extension"] and held == 1


async def test_past_the_original_deadline_it_is_refused(api: ReferralsApi) -> None:
    request = await _open(api)
    async with api.engine.begin() as connection:  # received 40 days ago, due 5 days ago
        await connection.execute(
            text(
                "UPDATE subject_access_requests SET requested_at = now() - interval '40 days', "
                "due_by = current_date - 5 WHERE id = :i"
            ),
            {"i": request["id"]},
        )
    refused = await api.client.post(
        f"{REQUESTS}/{request['id']}/extension",
        json=_extension(date.today() - timedelta(days=30)),
        headers=ig(api),
    )
    assert refused.status_code == 409, refused.text
    assert "has passed" in refused.json()["detail"]
    status = (await api.client.get(f"{REQUESTS}/{request['id']}", headers=ig(api))).json()
    assert status["extension"] is None and status["status"] == "overdue"


async def test_bad_input_is_a_422_naming_the_field(api: ReferralsApi) -> None:
    request = await _open(api)
    url = f"{REQUESTS}/{request['id']}/extension"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"resident_told_on": date.today().isoformat()}, "reason"),
        (_extension(reason="   "), "reason"),
        (_extension(reason="x" * (MAX_EXTENSION_REASON + 1)), "reason"),
        ({"reason": REASON}, "resident_told_on"),
        ({"reason": REASON, "resident_told_on": "last week"}, "resident_told_on"),
        (_extension(date.today() + timedelta(days=1)), "resident_told_on"),
        (_extension(date.today() - timedelta(days=400)), "resident_told_on"),
    ]
    for body, field in cases:
        refused = await api.client.post(url, json=body, headers=ig(api))
        assert refused.status_code == 422, (body, refused.text)
        assert field in refused.text, (body, refused.text)
    status = (await api.client.get(f"{REQUESTS}/{request['id']}", headers=ig(api))).json()
    assert status["extension"] is None


async def test_who_may_extend(api: ReferralsApi) -> None:
    request = await _open(api)
    url = f"{REQUESTS}/{request['id']}/extension"
    caseworker = await api.client.post(url, json=_extension(), headers=api.token())
    assert caseworker.status_code == 403
    other = await api.client.post(url, json=_extension(), headers=ig(api, api.other_council))
    assert other.status_code == 404
    unknown = await api.client.post(
        f"{REQUESTS}/00000000-0000-4000-8000-000000000000/extension",
        json=_extension(),
        headers=ig(api),
    )
    assert unknown.status_code == 404
    operator = await api.client.post(url, json=_extension(), headers=api.token("operator"))
    assert operator.status_code == 200, operator.text
