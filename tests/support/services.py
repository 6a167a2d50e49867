"""Running a service in-process for a test: its app over HTTP, its consumer on the broker,
and a publisher that plays the other services."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import session_factory
from shared.events import CloudEvent
from shared.events.catalogue import CATALOGUE
from shared.http import create_app
from shared.messaging.consumer import EventConsumer
from shared.messaging.kafka import new_producer
from shared.messaging.outbox import Outbox
from shared.messaging.sealing import Keystore
from shared.service import ServiceDefinition
from shared.settings import ServiceSettings
from shared.worker import unit_of_work_for_event
from tests.integration.messaging_helpers import wait_for
from tests.support.infrastructure import Broker


@contextlib.asynccontextmanager
async def serve(
    definition: ServiceDefinition, settings: ServiceSettings
) -> AsyncIterator[tuple[httpx.AsyncClient, AsyncEngine]]:
    app = create_app(definition, settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url=f"http://{definition.name}"
        ) as client:
            yield client, app.state.engine


@contextlib.asynccontextmanager
async def running_consumer(
    definition: ServiceDefinition,
    engine: AsyncEngine,
    settings: ServiceSettings,
    broker: Broker,
    *,
    group: str | None = None,
    group_id: str | None = None,
) -> AsyncIterator[EventConsumer]:
    """One of the service's consumer groups (``group``; its first by default) under a fresh
    group id (or ``group_id``: a second one started with it resumes where the first
    committed), joined before it yields; with the deployment's keystore, as the worker runs
    it (it opens sealed events)."""
    spec = next(c for c in definition.consumers if group in (None, c.group_id))
    keystore = Keystore(settings.keystore_database_url())
    outbox = Outbox(CATALOGUE, source=settings.source)
    runner = EventConsumer(
        type(spec)(group_id or f"{definition.name}-test-{uuid.uuid4().hex[:8]}", spec.handlers),
        registry=CATALOGUE,
        sessions=session_factory(engine),
        unit_of_work=partial(unit_of_work_for_event, definition, outbox, settings),
        bootstrap_servers=broker.bootstrap_servers,
        producer_factory=partial(new_producer, broker.bootstrap_servers, broker.profile),
        keystore=keystore,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))

    async def assigned() -> bool:
        return bool(runner.assigned_partitions)

    try:
        await wait_for(assigned, what=f"the {definition.name} consumer to join")
        yield runner
    finally:
        stop.set()
        await task
        await keystore.close()


@dataclass
class Publisher:
    producer: AIOKafkaProducer

    async def send(
        self, payload: BaseModel, subject: str, source: str = "/upstream/test"
    ) -> CloudEvent:
        event = CATALOGUE.envelope(payload, source=source, subject=subject)
        await self.resend(event)
        return event

    async def resend(self, event: CloudEvent) -> None:
        topic = CATALOGUE.by_name(event.type).topic.name  # type: ignore[union-attr]
        await self.producer.send_and_wait(
            topic, value=event.to_bytes(), key=(event.subject or "").encode()
        )


@contextlib.asynccontextmanager
async def publisher(bootstrap: str) -> AsyncIterator[Publisher]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        yield Publisher(producer)
    finally:
        await producer.stop()


@dataclass
class ServiceUnderTest:
    """A service running in-process: its HTTP client and its database."""

    client: httpx.AsyncClient
    engine: AsyncEngine

    async def count(self, table: str, where: str = "true", **params: object) -> int:
        async with self.engine.connect() as connection:
            return int(
                await connection.scalar(text(f"SELECT count(*) FROM {table} WHERE {where}"), params)
                or 0
            )

    async def events(self, suffix: str) -> list[dict[str, Any]]:
        """The data of every outbox event whose type ends with ``suffix`` (without .v1)."""
        async with self.engine.connect() as connection:
            rows = (
                (
                    await connection.execute(
                        text("SELECT envelope FROM outbox WHERE event_type = :t ORDER BY id"),
                        {"t": f"uk.upstream.{suffix}.v1"},
                    )
                )
                .scalars()
                .all()
            )
        return [row["data"] for row in rows]

    async def sql(self, statement: str, **params: object) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(text(statement), params)
