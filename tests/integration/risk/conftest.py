"""The risk service in-process over HTTP on a real database; its consumer on the broker."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from services.risk.bootstrap import SERVICE
from services.risk.settings import RiskSettings
from shared.auth import OrganisationKind, Role, mint_token
from shared.messaging.consumer import EventConsumer
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


@pytest.fixture
async def risk(service_database: MakeDatabase) -> AsyncIterator[RiskApi]:
    council = f"E0{random.randint(7, 9)}{random.randint(0, 99999):06d}"
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
