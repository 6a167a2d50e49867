"""Interactive before bulk, against a real PostgreSQL and a real Kafka-protocol broker: an
interactive event written behind a large bulk backlog is published, and handled, before
the backlog drains. Asserted by the order things happened in, never by time."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from shared.db import create_engine, session_factory
from shared.events import EventRegistry
from shared.messaging.consumer import Resting
from shared.messaging.outbox import _PASS, LANES, Outbox, lane_of
from shared.unit_of_work import UnitOfWork
from tests.conftest import MakeDatabase
from tests.integration.messaging_helpers import make_relay, unpublished, wait_for
from tests.support.infrastructure import Broker
from tests.support.plans import rows_filtered_out
from tests.support.probe import (
    CONSUMER_DDL,
    PRODUCER_DDL,
    ProbeRecorded,
    create_tables,
    probe_consumer,
    probe_registry,
    record,
    scalar,
)

pytestmark = pytest.mark.integration

BACKLOG = 800


def registry_with_bulk_lane() -> EventRegistry:
    registry = probe_registry()
    topic = next(iter(registry.topics))
    registry.bulk_lane(topic, f"{topic.name}.bulk", "probe events, bulk work")
    return registry


@pytest.fixture
async def databases(service_database: MakeDatabase):
    producer = create_engine(await service_database("referrals"))
    consumer_url = await service_database("risk")
    consumer = create_engine(consumer_url)
    await create_tables(producer, PRODUCER_DDL)
    await create_tables(consumer, CONSUMER_DDL)
    yield producer, consumer, consumer_url
    await producer.dispose()
    await consumer.dispose()


async def write(engine, registry: EventRegistry, events: list[tuple[str, int]], *, bulk: bool):
    """The events in one transaction (a feed's step writes its flags so)."""
    outbox = Outbox(registry, source="/upstream/probe")
    async with session_factory(engine)() as session, session.begin():
        await outbox.add_all(
            session, [(ProbeRecorded(key=k, seq=s), k) for k, s in events], bulk=bulk
        )


async def rows(engine, sql: str) -> list[tuple]:
    async with engine.connect() as connection:
        return [tuple(r) for r in (await connection.execute(text(sql)))]


async def test_events_added_together_are_recorded_as_one_at_a_time(databases) -> None:
    """``add_all`` (one ``COPY``) and ``add`` write the same row for the same event."""
    producer_db, _, _ = databases
    written = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)
    outbox = Outbox(registry_with_bulk_lane(), source="/upstream/probe", clock=lambda: written)
    async with session_factory(producer_db)() as session, session.begin():
        await outbox.add(session, ProbeRecorded(key="one-é", seq=1), subject="one-é")
        await outbox.add_all(session, [(ProbeRecorded(key="one-é", seq=1), "one-é")])
        await outbox.add(session, ProbeRecorded(key="two", seq=2), subject="two", bulk=True)
        await outbox.add_all(session, [(ProbeRecorded(key="two", seq=2), "two")], bulk=True)
    recorded = await rows(
        producer_db,
        "SELECT topic, message_key, lane, event_type, "
        "envelope - 'id' - 'correlationid', envelope->>'id' = event_id, "
        "envelope->>'correlationid' = event_id FROM outbox ORDER BY id",
    )
    assert len(recorded) == 4 and recorded[0] == recorded[1] and recorded[2] == recorded[3]
    assert recorded[0][4]["time"] == "2026-12-01T09:30:15.123456Z"
    assert recorded[0][4]["data"] == {"key": "one-é", "seq": 1}
    assert all(same_id and same_correlation for *_, same_id, same_correlation in recorded)


async def test_bulk_events_go_to_the_bulk_lane_and_topic(databases) -> None:
    producer_db, _, _ = databases
    registry = registry_with_bulk_lane()
    topic = next(iter(registry.topics))
    await write(producer_db, registry, [("flagged-1", 1)], bulk=True)
    await write(producer_db, registry, [("case-1", 1)], bulk=False)
    written = await rows(producer_db, "SELECT message_key, topic, lane FROM outbox ORDER BY id")
    assert written == [
        ("flagged-1", f"{topic.name}.bulk", lane_of("flagged-1", bulk=True)),
        ("case-1", topic.name, lane_of("case-1")),
    ]
    assert written[0][2] >= LANES > written[1][2]


