"""The referrals service on a real database migrated with its real revisions: in-process
over HTTP, its consumer on the real broker, and its use cases called directly. Each test
serves council codes of its own, so tests sharing a database or the broker's topics never
act on each other's residents."""

from __future__ import annotations

import contextlib
import copy
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from devtools.embedded import drop_database, ensure_database, with_database
from devtools.stack import load_service
from services.referrals.bootstrap import SERVICE
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from services.referrals.settings import ReferralsSettings
from shared.auth import OrganisationKind, Principal, Role, mint_token
from shared.db import create_engine, session_factory
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import CloudEvent
from shared.messaging.consumer import EventConsumer
from shared.messaging.outbox import Outbox
from shared.migrations import upgrade
from tests.conftest import MakeDatabase
from tests.support.infrastructure import Broker
from tests.support.services import Publisher, ServiceUnderTest, running_consumer, serve
from tests.support.services import publisher as start_publisher

FOOD_BANK = "newham-food-bank"


def unique_council() -> str:
    return f"E0{random.randint(7, 9)}{random.randint(0, 99999):06d}"


def principal(kind: str, council: str, organisation: str | None = None) -> Principal:
    """The callers the tests play: a council caseworker, a food bank, the operator."""
    principals = {
        "caseworker": (
            organisation or council,
            OrganisationKind.COUNCIL,
            [Role.CASEWORKER, Role.REFERRER],
        ),
        "food_bank": (organisation or FOOD_BANK, OrganisationKind.VCS, [Role.REFERRER]),
        "operator": ("operator", OrganisationKind.OPERATOR, [Role.OPERATOR]),
    }
    org, org_kind, roles = principals[kind]
    return Principal(
        subject=f"{kind}-person", organisation=org, kind=org_kind, roles=frozenset(roles)
    )


@dataclass
class ReferralsApi(ServiceUnderTest):
    settings: ReferralsSettings
    council: str
    other_council: str
    # In a database several tests share, only the events of this test's councils.
    own_events_only: bool = False

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
            "information_governance": (
                organisation or self.council,
                OrganisationKind.COUNCIL,
                [Role.INFORMATION_GOVERNANCE],
            ),
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

    async def events(self, suffix: str) -> list[dict[str, Any]]:
        found = await super().events(suffix)
        if not self.own_events_only:
            return found
        # Every event the referrals service writes names the case's council.
        return [e for e in found if e["council"] in (self.council, self.other_council)]


@pytest.fixture
async def api(service_database: MakeDatabase) -> AsyncIterator[ReferralsApi]:
    council, other = unique_council(), unique_council()
    settings = ReferralsSettings(
        database_url=await service_database("referrals"), councils=[council, other]
    )
    async with serve(SERVICE, settings) as (client, engine):
        yield ReferralsApi(client, engine, settings, council, other)


@dataclass
class SharedService:
    """One referrals service (database, app, consumer) for every test of a module; each test
    adds councils of its own to the ones it serves (``ReferralsApi.own_events_only``)."""

    client: httpx.AsyncClient
    engine: AsyncEngine
    settings: ReferralsSettings
    consumer: EventConsumer

    def api_for_new_councils(self) -> ReferralsApi:
        council, other = unique_council(), unique_council()
        self.settings.councils.extend([council, other])  # the app and consumer read these
        return ReferralsApi(
            self.client, self.engine, self.settings, council, other, own_events_only=True
        )


@contextlib.asynccontextmanager
async def module_database(admin_url: str) -> AsyncIterator[str]:
    """A referrals database migrated to head, like ``service_database``, for a whole module."""
    name = f"test_referrals_{uuid.uuid4().hex[:10]}"
    await ensure_database(admin_url, name)
    url = with_database(admin_url, name)
    try:
        upgrade(load_service("referrals"), url)
        yield url
    finally:
        await drop_database(admin_url, name)


@pytest.fixture(scope="module")
async def shared_service(postgres_admin_url: str, kafka: Broker) -> AsyncIterator[SharedService]:
    """Joining a consumer group takes seconds: the module's tests share one."""
    async with module_database(postgres_admin_url) as url:
        settings = ReferralsSettings(database_url=url, councils=[])
        async with (
            serve(SERVICE, settings) as (client, engine),
            running_consumer(SERVICE, engine, settings, kafka) as consumer,
        ):
            yield SharedService(client, engine, settings, consumer)


@pytest.fixture(scope="module")
async def publisher(kafka: Broker) -> AsyncIterator[Publisher]:
    async with start_publisher(kafka.bootstrap_servers) as sender:
        yield sender


@dataclass
class ReferralsDatabase:
    """A migrated referrals database, and units of work on it as a route, a handler or a
    timer gets them."""

    engine: AsyncEngine
    settings: ReferralsSettings
    council: str
    other_council: str
    outbox: Outbox = field(init=False)

    def __post_init__(self) -> None:
        self.outbox = Outbox(CATALOGUE, source=self.settings.source)

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[ReferralsUnitOfWork]:
        async with session_factory(self.engine)() as session:
            yield ReferralsUnitOfWork(session=session, outbox=self.outbox, settings=self.settings)

    @contextlib.asynccontextmanager
    async def applying(
        self, payload: BaseModel, subject: str, written_at: datetime | None = None
    ) -> AsyncIterator[ReferralsUnitOfWork]:
        """A unit of work inside an event handler: the consumer's transaction, committed
        when the block ends, as the consumer commits it with the inbox row. ``written_at``:
        the event's time (now, unless given)."""
        event: CloudEvent = CATALOGUE.envelope(
            payload, source="/upstream/test", subject=subject, time=written_at
        )
        async with session_factory(self.engine)() as session, session.begin():
            yield ReferralsUnitOfWork(
                session=session, outbox=self.outbox, settings=self.settings, event=event
            )

    def caller(self, kind: str = "caseworker", organisation: str | None = None) -> Principal:
        return principal(kind, self.council, organisation)

    async def rows(self, query: str, **params: object) -> list[dict[str, Any]]:
        async with self.engine.connect() as connection:
            return [dict(row) for row in (await connection.execute(text(query), params)).mappings()]

    async def count(self, table: str, where: str = "true", **params: object) -> int:
        (row,) = await self.rows(f"SELECT count(*) AS n FROM {table} WHERE {where}", **params)
        return int(row["n"])

    async def events(self, suffix: str) -> list[dict[str, Any]]:
        """The data of every outbox event whose type ends with ``suffix`` (without .v1)."""
        found = await self.rows(
            "SELECT envelope FROM outbox WHERE event_type = :t ORDER BY id",
            t=f"uk.upstream.{suffix}.v1",
        )
        return [row["envelope"]["data"] for row in found]


@pytest.fixture
async def referrals_database(service_database: MakeDatabase) -> AsyncIterator[ReferralsDatabase]:
    council, other = unique_council(), unique_council()
    settings = ReferralsSettings(
        database_url=await service_database("referrals"), councils=[council, other]
    )
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=2)
    try:
        yield ReferralsDatabase(engine, settings, council, other)
    finally:
        await engine.dispose()


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
