"""Every read of personal data leaves an audit row, and a council's information-governance
team reads the trail. The first test calls the operations the OpenAPI document declares
personal (``x-personal-data``) and checks what each row says. That every operation of the
three services declares it, and that each one declared personal writes a row, is
``tests/integration/test_audit_of_reads.py``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.audit import PERSONAL_DATA
from shared.auth import OrganisationKind, Role, mint_token
from tests.integration.referrals.conftest import FOOD_BANK, ReferralsApi, referral

pytestmark = pytest.mark.integration


def _ig_token(api: ReferralsApi, council: str | None = None) -> dict[str, str]:
    token = mint_token(
        api.settings,
        subject="dpo-person",
        organisation=council or api.council,
        kind=OrganisationKind.COUNCIL,
        roles=[Role.INFORMATION_GOVERNANCE],
    )
    return {"Authorization": f"Bearer {token}"}


async def _rows(api: ReferralsApi, query: str, **params: object) -> list[dict[str, Any]]:
    async with api.engine.connect() as connection:
        return [dict(row) for row in (await connection.execute(text(query), params)).mappings()]


async def _audit_rows(api: ReferralsApi, operation: str) -> list[dict[str, Any]]:
    return await _rows(api, "SELECT * FROM audit_log WHERE operation = :o ORDER BY id", o=operation)


async def test_every_operation_returning_personal_data_writes_an_audit_row(
    api: ReferralsApi,
) -> None:
    first = (await api.refer(referral())).json()
    moved = (await api.refer(referral(resident={"address": {"postcode": "E8 1DY"}}))).json()
    case_id = first["case_id"]
    charity = (await api.refer(referral(council=api.council), kind="food_bank")).json()
    (duplicate,) = (await api.client.get("/v1/duplicates", headers=api.token())).json()
    (resident,) = await _rows(api, "SELECT resident_id FROM cases WHERE id = :c", c=case_id)
    resident_id = str(resident["resident_id"])

    calls: dict[str, tuple[str, Callable[[], Awaitable[httpx.Response]]]] = {
        "GET /v1/cases": ("case_queue", lambda: api.client.get("/v1/cases", headers=api.token())),
        "GET /v1/cases/{case_id}": (
            "case_detail",
            lambda: api.client.get(f"/v1/cases/{case_id}", headers=api.token()),
        ),
        "GET /v1/referrals/{referral_id}": (
            "referral_progress",
            lambda: api.client.get(
                f"/v1/referrals/{charity['referral_id']}", headers=api.token("food_bank")
            ),
        ),
        "GET /v1/duplicates": (
            "possible_duplicates",
            lambda: api.client.get("/v1/duplicates", headers=api.token()),
        ),
        "POST /v1/duplicates/{duplicate_id}/reject": (
            "rejected_duplicate",
            lambda: api.client.post(
                f"/v1/duplicates/{duplicate['id']}/reject", headers=api.token()
            ),
        ),
        "POST /v1/duplicates/{duplicate_id}/confirm": (
            "confirmed_duplicate",
            lambda: _confirm_another(api),
        ),
        "GET /v1/audit": (
            "audit_trail",
            lambda: api.client.get(f"/v1/audit?resident={resident_id}", headers=_ig_token(api)),
        ),
        "GET /v1/audit/export": (
            "audit_export",
            lambda: api.client.get("/v1/audit/export?format=csv", headers=_ig_token(api)),
        ),
    }
    document = (await api.client.get("/openapi.json")).json()
    declared = {
        f"{method.upper()} {path}"
        for path, methods in document["paths"].items()
        for method, spec in methods.items()
        if spec.get(PERSONAL_DATA)
    }
    # That each one declared personal is called: tests/integration/test_audit_of_reads.py.
    assert set(calls) <= declared

    for name, (operation, call) in calls.items():
        before = len(await _audit_rows(api, operation))
        response = await call()
        assert response.status_code == 200, (name, response.text)
        rows = await _audit_rows(api, operation)
        assert len(rows) > before, name
        row = rows[-1]
        assert row["subject"] and row["organisation"] and row["roles"], name
        assert row["data_categories"] and row["purpose"], name
    (detail,) = await _audit_rows(api, "case_detail")
    assert (detail["subject"], detail["organisation"], detail["organisation_kind"]) == (
        "caseworker-person",
        api.council,
        "council",
    )
    assert detail["case_ids"] == [case_id] and detail["resident_ids"] == [resident_id]
    assert "contact" in detail["data_categories"] and detail["council"] == api.council
    (progress,) = await _audit_rows(api, "referral_progress")
    assert progress["organisation"] == FOOD_BANK
    assert moved["possible_duplicates"] == 1


async def _confirm_another(api: ReferralsApi) -> httpx.Response:
    """A second possible duplicate, to confirm."""
    await api.refer(referral(resident={"address": {"postcode": "E7 9AB"}}))
    listed = (await api.client.get("/v1/duplicates", headers=api.token())).json()
    return await api.client.post(f"/v1/duplicates/{listed[0]['id']}/confirm", headers=api.token())


async def test_the_ig_team_reads_its_own_council_s_trail_per_resident_and_per_user(
    api: ReferralsApi,
) -> None:
    case_id = (await api.refer(referral())).json()["case_id"]
    other_case = (await api.refer(referral(), kind="other_council")).json()["case_id"]
    for case in (case_id,):
        assert (await api.client.get(f"/v1/cases/{case}", headers=api.token())).status_code == 200
    other = await api.client.get(f"/v1/cases/{other_case}", headers=api.token("other_council"))
    assert other.status_code == 200
    (row,) = await _rows(api, "SELECT resident_id FROM cases WHERE id = :c", c=case_id)
    resident = str(row["resident_id"])

    by_resident = await api.client.get(f"/v1/audit?resident={resident}", headers=_ig_token(api))
    assert by_resident.status_code == 200, by_resident.text
    assert [e["operation"] for e in by_resident.json()] == ["case_detail"]
    by_user = (
        await api.client.get("/v1/audit?subject=caseworker-person", headers=_ig_token(api))
    ).json()
    assert {e["council"] for e in by_user} == {api.council}  # not the other council's reads
    # The IG team's own read of the trail is audited too.
    assert (await _audit_rows(api, "audit_trail"))[0]["subject"] == "dpo-person"

    refused = await api.client.get(f"/v1/audit?resident={resident}", headers=api.token())
    assert refused.status_code == 403  # a caseworker does not read the trail
    neither = await api.client.get("/v1/audit", headers=_ig_token(api))
    assert neither.status_code == 422  # a search names a resident, a case, a user or an org


async def test_the_trail_is_append_only(api: ReferralsApi) -> None:
    case_id = (await api.refer(referral())).json()["case_id"]
    await api.case(case_id)
    for statement in ("UPDATE audit_log SET subject = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            await api.sql(statement)
    assert len(await _audit_rows(api, "case_detail")) == 1
