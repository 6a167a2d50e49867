"""Helpers for the messaging tests: write probe events, run relays, read topics back."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from functools import partial

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import session_factory
from shared.events import EventRegistry
from shared.events.catalogue import CATALOGUE
from shared.messaging.kafka import BrokerProfile, TopicSpec, new_producer, spec_of
from shared.messaging.outbox import Outbox, OutboxRelay
from shared.messaging.sealing import Keystore
from tests.support.infrastructure import Broker
from tests.support.probe import ProbeRecorded, scalar


async def write_events(
    engine: AsyncEngine, registry: EventRegistry, events: Iterable[tuple[str, int]]
) -> None:
    """Each probe order and its event in one transaction, as a service does it."""
    outbox = Outbox(registry, source="/upstream/probe")
    for key, seq in events:
        async with session_factory(engine)() as session, session.begin():
            await session.execute(
                text("INSERT INTO probe_orders (key, seq) VALUES (:key, :seq)"),
                {"key": key, "seq": seq},
            )
            await outbox.add(session, ProbeRecorded(key=key, seq=seq), subject=key)


def make_relay(
    engine: AsyncEngine, registry: EventRegistry, bootstrap: str, *, partitions: int, **options
) -> OutboxRelay:
    return OutboxRelay(
        session_factory(engine),
        bootstrap_servers=bootstrap,
        topics=[TopicSpec(topic.name, partitions) for topic in registry.topics],
        producer_factory=partial(new_producer, bootstrap, BrokerProfile.TANSU),
        verify_topics=True,
        poll_interval=0.05,
        **options,
    )


async def wait_for(condition, *, timeout: float = 60.0, interval: float = 0.1, what: str = ""):
    """Poll a condition (a function, plain or async) until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or condition}")
        await asyncio.sleep(interval)


async def unpublished(engine: AsyncEngine) -> int:
    return await scalar(engine, "SELECT count(*) FROM outbox WHERE published_at IS NULL")


async def read_topic(
    bootstrap: str, topic: str, *, expected: int, timeout: float = 30.0, settle: float = 1.0
) -> list[ConsumerRecord]:
    """Every record of ``topic`` from the beginning: until ``expected`` have come, then
    ``settle`` seconds more so that an unexpected extra record would be seen too."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout
        settled_at: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
            if len(records) >= expected:
                settled_at = settled_at or time.monotonic()
                if time.monotonic() - settled_at >= settle:
                    break
        return records
    finally:
        await consumer.stop()


async def every_record(bootstrap: str) -> list[ConsumerRecord]:
    """Every record the broker holds, on every topic (dead-letter topics too), from each
    partition's beginning to its end as it is now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in await consumer.topics()
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        remaining = {tp for tp in partitions if ends[tp] > 0}
        deadline = time.monotonic() + 60
        while remaining:
            assert time.monotonic() < deadline, f"partitions not read to their end: {remaining}"
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, part in batch.items():
                records.extend(r for r in part if r.offset < ends[tp])
                if part and part[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()


async def waiting_on_a_lock(engine: AsyncEngine) -> bool:
    """Whether a session of the engine's database is waiting for a lock (a row's, an
    advisory one): the moment a test of a race lets the first transaction go on."""
    async with engine.connect() as connection:
        waiting = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


@asynccontextmanager
async def relaying(engine: AsyncEngine, broker: Broker, keystore_url: str) -> AsyncIterator[None]:
    """The service's outbox relay, publishing what it commits to the broker, sealed as the
    worker's relay seals it."""
    keystore = Keystore(keystore_url)
    relay = OutboxRelay(
        session_factory(engine),
        bootstrap_servers=broker.bootstrap_servers,
        # as the worker declares them: each topic's own retention, if any
        topics=[spec_of(t, partitions=6, replication_factor=1) for t in CATALOGUE.topics],
        producer_factory=partial(new_producer, broker.bootstrap_servers, broker.profile),
        verify_topics=True,
        poll_interval=0.05,
        keystore=keystore,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield
    finally:
        stop.set()
        await task
        await keystore.close()
