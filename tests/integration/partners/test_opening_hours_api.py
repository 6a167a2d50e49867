"""A service's opening hours on the service API: set by the operator or the partner, refused
field by field when they cannot be read, and published as ORUK weekly schedules."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.partners.conftest import PartnersApi
from tests.integration.partners.test_directory_and_webhooks import needs_standards, schema, valid

pytestmark = pytest.mark.integration

SATURDAYS = [{"day": "SA", "opens": "09:00", "closes": "17:00"}]


@needs_standards
async def test_opening_hours_are_set_refused_by_field_and_published(partners: PartnersApi) -> None:
    service_id = await partners.add_partner("stratford-food-bank", opening_hours=SATURDAYS)
    me = partners.partner("stratford-food-bank")
    full = (await partners.client.get(f"/services/{service_id}")).json()
    valid(full, schema("service"))
    assert [(s["freq"], s["byday"], s["opens_at"], s["closes_at"]) for s in full["schedules"]] == [
        ("WEEKLY", "SA", "09:00:00", "17:00:00")
    ]

    body: dict[str, Any] = {
        "organization_id": partners.organizations["stratford-food-bank"],
        "name": "stratford-food-bank service",
        "description": "Food parcels",
        "needs": ["food"],
        "councils": [partners.council],
        "capacity": 5,
    }
    refused = {
        "opening_hours.0.day": [{"day": "SAT", "opens": "09:00", "closes": "17:00"}],
        "opening_hours.0.closes": [{"day": "SA", "opens": "17:00", "closes": "09:00"}],
        "opening_hours": SATURDAYS * 2,
    }
    for field, hours in refused.items():
        answer = await partners.client.put(
            f"/v1/services/{service_id}", headers=me, json={**body, "opening_hours": hours}
        )
        assert answer.status_code == 422, answer.text
        assert [e["field"] for e in answer.json()["errors"]] == [field]

    # the partner clears them: its offers are due in the deployment's working week again
    cleared = await partners.client.put(
        f"/v1/services/{service_id}", headers=me, json={**body, "opening_hours": None}
    )
    assert cleared.status_code == 200, cleared.text
    full = (await partners.client.get(f"/services/{service_id}")).json()
    assert "schedules" not in full
