"""The referrals service in-process over HTTP, on a real database migrated with its real
revisions; its consumer on the real broker. Each test serves a council code of its own, so
tests sharing the broker's topics never act on each other's residents."""

from __future__ import annotations

import copy
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.referrals.bootstrap import SERVICE
from services.referrals.settings import ReferralsSettings
from shared.auth import OrganisationKind, Role, mint_token
from shared.messaging.consumer import EventConsumer
from tests.conftest import MakeDatabase
from tests.support.infrastructure import Broker
from tests.support.services import Publisher, ServiceUnderTest, running_consumer, serve
from tests.support.services import publisher as start_publisher

FOOD_BANK = "newham-food-bank"


@dataclass
class ReferralsApi(ServiceUnderTest):
    settings: ReferralsSettings
    council: str
    other_council: str

    def token(self, kind: str = "caseworker", organisation: str | None = None) -> dict[str, str]:
        principals = {
            "caseworker": (
                organisation or self.council,
                OrganisationKind.COUNCIL,
                [Role.CASEWORKER, Role.REFERRER],
            ),
            "other_council": (
                self.other_council,
                OrganisationKind.COUNCIL,
                [Role.CASEWORKER, Role.REFERRER],
            ),
            "food_bank": (
                organisation or FOOD_BANK,
                OrganisationKind.VCS,
                [Role.REFERRER, Role.PARTNER],
            ),
            "operator": ("operator", OrganisationKind.OPERATOR, [Role.OPERATOR]),
        }
        org, org_kind, roles = principals[kind]
        token = mint_token(
            self.settings, subject=f"{kind}-person", organisation=org, kind=org_kind, roles=roles
        )
        return {"Authorization": f"Bearer {token}"}

    async def refer(
        self, body: dict[str, Any], kind: str = "caseworker", **headers: str
    ) -> httpx.Response:
        return await self.client.post(
            "/v1/referrals", json=body, headers={**self.token(kind), **headers}
        )

    async def case(self, case_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/cases/{case_id}", headers=self.token())
        assert response.status_code == 200, response.text
        return response.json()


def unique_council() -> str:
    return f"E0{random.randint(7, 9)}{random.randint(0, 99999):06d}"


@pytest.fixture
async def api(service_database: MakeDatabase) -> AsyncIterator[ReferralsApi]:
    council, other = unique_council(), unique_council()
    settings = ReferralsSettings(
        database_url=await service_database("referrals"), councils=[council, other]
    )
    async with serve(SERVICE, settings) as (client, engine):
        yield ReferralsApi(client, engine, settings, council, other)


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


AMINA: dict[str, Any] = {
    "resident": {
        "given_name": "Amina",
        "family_name": "Okafor",
        "date_of_birth": "1984-03-02",
        "contact": {"phone": "07700 900123", "preferred": "phone"},
        "address": {"line": "12 Romford Road", "postcode": "e15 4ht"},
        "preferred_language": "en",
    },
    "needs": ["food", "money_and_debt"],
    "circumstances": ["no_food_in_home", "children_in_household"],
    "circumstances_text": "Lost her job last month; rent is two months behind.",
    "urgency": "high",
    "sharing": {
        "lawful_basis": "consent",
        "consent": {
            "given_by": "the resident",
            "method": "verbal",
            "given_at": "2026-11-20T10:00:00Z",
            "partner_kinds": ["food", "advice"],
        },
    },
}


def referral(**changes: Any) -> dict[str, Any]:
    return merge(AMINA, changes)


@pytest.fixture
async def consumer(api: ReferralsApi, kafka: Broker) -> AsyncIterator[EventConsumer]:
    async with running_consumer(SERVICE, api.engine, api.settings, kafka) as runner:
        yield runner


@pytest.fixture
async def publisher(kafka: Broker) -> AsyncIterator[Publisher]:
    async with start_publisher(kafka.bootstrap_servers) as sender:
        yield sender
