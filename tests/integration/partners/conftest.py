"""The partners service in-process over HTTP on a real database, with a directory built
through its own API; events played in through its real consumer on the broker; and units of
work for calling its use cases directly."""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from devtools.embedded import drop_database, ensure_database, with_database
from services.partners.bootstrap import SERVICE
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from services.partners.settings import PartnersSettings
from shared.auth import OrganisationKind, Role, mint_token
from shared.db import session_factory
from shared.events.catalogue import CATALOGUE
from shared.events.payloads import CaseReadyForRouting, ContactRoute, RoutingPacket
from shared.messaging.consumer import EventConsumer
from shared.messaging.outbox import Outbox
from shared.migrations import upgrade
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

    def council_caseworker(self) -> dict[str, str]:
        return self._bearer(self.council, OrganisationKind.COUNCIL, [Role.CASEWORKER])

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
                "agreements": [
                    {
                        "council": self.council,
                        "reference": f"DSA {self.council} {name}",
                        "needs": list(needs),
                        "lawful_bases": ["consent", "vital_interests"],
                        "special_category": "special_category" in categories,
                        "starts_on": "2020-01-01",
                    }
                ],
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


def new_council() -> str:
    """A council of this test's own: the topics and a module's database are shared."""
    return f"E0{random.randint(7, 9)}{random.randint(0, 99999):06d}"


def settings_for(database_url: str) -> PartnersSettings:
    return PartnersSettings(
        database_url=database_url,
        allow_http_webhooks=True,
        webhook_timeout_seconds=0.5,
        max_offers_per_need=3,
    )


@contextlib.asynccontextmanager
async def work_on(
    engine: AsyncEngine, settings: PartnersSettings, **extras: Any
) -> AsyncIterator[PartnersUnitOfWork]:
    """A unit of work on its own session, as a route or a timer gets one."""
    async with session_factory(engine)() as session:
        yield PartnersUnitOfWork(
            session=session,
            outbox=Outbox(CATALOGUE, source=settings.source),
            settings=settings,
            **extras,
        )


@pytest.fixture
async def isolated_partners(service_database: MakeDatabase) -> AsyncIterator[PartnersApi]:
    """The service on a database of this test's own."""
    settings = settings_for(await service_database("partners"))
    async with serve(SERVICE, settings) as (client, engine):
        yield PartnersApi(client, engine, settings, new_council())


@pytest.fixture
def partners(isolated_partners: PartnersApi) -> PartnersApi:
    """The service for one test; a module may share one stack instead (``shared_stack``)."""
    return isolated_partners


@pytest.fixture
async def partners_consumer(
    isolated_partners: PartnersApi, kafka: Broker
) -> AsyncIterator[EventConsumer]:
    """A consumer group of the test's own, on the test's own database."""
    engine, settings = isolated_partners.engine, isolated_partners.settings
    async with running_consumer(SERVICE, engine, settings, kafka) as runner:
        yield runner


@dataclass
class SharedStack:
    """One database, app and consumer group for a whole module: joining a consumer group
    takes seconds, so it is done once. Each test takes its own council and partners."""

    client: Any
    engine: AsyncEngine
    settings: PartnersSettings
    consumer: EventConsumer

    def partners(self) -> PartnersApi:
        return PartnersApi(self.client, self.engine, self.settings, new_council())


@pytest.fixture(scope="module")
async def shared_stack(postgres_admin_url: str, kafka: Broker) -> AsyncIterator[SharedStack]:
    name = f"test_partners_{uuid.uuid4().hex[:10]}"
    await ensure_database(postgres_admin_url, name)
    try:
        settings = settings_for(with_database(postgres_admin_url, name))
        upgrade(SERVICE, settings.database_url.get_secret_value())
        async with (
            serve(SERVICE, settings) as (client, engine),
            running_consumer(SERVICE, engine, settings, kafka) as consumer,
        ):
            yield SharedStack(client, engine, settings, consumer)
    finally:
        await drop_database(postgres_admin_url, name)


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