async def test_a_bulk_key_named_by_the_service_stays_bulk(databases) -> None:
    producer_db, _, _ = databases
    registry = registry_with_bulk_lane()

    async def outreach(session, keys):
        return {k for k in keys if k.startswith("outreach-")}

    outbox = Outbox(registry, source="/upstream/probe").with_bulk_keys(outreach)
    async with session_factory(producer_db)() as session, session.begin():
        for key in ("outreach-1", "case-2", "outreach-1"):
            await outbox.add(session, ProbeRecorded(key=key, seq=1), subject=key)
    topics = await rows(producer_db, "SELECT message_key, topic FROM outbox ORDER BY id")
    assert [t.endswith(".bulk") for _, t in topics] == [True, False, True]


async def test_the_relay_publishes_an_interactive_event_before_a_bulk_backlog(
    databases, kafka: Broker
) -> None:
    producer_db, _, _ = databases
    registry = registry_with_bulk_lane()
    await write(producer_db, registry, [(f"flagged-{i}", i) for i in range(BACKLOG)], bulk=True)
    await write(producer_db, registry, [("case-urgent", 0)], bulk=False)  # written last
    relay = make_relay(producer_db, registry, kafka.bootstrap_servers, partitions=4, batch_size=100)
    await relay._connect()
    try:
        assert await relay.publish_pending() == 100  # one pass
    finally:
        await relay._disconnect()
    waiting = await rows(
        producer_db, "SELECT message_key FROM outbox WHERE published_at IS NULL ORDER BY id"
    )
    assert "case-urgent" not in {key for (key,) in waiting}  # the first pass took it
    assert len(waiting) == BACKLOG + 1 - 100  # 701 bulk rows still wait
    # The bulk rows that went with it went in id order (each key keeps its order).
    sent = await rows(
        producer_db,
        "SELECT message_key FROM outbox WHERE published_at IS NOT NULL AND message_key <> "
        "'case-urgent' ORDER BY id",
    )
    assert [key for (key,) in sent] == [f"flagged-{i}" for i in range(99)]


async def test_a_consumer_handles_an_interactive_event_before_the_bulk_backlog_drains(
    databases, kafka: Broker
) -> None:
    producer_db, consumer_db, consumer_url = databases
    registry = registry_with_bulk_lane()

    async def slow_record(payload: ProbeRecorded, uow: UnitOfWork) -> None:
        await asyncio.sleep(0.002)  # a real handler's cost, so the backlog takes a while
        await record(payload, uow)

    consumer = probe_consumer(
        registry,
        f"probe-{uuid.uuid4().hex[:8]}",
        consumer_url,
        kafka.bootstrap_servers,
        record_handler=slow_record,
        partitions=4,
    )
    assert consumer.topics == sorted(t.name for t in registry.topics)  # both lanes
    relay = make_relay(producer_db, registry, kafka.bootstrap_servers, partitions=4)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(consumer.run(stop)), asyncio.create_task(relay.run(stop))]
    try:
        await write(
            producer_db, registry, [(f"flagged-{i % 50}", i) for i in range(BACKLOG)], bulk=True
        )
        await wait_for(
            lambda: scalar(consumer_db, "SELECT count(*) FROM probe_effects HAVING count(*) >= 50"),
            what="the consumer to be working through the backlog",
        )
        await write(producer_db, registry, [("case-urgent", 0)], bulk=False)
        await wait_for(
            lambda: scalar(
                consumer_db,
                f"SELECT count(*) FROM probe_effects HAVING count(*) >= {BACKLOG + 1}",
            ),
            timeout=120,
            what="every event to be handled",
        )
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert await unpublished(producer_db) == 0
    effects = await rows(consumer_db, "SELECT key, seq FROM probe_effects ORDER BY id")
    handled = [key for key, _ in effects]
    assert len(handled) == BACKLOG + 1
    urgent_at = handled.index("case-urgent")
    after = len(handled) - urgent_at - 1
    # Handled while most of the backlog still waited, not after it drained.
    assert after > BACKLOG // 2, f"{after} bulk events were handled after the interactive one"
    # Each bulk key's events in the order written.
    by_key: dict[str, list[int]] = {}
    for key, seq in effects:
        by_key.setdefault(key, []).append(seq)
    assert all(seqs == sorted(seqs) for seqs in by_key.values())


