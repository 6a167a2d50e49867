"""Data-sharing agreements over HTTP: an operator manages every council's, a council's
information-governance team only its own; caseworkers and partners manage none."""

from __future__ import annotations

import pytest

from shared.auth import OrganisationKind, Role
from tests.integration.partners.conftest import PartnersApi, new_council

pytestmark = pytest.mark.integration


def ig(partners: PartnersApi, council: str) -> dict[str, str]:
    return partners._bearer(council, OrganisationKind.COUNCIL, [Role.INFORMATION_GOVERNANCE])


def terms(organization_id: str, council: str, **changes: object) -> dict[str, object]:
    return {
        "organization_id": organization_id,
        "council": council,
        "reference": f"DSA-{council}-1",
        "needs": ["food"],
        "lawful_bases": ["consent", "public_task"],
        "starts_on": "2026-01-01",
        **changes,
    }


async def test_an_ig_team_manages_its_own_councils_agreements_and_sees_no_other(
    partners: PartnersApi,
) -> None:
    await partners.add_partner("pantry")  # with an agreement with partners.council
    pantry = partners.organizations["pantry"]
    other = new_council()
    client = partners.client

    # the IG team of another council cannot record one for this council, nor see this one
    refused = await client.post(
        "/v1/agreements", json=terms(pantry, partners.council), headers=ig(partners, other)
    )
    assert refused.status_code == 403, refused.text
    theirs = await client.get("/v1/agreements", headers=ig(partners, other))
    assert theirs.status_code == 200 and theirs.json() == []
    asked = await client.get(
        "/v1/agreements", params={"council": partners.council}, headers=ig(partners, other)
    )
    assert asked.status_code == 403

    created = await client.post(
        "/v1/agreements",
        json=terms(pantry, partners.council),
        headers=ig(partners, partners.council),
    )
    assert created.status_code == 201, created.text
    agreement_id = created.json()["id"]
    for path, method in ((f"/v1/agreements/{agreement_id}", "GET"),):
        hidden = await client.request(method, path, headers=ig(partners, other))
        assert hidden.status_code == 404
    not_theirs = await client.post(
        f"/v1/agreements/{agreement_id}/end",
        json={"reason": "not ours"},
        headers=ig(partners, other),
    )
    assert not_theirs.status_code == 404

    mine = await client.get("/v1/agreements", headers=ig(partners, partners.council))
    assert mine.status_code == 200
    assert {a["reference"] for a in mine.json()} == {
        f"DSA {partners.council} pantry",
        f"DSA-{partners.council}-1",
    }
    assert all(a["in_force"] for a in mine.json())

    ended = await client.post(
        f"/v1/agreements/{agreement_id}/end",
        json={"reason": "replaced by a new agreement"},
        headers=ig(partners, partners.council),
    )
    assert ended.status_code == 200, ended.text
    body = ended.json()
    assert body["in_force"] is False and body["ended_at"] is not None
    assert [h["change"] for h in body["history"]] == ["created", "ended"]
    again = await client.post(
        f"/v1/agreements/{agreement_id}/end",
        json={"reason": "twice"},
        headers=partners.operator(),
    )
    assert again.status_code == 409


async def test_an_operator_manages_every_councils_and_others_none(partners: PartnersApi) -> None:
    await partners.add_partner("pantry")
    pantry = partners.organizations["pantry"]
    other = new_council()
    client = partners.client
    created = await client.post(
        "/v1/agreements", json=terms(pantry, other), headers=partners.operator()
    )
    assert created.status_code == 201, created.text
    every = await client.get(
        "/v1/agreements", params={"organization_id": pantry}, headers=partners.operator()
    )
    assert {a["council"] for a in every.json()} == {partners.council, other}
    read = await client.get(f"/v1/agreements/{created.json()['id']}", headers=partners.operator())
    assert read.status_code == 200 and read.json()["council"] == other

    for headers in (partners.council_caseworker(), partners.partner("pantry")):
        assert (await client.get("/v1/agreements", headers=headers)).status_code == 403
        denied = await client.post("/v1/agreements", json=terms(pantry, other), headers=headers)
        assert denied.status_code == 403

    backwards = terms(pantry, other, reference="x", starts_on="2026-02-01", ends_on="2026-01-01")
    invalid = await client.post("/v1/agreements", json=backwards, headers=partners.operator())
    assert invalid.status_code == 422
    unknown = terms("00000000-0000-4000-8000-000000000000", other)
    assert (
        await client.post("/v1/agreements", json=unknown, headers=partners.operator())
    ).status_code == 422
