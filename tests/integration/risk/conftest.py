"""The risk service in-process over HTTP on a real database; its consumer on the broker; and
its use cases called directly on a migrated database (no broker, no HTTP)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.risk.bootstrap import SERVICE
from services.risk.service_layer.active_ruleset import ActiveRuleset
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from services.risk.settings import RiskSettings
from shared.auth import OrganisationKind, Role, mint_token
from shared.db import create_engine, session_factory
from shared.events.catalogue import CATALOGUE
from shared.messaging.consumer import EventConsumer
from shared.messaging.outbox import Outbox
from tests.conftest import MakeDatabase
from tests.support.infrastructure import Broker
from tests.support.services import Publisher, ServiceUnderTest, running_consumer, serve
from tests.support.services import publisher as start_publisher


@dataclass
class RiskApi(ServiceUnderTest):
    settings: RiskSettings
    council: str

    def token(self, kind: str = "data_feed") -> dict[str, str]:
        principals = {
            "data_feed": (self.council, OrganisationKind.COUNCIL, [Role.DATA_FEED]),
            "caseworker": (self.council, OrganisationKind.COUNCIL, [Role.CASEWORKER]),
            "other_council": (
                "E09000001",
                OrganisationKind.COUNCIL,
                [Role.CASEWORKER, Role.DATA_FEED],
            ),
            "operator": ("operator", OrganisationKind.OPERATOR, [Role.OPERATOR]),
        }
        org, org_kind, roles = principals[kind]
        token = mint_token(
            self.settings, subject=f"{kind}-person", organisation=org, kind=org_kind, roles=roles
        )
        return {"Authorization": f"Bearer {token}"}

    async def upload(self, body: str, fmt: str = "csv", kind: str = "data_feed") -> dict[str, Any]:
        content_type = "text/csv" if fmt == "csv" else "application/x-ndjson"
        response = await self.client.post(
            "/v1/signals/import",
            content=body.encode(),
            headers={**self.token(kind), "content-type": content_type},
        )
        assert response.status_code == 200, response.text
        return response.json()


def new_council() -> str:
    return f"E0{random.randint(7, 9)}{random.randint(0, 99999):06d}"


@pytest.fixture
async def risk(service_database: MakeDatabase) -> AsyncIterator[RiskApi]:
    council = new_council()
    settings = RiskSettings(database_url=await service_database("risk"), import_batch_size=3)
    async with serve(SERVICE, settings) as (client, engine):
        yield RiskApi(client, engine, settings, council)


@pytest.fixture
async def risk_consumer(risk: RiskApi, kafka: Broker) -> AsyncIterator[EventConsumer]:
    async with running_consumer(SERVICE, risk.engine, risk.settings, kafka) as runner:
        yield runner


@pytest.fixture
async def publisher(kafka: Broker) -> AsyncIterator[Publisher]:
    async with start_publisher(kafka.bootstrap_servers) as sender:
        yield sender


@dataclass
class RiskDatabase:
    """A migrated risk database and units of work on it, as a route or handler gets them."""

    engine: AsyncEngine
    settings: RiskSettings
    council: str
    rulesets: ActiveRuleset

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[RiskUnitOfWork]:
        async with session_factory(self.engine)() as session:
            yield RiskUnitOfWork(
                session=session,
                outbox=Outbox(CATALOGUE, source=self.settings.source),
                settings=self.settings,
                rulesets=self.rulesets,
            )

    async def count(self, table: str, where: str = "true", **params: object) -> int:
        async with self.engine.connect() as connection:
            found = await connection.scalar(
                text(f"SELECT count(*) FROM {table} WHERE {where}"), params
            )
            return int(found or 0)

    async def rows(self, query: str, **params: object) -> list[dict[str, Any]]:
        async with self.engine.connect() as connection:
            return [dict(row) for row in (await connection.execute(text(query), params)).mappings()]

    async def events(self, suffix: str) -> list[dict[str, Any]]:
        """The data of every outbox event whose type ends with ``suffix`` (without .v1)."""
        found = await self.rows(
            "SELECT envelope FROM outbox WHERE event_type = :t ORDER BY id",
            t=f"uk.upstream.{suffix}.v1",
        )
        return [row["envelope"]["data"] for row in found]

    async def sql(self, statement: str, **params: object) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(text(statement), params)


@pytest.fixture
async def risk_database(service_database: MakeDatabase) -> AsyncIterator[RiskDatabase]:
    settings = RiskSettings(database_url=await service_database("risk"), import_batch_size=3)
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=2)
    try:
        # A provider of its own: what one test activates is not another's ruleset in force.
        yield RiskDatabase(engine, settings, new_council(), ActiveRuleset())
    finally:
        await engine.dispose()