async def test_a_resting_consumer_looks_at_its_bulk_lanes_less_often_and_misses_nothing(
    databases, kafka: Broker
) -> None:
    """Resting, a consumer fetches its interactive partitions after every pause and its bulk
    lanes' only every ``bulk_every``-th time; what either kind brought meanwhile is applied,
    once each, and awake again it fetches everything."""
    producer_db, consumer_db, consumer_url = databases
    registry = registry_with_bulk_lane()
    bulk_topic = next(t.name for t in registry.topics if t.bulk)
    consumer = probe_consumer(
        registry,
        f"probe-{uuid.uuid4().hex[:8]}",
        consumer_url,
        kafka.bootstrap_servers,
        partitions=2,
        resting=Resting(after_s=0.3, pause_s=0.2, bulk_every=4),
    )
    relay = make_relay(producer_db, registry, kafka.bootstrap_servers, partitions=2)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(consumer.run(stop)), asyncio.create_task(relay.run(stop))]
    fetching: list[tuple[bool, bool]] = []  # between pauses: (interactive, bulk) unpaused

    async def watch() -> None:
        while not stop.is_set():
            assigned = consumer.assigned_partitions
            if assigned and consumer._consumer is not None:
                paused = consumer._consumer.paused()
                awake = assigned - paused
                if paused and awake:  # a rest's fetch, of only some partitions
                    fetching.append(
                        (
                            any(tp.topic != bulk_topic for tp in awake),
                            any(tp.topic == bulk_topic for tp in awake),
                        )
                    )
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    try:
        await wait_for(lambda: bool(fetching), what="the quiet consumer to rest")
        await write(producer_db, registry, [(f"flagged-{i}", i) for i in range(10)], bulk=True)
        await write(producer_db, registry, [("case-1", 100)], bulk=False)
        await wait_for(
            lambda: scalar(consumer_db, "SELECT count(*) FROM probe_effects HAVING count(*) = 11"),
            timeout=30,
            what="every event to be applied",
        )
    finally:
        stop.set()
        await asyncio.gather(*tasks, watcher)
    # Between pauses only the interactive partitions were fetched (the bulk lanes waited).
    assert (True, False) in fetching
    assert await scalar(consumer_db, "SELECT count(DISTINCT event_id) FROM probe_effects") == 11
    assert consumer.stats["duplicate"] == consumer.stats["dead_lettered"] == 0


async def test_a_relay_pass_reads_its_batch_not_the_published_history(databases) -> None:
    """Published rows stay in the outbox for the retention period (30 days), and always
    have lower ids than the rows still to send. A pass that found its rows by walking ids
    read every one of them, behind a bulk backlog: the planner's choice, measured at
    hundreds of milliseconds a pass with a month of history."""
    producer_db, _, _ = databases
    registry = registry_with_bulk_lane()
    history, backlog, batch = 20_000, 10_000, 100
    await write(producer_db, registry, [(f"sent-{i}", i) for i in range(history)], bulk=False)
    async with producer_db.begin() as connection:
        await connection.execute(text("UPDATE outbox SET published_at = now()"))
    await write(producer_db, registry, [(f"flagged-{i}", i) for i in range(backlog)], bulk=True)
    await write(producer_db, registry, [("case-urgent", 0)], bulk=False)
    async with producer_db.connect() as connection:
        await connection.execute(text("ANALYZE outbox"))
        await connection.commit()
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        # The pass's statement as the relay runs it (its locks too), then rolled back.
        transaction = driver.transaction()
        await transaction.start()
        try:
            explained = await driver.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {_PASS}", batch)
            # (the dialect's codec decodes json; a plain connection would give text)
            (plan,) = json.loads(explained) if isinstance(explained, str) else explained
            found = await driver.fetch(_PASS, batch)
        finally:
            await transaction.rollback()
    keys = [row["message_key"] for row in found]
    # The interactive row first, then the oldest of the backlog, in id order.
    assert keys == ["case-urgent", *(f"flagged-{i}" for i in range(batch - 1))]
    # And nothing read only to be thrown away: not the 20,000 rows sent already.
    assert rows_filtered_out(plan["Plan"]) <= batch
