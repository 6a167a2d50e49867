"""A consumer's throughput (``make bench``): a backlog of events applied through the inbox
in runs of one transaction each (the consumer's default), beside the same consumer applying
each event in a transaction of its own (the baseline: the consumer as it was), in the same
process on the same broker and database, alternating. Printed, not asserted."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from shared.db import create_engine
from tests.bench.goals import Measured, show
from tests.conftest import MakeDatabase
from tests.integration.messaging_helpers import wait_for
from tests.support.infrastructure import Broker
from tests.support.probe import (
    CONSUMER_DDL,
    ProbeRecorded,
    create_tables,
    probe_consumer,
    probe_registry,
    scalar,
)

EVENTS = int(os.environ.get("UPSTREAM_BENCH_CONSUMER_EVENTS", "3000"))


async def applied_per_second(
    kafka: Broker, database_url: str, run_size: int
) -> tuple[float, float]:
    """Events a second, and CPU ms an event (this process: the consumer's side), for a
    backlog of ``EVENTS`` on one partition, 50 keys."""
    registry = probe_registry()
    topic = next(iter(registry.topics)).name
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        consumer = probe_consumer(
            registry,
            f"bench-{uuid.uuid4().hex[:8]}",
            database_url,
            kafka.bootstrap_servers,
            partitions=1,
            run_size=run_size,
        )
        engine = create_engine(database_url)
        before = await scalar(engine, "SELECT count(*) FROM probe_effects")
        sends = []
        for n in range(EVENTS):
            key = f"case-{n % 50}"
            event = registry.envelope(ProbeRecorded(key=key, seq=n), source="/bench", subject=key)
            sends.append(await producer.send(topic, value=event.to_bytes(), key=key.encode()))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    stop = asyncio.Event()
    started, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(consumer.run(stop))
    try:

        async def all_applied() -> bool:
            return await scalar(engine, "SELECT count(*) FROM probe_effects") - before >= EVENTS

        await wait_for(all_applied, timeout=600, interval=0.05, what="the backlog applied")
        took, used = time.perf_counter() - started, time.process_time() - cpu
    finally:
        stop.set()
        await task
        await engine.dispose()
    assert consumer.stats["applied"] == EVENTS  # every one, once
    return EVENTS / took, used * 1000 / EVENTS


async def test_a_backlog_applied_in_runs(
    service_database: MakeDatabase, kafka: Broker, request: pytest.FixtureRequest
) -> None:
    url = await service_database("risk")
    engine = create_engine(url)
    await create_tables(engine, CONSUMER_DDL)
    await engine.dispose()
    runs, alone = [], []
    for _ in range(2):  # alternating, so a noisy minute moves both
        runs.append(await applied_per_second(kafka, url, run_size=50))
        alone.append(await applied_per_second(kafka, url, run_size=1))
    rate, rate_alone = max(r for r, _ in runs), max(r for r, _ in alone)
    cpu, cpu_alone = min(c for _, c in runs), min(c for _, c in alone)
    show(
        request,
        f"A consumer's backlog of {EVENTS:,} events (baseline: each in its own transaction)",
        [
            Measured(
                "events applied a second, runs of 50",
                f"{rate:.0f}",
                f"{rate_alone:.0f}",
                f"{rate / rate_alone:.1f}x",
                "",
                None,
            ),
            Measured(
                "consumer CPU an event (ms)",
                f"{cpu:.2f}",
                f"{cpu_alone:.2f}",
                f"{cpu / cpu_alone:.2f}x",
                "",
                None,
            ),
        ],
    )
