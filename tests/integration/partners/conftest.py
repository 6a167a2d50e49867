"""The partners service in-process over HTTP on a real database, with a directory built
through its own API; events played in through its real consumer on the broker."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import text

from services.partners.bootstrap import SERVICE
from services.partners.settings import PartnersSettings
from shared.auth import OrganisationKind, Role, mint_token
from shared.events.payloads import CaseReadyForRouting, ContactRoute, RoutingPacket
from shared.messaging.consumer import EventConsumer
from tests.conftest import MakeDatabase
from tests.integration.messaging_helpers import wait_for
from tests.support.infrastructure import Broker
from tests.support.services import Publisher, ServiceUnderTest, running_consumer, serve
from tests.support.services import publisher as start_publisher


@dataclass
class PartnersApi(ServiceUnderTest):
    settings: PartnersSettings
    council: str
    services: dict[str, str] = field(default_factory=dict)  # name -> service id
    organizations: dict[str, str] = field(default_factory=dict)  # name -> organization id

    def operator(self) -> dict[str, str]:
        return self._bearer("operator", OrganisationKind.OPERATOR, [Role.OPERATOR])

    def partner(self, name: str) -> dict[str, str]:
        return self._bearer(self.organizations[name], OrganisationKind.VCS, [Role.PARTNER])

    def _bearer(self, org: str, kind: OrganisationKind, roles: list[Role]) -> dict[str, str]:
        token = mint_token(
            self.settings, subject=f"person-at-{org}", organisation=org, kind=kind, roles=roles
        )
        return {"Authorization": f"Bearer {token}"}

    async def add_partner(
        self,
        name: str,
        *,
        kind: str = "food",
        needs: tuple[str, ...] = ("food",),
        capacity: int = 5,
        languages: tuple[str, ...] = ("en",),
        categories: tuple[str, ...] = (),
        **service: Any,
    ) -> str:
        org = await self.client.post(
            "/v1/organizations",
            headers=self.operator(),
            json={
                "name": name,
                "description": f"{name}, a local charity",
                "kind": kind,
                "agreement": {
                    "lawful_bases": ["consent", "vital_interests"],
                    "data_categories": list(categories),
                },
            },
        )
        assert org.status_code == 201, org.text
        self.organizations[name] = org.json()["id"]
        body = {
            "organization_id": org.json()["id"],
            "name": f"{name} service",
            "description": f"What {name} offers",
            "needs": list(needs),
            "councils": [self.council],
            "languages": list(languages),
            "capacity": capacity,
            **service,
        }
        created = await self.client.post("/v1/services", headers=self.operator(), json=body)
        assert created.status_code == 201, created.text
        self.services[name] = created.json()["id"]
        return created.json()["id"]

    def ready(self, needs: tuple[str, ...] = ("food",), **packet: Any) -> CaseReadyForRouting:
        return CaseReadyForRouting(
            case_id=str(uuid.uuid4()),
            council=self.council,
            lawful_basis="consent",
            consent_partner_kinds=["any_voluntary"],
            packet=RoutingPacket(
                **{
                    "first_name": "Amina",
                    "contact": ContactRoute(method="phone", value="07700 900123"),
                    "needs": list(needs),
                    "council": self.council,
                    "postcode_district": "E15",
                    "age_years": 42,
                    "urgency": "high",
                    "summary": "Needs food. Urgency: high.",
                    **packet,
                }
            ),
        )


@pytest.fixture
async def partners(service_database: MakeDatabase) -> AsyncIterator[PartnersApi]:
    council = f"E0{random.randint(7, 9)}{random.randint(0, 99999):06d}"
    settings = PartnersSettings(
        database_url=await service_database("partners"),
        allow_http_webhooks=True,
        webhook_timeout_seconds=0.5,
        max_offers_per_need=3,
    )
    async with serve(SERVICE, settings) as (client, engine):
        yield PartnersApi(client, engine, settings, council)


@pytest.fixture
async def partners_consumer(partners: PartnersApi, kafka: Broker) -> AsyncIterator[EventConsumer]:
    async with running_consumer(SERVICE, partners.engine, partners.settings, kafka) as runner:
        yield runner


@pytest.fixture
async def publisher(kafka: Broker) -> AsyncIterator[Publisher]:
    async with start_publisher(kafka.bootstrap_servers) as sender:
        yield sender


async def offers_of(partners: PartnersApi, name: str) -> list[dict[str, Any]]:
    response = await partners.client.get("/v1/inbox/offers", headers=partners.partner(name))
    assert response.status_code == 200, response.text
    return response.json()


async def until_offered(partners: PartnersApi, name: str) -> dict[str, Any]:
    async def offered() -> dict[str, Any] | None:
        waiting = [o for o in await offers_of(partners, name) if o["status"] == "offered"]
        return waiting[0] if waiting else None

    try:
        return await wait_for(offered, timeout=30, what=f"an offer to {name}")
    except AssertionError:
        async with partners.engine.connect() as connection:
            state = (
                await connection.execute(
                    text(
                        "SELECT r.case_id, r.status, r.unroutable_reason, o.organization_id, "
                        "o.status "
                        "FROM route_requests r LEFT JOIN offers o ON o.request_id = r.id"
                    )
                )
            ).all()
            state = [
                *state,
                *(
                    await connection.execute(text("SELECT organization_id, decision FROM offers"))
                ).all(),
            ]
        raise AssertionError(
            f"no offer to {name} ({partners.organizations}); state: {state}"
        ) from None


async def events_of(partners: PartnersApi, suffix: str, case_id: str) -> list[dict[str, Any]]:
    """This test's events: the topics are shared, so earlier tests' cases pass through too
    (routed here as unroutable: no partner in this test covers their council)."""
    return [e for e in await partners.events(suffix) if e["case_id"] == case_id]
