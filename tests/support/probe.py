"""A probe: the smallest domain that exercises the shared machinery for real.

The producer side writes a probe order (a state change) and its event in one transaction;
the consumer side appends every application of an event to ``probe_effects`` (no unique
key, so a duplicate application would show) and adds one to a per-key counter.
"""

from __future__ import annotations

import uuid
from functools import partial

from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import create_engine, session_factory
from shared.events import DataClassification, EventRegistry
from shared.messaging.consumer import ConsumerSpec, EventConsumer
from shared.messaging.handlers import EventHandlers, Handler
from shared.messaging.kafka import BrokerProfile, new_producer
from shared.messaging.outbox import Outbox
from shared.unit_of_work import UnitOfWork


class ProbeRecorded(BaseModel):
    key: str
    seq: int = Field(ge=0)


class ProbeFlaky(BaseModel):
    """Its handler fails until ``probe_switch.fixed`` is true."""

    note: str


def probe_registry(topic_name: str | None = None) -> EventRegistry:
    registry = EventRegistry()
    topic = registry.topic(topic_name or f"probe.{uuid.uuid4().hex[:10]}", "probe events")
    registry.register(
        "uk.upstream.probe.recorded.v1",
        ProbeRecorded,
        topic=topic,
        description="a probe order was recorded",
        classification=DataClassification.OPERATIONAL,
    )
    registry.register(
        "uk.upstream.probe.flaky.v1",
        ProbeFlaky,
        topic=topic,
        description="an event whose handler fails until switched",
        classification=DataClassification.OPERATIONAL,
    )
    return registry


PRODUCER_DDL = [
    "CREATE TABLE IF NOT EXISTS probe_orders "
    "(id bigserial PRIMARY KEY, key text NOT NULL, seq int NOT NULL)",
]
CONSUMER_DDL = [
    "CREATE TABLE IF NOT EXISTS probe_effects (id bigserial PRIMARY KEY, "
    "event_id text NOT NULL, key text NOT NULL, seq int NOT NULL)",
    "CREATE TABLE IF NOT EXISTS probe_totals (key text PRIMARY KEY, total int NOT NULL)",
    "CREATE TABLE IF NOT EXISTS probe_switch (id int PRIMARY KEY, fixed boolean NOT NULL)",
    "INSERT INTO probe_switch VALUES (1, false) ON CONFLICT DO NOTHING",
]


async def create_tables(engine: AsyncEngine, ddl: list[str]) -> None:
    async with engine.begin() as connection:
        for statement in ddl:
            await connection.execute(text(statement))


ProbeWork = UnitOfWork  # the probe has no settings of its own


async def record(payload: ProbeRecorded, uow: ProbeWork) -> None:
    assert uow.event is not None
    await uow.session.execute(
        text("INSERT INTO probe_effects (event_id, key, seq) VALUES (:event_id, :key, :seq)"),
        {"event_id": uow.event.id, "key": payload.key, "seq": payload.seq},
    )
    await uow.session.execute(
        text(
            "INSERT INTO probe_totals VALUES (:key, 1) "
            "ON CONFLICT (key) DO UPDATE SET total = probe_totals.total + 1"
        ),
        {"key": payload.key},
    )


async def flaky(payload: ProbeFlaky, uow: ProbeWork) -> None:
    assert uow.event is not None
    fixed = await uow.session.scalar(text("SELECT fixed FROM probe_switch WHERE id = 1"))
    if not fixed:
        raise RuntimeError("probe handler is broken until switched")
    await uow.session.execute(
        text("INSERT INTO probe_effects (event_id, key, seq) VALUES (:id, 'flaky', -1)"),
        {"id": uow.event.id},
    )


def probe_consumer(
    registry: EventRegistry,
    group_id: str,
    database_url: str,
    bootstrap: str,
    *,
    record_handler: Handler[ProbeRecorded, ProbeWork] = record,
    profile: BrokerProfile = BrokerProfile.TANSU,
    **options: object,
) -> EventConsumer:
    handlers = EventHandlers[ProbeWork]()
    handlers.on(ProbeRecorded)(record_handler)
    handlers.on(ProbeFlaky)(flaky)
    outbox = Outbox(registry, source="/upstream/probe")
    return EventConsumer(
        ConsumerSpec(group_id, handlers),
        registry=registry,
        sessions=session_factory(create_engine(database_url)),
        unit_of_work=lambda session, event: UnitOfWork(session, outbox, None, event),
        bootstrap_servers=bootstrap,
        producer_factory=partial(new_producer, bootstrap, profile),
        **options,
    )


async def scalar(engine: AsyncEngine, sql: str, **params: object) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text(sql), params) or 0)
