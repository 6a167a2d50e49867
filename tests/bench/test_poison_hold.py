"""How long one poison event holds back the cases behind it on its partition (``make
bench``): ten good events after a poison one, against ten good events alone, through the
real consumer on the real broker and database, in the same process. The consumer's own
defaults (``EventConsumer``: the settings' ``consumer_max_attempts`` and backoff) apply.
Printed, not asserted: this machine is noisy, so read the ratio."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from shared.db import create_engine
from tests.conftest import MakeDatabase
from tests.integration.messaging_helpers import wait_for
from tests.support.infrastructure import Broker
from tests.support.probe import (
    CONSUMER_DDL,
    ProbeFlaky,
    ProbeRecorded,
    create_tables,
    probe_consumer,
    probe_registry,
    scalar,
)

GOOD = 10


async def seconds_until_applied(
    kafka: Broker, database_url: str, *, poison_first: bool, **retries: float
) -> tuple[float, int]:
    registry = probe_registry()
    topic = next(iter(registry.topics)).name
    consumer = probe_consumer(
        registry,
        f"bench-{uuid.uuid4().hex[:8]}",
        database_url,
        kafka.bootstrap_servers,
        partitions=1,
        **retries,
    )
    engine = create_engine(database_url)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await wait_for(lambda: bool(consumer.assigned_partitions), what="assignment")
        before = await scalar(engine, "SELECT count(*) FROM probe_effects")
        records = [ProbeRecorded(key="case-a", seq=n) for n in range(GOOD)]
        payloads = [ProbeFlaky(note="always fails"), *records] if poison_first else records
        started = time.perf_counter()
        for payload in payloads:
            event = registry.envelope(payload, source="/bench", subject="case-a")
            await producer.send_and_wait(topic, value=event.to_bytes(), key=b"case-a")

        async def all_applied() -> bool:
            count = await scalar(engine, "SELECT count(*) FROM probe_effects")
            return count - before >= GOOD

        await wait_for(all_applied, timeout=60, interval=0.005, what="the good events")
        return time.perf_counter() - started, consumer.stats["dead_lettered"]
    finally:
        await producer.stop()
        stop.set()
        await task
        await engine.dispose()


async def test_a_poison_event_holds_its_partition_back_briefly(
    service_database: MakeDatabase, kafka: Broker, request: pytest.FixtureRequest
) -> None:
    measuring = bool(request.config.getoption("benchmark_enable", False))
    url = await service_database("risk")
    engine = create_engine(url)
    await create_tables(engine, CONSUMER_DDL)
    await engine.dispose()
    scenarios: dict[str, dict[str, float]] = {"today's defaults": {}}
    if measuring:  # what the defaults were before: 5 attempts, 200 ms apart and doubling
        scenarios["before (5 attempts, 200 ms)"] = {"max_attempts": 5, "retry_backoff": 0.2}
    rounds = 3 if measuring else 1
    bare = min(
        [(await seconds_until_applied(kafka, url, poison_first=False))[0] for _ in range(rounds)]
    )
    print(f"\n{GOOD} events applied, bare: {bare * 1000:.0f} ms")
    for name, retries in scenarios.items():
        taken = []
        for _ in range(rounds):
            took, dead = await seconds_until_applied(kafka, url, poison_first=True, **retries)
            assert dead == 1  # the poison one, after its bounded attempts
            taken.append(took)
        best = min(taken)
        print(
            f"behind one poison event, {name}: {best * 1000:.0f} ms "
            f"(ratio {best / bare:.1f}x; the poison costs {(best - bare) * 1000:.0f} ms)"
        )
