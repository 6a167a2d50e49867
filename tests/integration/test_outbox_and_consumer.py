"""The shared messaging machinery against a real PostgreSQL and a real Kafka-protocol broker."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import uuid
from collections import defaultdict
from datetime import timedelta
from functools import partial

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from devtools.embedded import TansuBroker, free_port
from shared.db import create_engine, driver, session_factory
from shared.events import CloudEvent, EventRegistry
from shared.events.envelope import DataClassification, utc_now
from shared.messaging.consumer import RUN_LOCK_WAIT_MS, EventConsumer, Resting, is_transient
from shared.messaging.deadletters import pending_dead_letters, replay_dead_letters
from shared.messaging.kafka import TopicSpec, new_producer, spec_of
from shared.messaging.outbox import Outbox, OutboxRelay, replay
from shared.observability import QUIET_LOGGERS, JsonFormatter
from tests.conftest import REPO, MakeDatabase
from tests.integration.messaging_helpers import (
    make_relay,
    read_topic,
    unpublished,
    wait_for,
    write_events,
)
from tests.support.infrastructure import Broker
from tests.support.probe import (
    CONSUMER_DDL,
    PRODUCER_DDL,
    ProbeFlaky,
    ProbeRecorded,
    create_tables,
    probe_consumer,
    probe_registry,
    scalar,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def probe_databases(service_database: MakeDatabase):
    """A producing service's database and a consuming service's, each with its probe tables."""
    producer = create_engine(await service_database("referrals"))
    consumer_url = await service_database("risk")
    consumer = create_engine(consumer_url)
    await create_tables(producer, PRODUCER_DDL)
    await create_tables(consumer, CONSUMER_DDL)
    yield producer, consumer, consumer_url
    await producer.dispose()
    await consumer.dispose()


async def run_relay_until_drained(relay, engine) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await wait_for(lambda: _drained(engine), what="the outbox to drain")
    finally:
        stop.set()
        await task


async def _drained(engine) -> bool:
    return await unpublished(engine) == 0


def start_probe_consumer(
    *, database_url: str, bootstrap: str, topic: str, group: str, stall_at: int = 0
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PROBE_DATABASE_URL": database_url,
        "PROBE_BOOTSTRAP": bootstrap,
        "PROBE_TOPIC": topic,
        "PROBE_GROUP": group,
        "PROBE_STALL_AT": str(stall_at),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.probe_consumer"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


async def read_line_until(process: subprocess.Popen[str], marker: str, timeout: float = 60) -> None:
    async def next_line() -> str:
        return await asyncio.to_thread(process.stdout.readline)  # type: ignore[union-attr]

    async with asyncio.timeout(timeout):
        while (line := await next_line()) and line.strip() != marker:
            pass
    assert line.strip() == marker, f"process ended before printing {marker}"


async def committed_offset(bootstrap: str, group: str, topic: str) -> int:
    """The group's committed offset on the topic's only partition (0 if none)."""
    # A consumer that never subscribes does not join the group, so it disturbs nothing.
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        return await reader.committed(TopicPartition(topic, 0)) or 0
    finally:
        await reader.stop()


async def test_event_reaches_a_consumer_process_and_applies_once_across_a_kill(
    probe_databases, kafka: Broker
) -> None:
    producer_db, consumer_db, consumer_url = probe_databases
    registry = probe_registry()
    topic = next(iter(registry.topics)).name
    group = f"probe-{uuid.uuid4().hex[:8]}"
    await write_events(producer_db, registry, [(f"case-{i % 10}", i) for i in range(300)])
    assert await scalar(producer_db, "SELECT count(*) FROM probe_orders") == 300
    await run_relay_until_drained(
        make_relay(producer_db, registry, kafka.bootstrap_servers, partitions=1), producer_db
    )

    # First consumer process: its 120th application hangs inside its transaction; kill it there.
    first = start_probe_consumer(
        database_url=consumer_url,
        bootstrap=kafka.bootstrap_servers,
        topic=topic,
        group=group,
        stall_at=120,
    )
    try:
        await read_line_until(first, "STALLED")
        applied_before_kill = await scalar(consumer_db, "SELECT count(*) FROM probe_effects")
        committed_before_kill = await committed_offset(kafka.bootstrap_servers, group, topic)
    finally:
        first.kill()
        first.wait()
    # Applied in runs of ten, each in one transaction: what ran before the hung run is in,
    # none of the hung run's (its first records included) is.
    assert 0 < applied_before_kill < 120 and applied_before_kill % 10 == 0
    # Killed mid-batch: some events are applied in the database but not committed in Kafka.
    assert committed_before_kill < applied_before_kill

    second = start_probe_consumer(
        database_url=consumer_url, bootstrap=kafka.bootstrap_servers, topic=topic, group=group
    )
    try:
        await wait_for(
            lambda: scalar(
                consumer_db, "SELECT count(*) >= 300 FROM probe_effects HAVING count(*) >= 300"
            ),
            what="300 effects",
        )
        await asyncio.sleep(1.0)  # room for a wrong extra application to show up
    finally:
        second.terminate()
        output, _ = second.communicate(timeout=30)
    stats = json.loads(output.strip().splitlines()[-1])

    assert await scalar(consumer_db, "SELECT count(*) FROM probe_effects") == 300
    assert await scalar(consumer_db, "SELECT count(DISTINCT event_id) FROM probe_effects") == 300
    assert await scalar(consumer_db, "SELECT sum(total) FROM probe_totals") == 300
    # The redelivered, already-applied events were recognised by the inbox and skipped.
    assert stats["duplicate"] == applied_before_kill - committed_before_kill
    assert stats["applied"] == 300 - applied_before_kill


async def test_changes_accepted_while_the_broker_is_down_are_published_in_order(
    probe_databases, tmp_path
) -> None:
    producer_db, _, _ = probe_databases
    broker = TansuBroker(free_port(), log_path=tmp_path / "broker.log")
    broker.start()
    registry = probe_registry()
    topic = next(iter(registry.topics)).name
    relay = make_relay(
        producer_db, registry, broker.bootstrap_servers, partitions=3, max_backoff=0.5
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await write_events(producer_db, registry, [("warm-up", 0)])
        await wait_for(lambda: _drained(producer_db), what="the warm-up event")

        broker.stop()
        keys = [f"case-{n}" for n in range(5)]
        await write_events(producer_db, registry, [(keys[i % 5], i) for i in range(1, 201)])
        await asyncio.sleep(1.5)  # the relay keeps failing and backing off meanwhile
        assert await unpublished(producer_db) == 200

        broker.start()  # a fresh, empty broker on the same port
        await wait_for(lambda: _drained(producer_db), what="the backlog after the outage")
        records = await read_topic(broker.bootstrap_servers, topic, expected=200)
    finally:
        stop.set()
        await task
        broker.stop()

    events = [CloudEvent.from_bytes(r.value) for r in records]
    assert sorted(e.data["seq"] for e in events) == list(range(1, 201))  # none lost, none twice
    by_key: dict[str, list[int]] = defaultdict(list)
    for record, event in zip(records, events, strict=True):
        assert record.key.decode() == event.subject == event.data["key"]
        by_key[event.subject].append(event.data["seq"])
    for key in keys:
        assert by_key[key] == sorted(by_key[key]), f"{key} out of order"


async def test_two_relays_never_publish_a_row_twice(probe_databases, kafka: Broker) -> None:
    producer_db, _, _ = probe_databases
    registry = probe_registry()
    topic = next(iter(registry.topics)).name
    await write_events(producer_db, registry, [(f"case-{i % 40}", i) for i in range(600)])
    relays = [
        make_relay(producer_db, registry, kafka.bootstrap_servers, partitions=4, batch_size=20)
        for _ in range(2)
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)) for relay in relays]
    try:
        await wait_for(lambda: _drained(producer_db), what="both relays to drain the outbox")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    records = await read_topic(kafka.bootstrap_servers, topic, expected=600)
    events = [CloudEvent.from_bytes(r.value) for r in records]
    assert len(events) == 600
    assert len({e.id for e in events}) == 600
    by_key: dict[str, list[int]] = defaultdict(list)
    for event in events:
        by_key[event.subject].append(event.data["seq"])
    assert all(seqs == sorted(seqs) for seqs in by_key.values())


def make_consumer(registry, group: str, url: str, bootstrap: str, **options) -> EventConsumer:
    return probe_consumer(registry, group, url, bootstrap, partitions=4, **options)


async def test_two_consumers_in_one_group_split_the_partitions(
    probe_databases, kafka: Broker
) -> None:
    producer_db, consumer_db, consumer_url = probe_databases
    registry = probe_registry()
    group = f"probe-{uuid.uuid4().hex[:8]}"
    consumers = [
        make_consumer(registry, group, consumer_url, kafka.bootstrap_servers) for _ in range(2)
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
    try:

        async def both_assigned() -> bool:
            sets = [c.assigned_partitions for c in consumers]
            return all(sets) and not (sets[0] & sets[1]) and len(sets[0] | sets[1]) == 4

        await wait_for(both_assigned, what="the group to split 4 partitions between 2 members")
        await write_events(producer_db, registry, [(f"case-{i}", i) for i in range(200)])
        await run_relay_until_drained(
            make_relay(producer_db, registry, kafka.bootstrap_servers, partitions=4), producer_db
        )
        await wait_for(
            lambda: scalar(
                consumer_db, "SELECT count(*) FROM probe_effects HAVING count(*) >= 200"
            ),
            what="200 effects",
        )
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert await scalar(consumer_db, "SELECT count(DISTINCT event_id) FROM probe_effects") == 200
    assert await scalar(consumer_db, "SELECT count(*) FROM probe_effects") == 200
    applied = [c.stats["applied"] for c in consumers]
    assert sum(applied) == 200
    assert all(n > 0 for n in applied), f"one member did all the work: {applied}"


async def test_a_resting_consumer_still_applies_every_event_once(
    probe_databases, kafka: Broker
) -> None:
    """Quiet for a moment, a consumer rests (its partitions paused between fetches); events
    published meanwhile are all applied, once each, and with nothing more it rests again."""
    producer_db, consumer_db, consumer_url = probe_databases
    registry = probe_registry()
    consumer = make_consumer(
        registry,
        f"probe-{uuid.uuid4().hex[:8]}",
        consumer_url,
        kafka.bootstrap_servers,
        resting=Resting(after_s=0.3, pause_s=0.5),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await wait_for(lambda: consumer.resting, what="the quiet consumer to rest")
        await write_events(producer_db, registry, [(f"case-{i % 5}", i) for i in range(40)])
        await run_relay_until_drained(
            make_relay(producer_db, registry, kafka.bootstrap_servers, partitions=4), producer_db
        )
        await wait_for(lambda: consumer.stats["applied"] == 40, what="40 applied")
        await wait_for(lambda: consumer.resting, what="the consumer to rest again")
    finally:
        stop.set()
        await task
    assert await scalar(consumer_db, "SELECT count(DISTINCT event_id) FROM probe_effects") == 40
    assert await scalar(consumer_db, "SELECT count(*) FROM probe_effects") == 40
    assert consumer.stats["duplicate"] == consumer.stats["dead_lettered"] == 0


async def _consumer_of_a_held_total(
    consumer_db: AsyncEngine, consumer_url: str, kafka: Broker, registry: EventRegistry
) -> EventConsumer:
    """A probe consumer of one partition, and the total its 'held' events add to, for a
    test to hold locked."""
    async with consumer_db.begin() as connection:
        await connection.execute(text("INSERT INTO probe_totals VALUES ('held', 0)"))
    return probe_consumer(
        registry,
        f"probe-{uuid.uuid4().hex[:8]}",
        consumer_url,
        kafka.bootstrap_servers,
        partitions=1,
    )


async def test_a_run_waiting_long_on_a_lock_goes_one_at_a_time_and_applies_everything(
    probe_databases, kafka: Broker
) -> None:
    """Another transaction holds a row the run's records need for longer than a run waits on
    a lock: the run gives up, its records go one at a time (waiting as long as it takes),
    and each is applied once; nothing is retried as a failure or parked."""
    producer_db, consumer_db, consumer_url = probe_databases
    registry = probe_registry()
    consumer = await _consumer_of_a_held_total(consumer_db, consumer_url, kafka, registry)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await wait_for(lambda: bool(consumer.assigned_partitions), what="assignment")
        async with consumer_db.connect() as holder:
            await holder.execute(text("SELECT 1 FROM probe_totals WHERE key = 'held' FOR UPDATE"))
            await write_events(
                producer_db, registry, [("held" if i % 3 else "free", i) for i in range(12)]
            )
            await run_relay_until_drained(
                make_relay(producer_db, registry, kafka.bootstrap_servers, partitions=1),
                producer_db,
            )
            await asyncio.sleep(2 * RUN_LOCK_WAIT_MS / 1000)  # longer than a run waits
            # The run gave up; one at a time, the first (free) is in, the next waits.
            assert consumer.stats["applied"] == 1
            assert await scalar(consumer_db, "SELECT count(*) FROM probe_effects") == 1
            await holder.commit()
        await wait_for(lambda: consumer.stats["applied"] == 12, what="12 applied")
    finally:
        stop.set()
        await task
    assert await scalar(consumer_db, "SELECT count(DISTINCT event_id) FROM probe_effects") == 12
    assert await scalar(consumer_db, "SELECT total FROM probe_totals WHERE key = 'held'") == 8
    assert consumer.stats["duplicate"] == consumer.stats["dead_lettered"] == 0


WAITING_ON_A_LOCK = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def test_a_run_with_one_record_to_apply_waits_on_a_lock_as_one_at_a_time_would(
    probe_databases, kafka: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """A run's lock timeout is for several records applied together (their locks held
    together). A run in which one record is to be applied (the others of types handled
    elsewhere, ignored) is already what one at a time does: it waits for the lock, without
    the time out, rollback and second try that giving up would cost."""
    caplog.set_level(logging.DEBUG, logger="shared.messaging.consumer")
    _, consumer_db, consumer_url = probe_databases
    registry = probe_registry()
    topic = next(iter(registry.topics)).name
    consumer = await _consumer_of_a_held_total(consumer_db, consumer_url, kafka, registry)
    elsewhere = CloudEvent(
        id=str(uuid.uuid4()),
        source="/upstream/probe",
        type="uk.upstream.elsewhere.thing.happened.v1",
        subject="held",
        time=utc_now(),
        data={"anything": True},
    )
    held = registry.envelope(ProbeRecorded(key="held", seq=1), source="/p", subject="held")
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await wait_for(lambda: bool(consumer.assigned_partitions), what="assignment")
        async with consumer_db.connect() as holder:
            await holder.execute(text("SELECT 1 FROM probe_totals WHERE key = 'held' FOR UPDATE"))
            producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
            await producer.start()
            try:  # one batch, so one fetch: a run of two records
                sent = [
                    await producer.send(topic, value=event.to_bytes(), key=b"held")
                    for event in (elsewhere, held)
                ]
                await asyncio.gather(*sent)
            finally:
                await producer.stop()
            await wait_for(lambda: scalar(consumer_db, WAITING_ON_A_LOCK), what="the run waiting")
            await asyncio.sleep(3 * RUN_LOCK_WAIT_MS / 1000)  # longer than a run waits
            assert await scalar(consumer_db, WAITING_ON_A_LOCK) == 1  # waiting still
            assert consumer.stats["applied"] == 0
            await holder.commit()
        await wait_for(lambda: consumer.stats["applied"] == 1, what="the record applied")
    finally:
        stop.set()
        await task
    assert consumer.stats["ignored"] == 1
    assert not [r for r in caplog.records if "applying them one at a time" in r.getMessage()]
    assert await scalar(consumer_db, "SELECT total FROM probe_totals WHERE key = 'held'") == 1
    assert consumer.stats["duplicate"] == consumer.stats["dead_lettered"] == 0


async def send_raw(kafka: Broker, topic: str, values: list[bytes]) -> None:
    """Records as a producer that is not a relay sends them (keyed case-x), in order."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value=value, key=b"case-x")
    finally:
        await producer.stop()


def record_value(type_: str, data: dict, *, age: timedelta = timedelta(0)) -> bytes:
    """A CloudEvent about case-x as a record's bytes, written ``age`` ago."""
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/upstream/probe",
        type=type_,
        subject="case-x",
        time=utc_now() - age,
        data=data,
    ).to_bytes()


async def test_poison_messages_are_dead_lettered_and_the_consumer_carries_on(
    probe_databases, kafka: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every level the services can log at, ...
    for quiet in QUIET_LOGGERS:  # ... with the libraries held back as the services hold them
        caplog.set_level(logging.WARNING, logger=quiet)
    _, consumer_db, consumer_url = probe_databases
    registry = probe_registry()
    topic = next(iter(registry.topics)).name
    group = f"probe-{uuid.uuid4().hex[:8]}"

    event = record_value
    flaky = registry.envelope(ProbeFlaky(note="fails until fixed"), source="/p", subject="case-x")
    poison = [
        (b"{not json", "not JSON"),
        (
            event("uk.upstream.probe.recorded.v2", {"key": "case-x", "seq": 1}),
            "unknown major version v2",
        ),
        (
            # A value that is personal data: it must not reach the dead letter's headers.
            event("uk.upstream.probe.recorded.v1", {"key": "case-x", "seq": "Amina Okafor"}),
            "payload of uk.upstream.probe.recorded.v1 is invalid",
        ),
        (flaky.to_bytes(), "handler failed 3 times"),
    ]
    ignored = event("uk.upstream.elsewhere.thing.happened.v1", {"anything": True})
    good = event("uk.upstream.probe.recorded.v1", {"key": "case-x", "seq": 7})

    consumer = make_consumer(
        registry, group, consumer_url, kafka.bootstrap_servers, max_attempts=3, retry_backoff=0.01
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await wait_for(lambda: bool(consumer.assigned_partitions), what="assignment")
        await send_raw(kafka, topic, [value for value, _ in poison] + [ignored, good])
        await wait_for(
            lambda: scalar(consumer_db, "SELECT count(*) FROM probe_effects"),
            what="the good event after the poison ones",
        )

        dead = await read_topic(kafka.bootstrap_servers, f"{group}.dlq", expected=4)
        assert len(dead) == 4
        for record, (value, reason) in zip(dead, poison, strict=True):
            headers = dict(record.headers)
            assert record.value == value  # the original event, untouched
            assert reason in headers["dlq-error"].decode()
            assert headers["dlq-original-topic"].decode() == topic
            assert not [v for v in headers.values() if b"Okafor" in v], headers
        for record in dead[2:]:  # once the envelope reads, the dead letter names the event
            assert dict(record.headers)["dlq-event-type"].decode().startswith("uk.upstream.probe")
        assert consumer.stats == {
            "applied": 1,
            "duplicate": 0,
            "ignored": 1,
            "erased": 0,
            "dead_lettered": 4,
        }

        # Mend the handler, replay the dead letters: the flaky event now applies; the
        # others are still poison and go back to the dead-letter topic.
        async with session_factory(create_engine(consumer_url))() as session, session.begin():
            await session.execute(text("UPDATE probe_switch SET fixed = true"))
        replayed = await replay_dead_letters(kafka.bootstrap_servers, group)
        assert replayed == 4
        await wait_for(
            lambda: scalar(consumer_db, "SELECT count(*) FROM probe_effects WHERE key = 'flaky'"),
            what="the mended event",
        )
        await wait_for(lambda: consumer.stats["dead_lettered"] == 7, what="3 re-dead")
        # The three still-poison events wait in the dead-letter topic for the next replay.
        assert await pending_dead_letters(kafka.bootstrap_servers, group) == 3
    finally:
        stop.set()
        await task
    # What the consumer logged about them names no value of theirs, as the services' JSON
    # log lines would carry it.
    formatter = JsonFormatter("probe")
    lines = [formatter.format(record) for record in caplog.records]
    assert any("dead-lettered" in line for line in lines)
    assert not [line for line in lines if "Okafor" in line]


async def test_an_event_older_than_the_inbox_remembers_is_dead_lettered_not_applied(
    probe_databases, kafka: Broker
) -> None:
    """Its inbox row may have been pruned since it was applied (shared/messaging/inbox.py):
    applying it could apply it twice, so it is parked, saying why; a younger one applies."""
    _, consumer_db, consumer_url = probe_databases
    registry = probe_registry()
    topic = next(iter(registry.topics)).name
    group = f"probe-{uuid.uuid4().hex[:8]}"

    recorded = "uk.upstream.probe.recorded.v1"
    too_old = record_value(recorded, {"key": "case-x", "seq": 1}, age=timedelta(days=45))
    young = record_value(recorded, {"key": "case-x", "seq": 2}, age=timedelta(days=43))
    consumer = make_consumer(
        registry, group, consumer_url, kafka.bootstrap_servers, remembers_for=timedelta(days=44)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await wait_for(lambda: bool(consumer.assigned_partitions), what="assignment")
        await send_raw(kafka, topic, [too_old, young])
        await wait_for(
            lambda: scalar(consumer_db, "SELECT count(*) FROM probe_effects"),
            what="the younger event",
        )
        (dead,) = await read_topic(kafka.bootstrap_servers, f"{group}.dlq", expected=1)
        assert dead.value == too_old
        reason = dict(dead.headers)["dlq-error"].decode()
        assert "older than the inbox remembers (44 days)" in reason
        assert await scalar(consumer_db, "SELECT seq FROM probe_effects") == 2
        assert consumer.stats["applied"] == consumer.stats["dead_lettered"] == 1
    finally:
        stop.set()
        await task


async def test_outbox_replay_republishes_and_consumers_apply_nothing_twice(
    probe_databases, kafka: Broker
) -> None:
    producer_db, consumer_db, consumer_url = probe_databases
    registry = probe_registry()
    group = f"probe-{uuid.uuid4().hex[:8]}"
    await write_events(producer_db, registry, [(f"case-{i % 3}", i) for i in range(30)])
    relay = make_relay(producer_db, registry, kafka.bootstrap_servers, partitions=2)
    consumer = make_consumer(registry, group, consumer_url, kafka.bootstrap_servers)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(consumer.run(stop))]
    try:
        await wait_for(
            lambda: scalar(consumer_db, "SELECT count(*) FROM probe_effects HAVING count(*) >= 30"),
            what="30 effects",
        )
        async with session_factory(producer_db)() as session, session.begin():
            assert await replay(session) == 30
        await wait_for(lambda: consumer.stats["duplicate"] == 30, what="30 duplicates")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert await scalar(consumer_db, "SELECT count(*) FROM probe_effects") == 30
    assert await scalar(consumer_db, "SELECT sum(total) FROM probe_totals") == 30


async def test_the_relay_wakes_when_a_transaction_commits(probe_databases, kafka: Broker) -> None:
    """The outbox's trigger notifies the relay at commit: the event is published although
    the relay's fallback poll would not come round for ten minutes."""
    producer_db, _, _ = probe_databases
    registry = probe_registry()
    topic = next(iter(registry.topics)).name
    relay = OutboxRelay(
        session_factory(producer_db),
        bootstrap_servers=kafka.bootstrap_servers,
        topics=[TopicSpec(topic, 1)],
        producer_factory=partial(new_producer, kafka.bootstrap_servers, kafka.profile),
        poll_interval=600,
        wake_on_commit_from=producer_db.url.render_as_string(hide_password=False),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(1)  # its first passes, with nothing to send, are behind it
        await write_events(producer_db, registry, [("case-w", 1), ("case-w", 2)])
        await wait_for(
            lambda: unpublished_is_zero(producer_db), timeout=30, what="the relay to wake"
        )
        events = await read_topic(kafka.bootstrap_servers, topic, expected=2, settle=0.2)
        assert [CloudEvent.from_bytes(r.value).data["seq"] for r in events] == [1, 2]
    finally:
        stop.set()
        await task


async def unpublished_is_zero(engine) -> bool:
    return await unpublished(engine) == 0


async def test_the_relay_keeps_a_topic_s_rows_no_longer_than_the_broker_keeps_the_topic(
    probe_databases, kafka: Broker
) -> None:
    """Published rows stay 30 days for a replay, those of a topic the broker keeps 7 days
    (subject access answers) 7 days: the outbox is no longer copy than the topic."""
    producer_db, _, _ = probe_databases
    registry = EventRegistry()
    lasting = registry.topic(f"probe.lasting.{uuid.uuid4().hex[:6]}", "kept as long as any")
    brief = registry.topic(
        f"probe.brief.{uuid.uuid4().hex[:6]}", "kept a week", retention_ms=7 * 24 * 3600 * 1000
    )
    for name, topic in (("lasting", lasting), ("brief", brief)):
        registry.register(
            f"uk.upstream.probe.{name}.v1",
            ProbeRecorded if name == "lasting" else ProbeFlaky,
            topic=topic,
            description=name,
            classification=DataClassification.OPERATIONAL,
        )
    outbox = Outbox(registry, source="/upstream/probe")
    async with session_factory(producer_db)() as session, session.begin():
        for days in (3, 10, 40):
            await outbox.add(session, ProbeRecorded(key=f"l{days}", seq=days), subject=f"l{days}")
            await outbox.add(session, ProbeFlaky(note=f"b{days}"), subject=f"b{days}")
        await session.execute(
            text(
                "UPDATE outbox SET published_at = now() - make_interval(days => "
                "CAST(substr(message_key, 2) AS int))"
            )
        )
    relay = OutboxRelay(
        session_factory(producer_db),
        bootstrap_servers=kafka.bootstrap_servers,
        topics=[spec_of(t, partitions=1, replication_factor=1) for t in registry.topics],
        producer_factory=partial(new_producer, kafka.bootstrap_servers, kafka.profile),
    )
    assert await relay.prune(utc_now()) == 3  # l40, b40, b10
    async with producer_db.connect() as connection:
        left = sorted((await connection.scalars(text("SELECT message_key FROM outbox"))).all())
    assert left == ["b3", "l10", "l3"]


async def test_a_replayed_row_goes_once_written_longer_ago_than_the_retention(
    probe_databases, kafka: Broker
) -> None:
    """A replay publishes a row again, and its published_at starts anew: without pruning by
    when it was written, replays would keep it, and bring it back to consumers that refuse
    events older than their inbox remembers. An unpublished row stays, whatever its age."""
    producer_db, _, _ = probe_databases
    registry = probe_registry()
    outbox = Outbox(registry, source="/upstream/probe")
    async with session_factory(producer_db)() as session, session.begin():
        # The unpublished row first: below the first row kept, it is held by being unsent.
        for key in ("unpublished-40-days-ago", "written-40-days-ago", "written-20-days-ago"):
            await outbox.add(session, ProbeRecorded(key=key, seq=1), subject=key)
        await session.execute(
            text(
                "UPDATE outbox SET created_at = now() - make_interval(days => "
                "CAST(split_part(message_key, '-', 2) AS int)), published_at = CASE "
                "WHEN message_key LIKE 'unpublished%' THEN NULL ELSE now() - interval '1 day' END"
            )
        )
    relay = make_relay(producer_db, registry, kafka.bootstrap_servers, partitions=1)
    assert await relay.prune(utc_now()) == 1
    assert await relay.prune(utc_now()) == 0
    async with producer_db.connect() as connection:
        left = sorted((await connection.scalars(text("SELECT message_key FROM outbox"))).all())
    assert left == ["unpublished-40-days-ago", "written-20-days-ago"]
    # Every row written long ago: the last published one goes too.
    async with producer_db.begin() as connection:
        await connection.execute(text("UPDATE outbox SET created_at = now() - interval '40 days'"))
    assert await relay.prune(utc_now()) == 1
    async with producer_db.connect() as connection:
        left = sorted((await connection.scalars(text("SELECT message_key FROM outbox"))).all())
    assert left == ["unpublished-40-days-ago"]


async def test_a_connection_lost_before_its_first_statement_is_a_transient_failure(
    service_database,
) -> None:
    """A pooled connection whose server side ended (a restart) fails at the BEGIN that
    ``driver`` sends for the inbox's first statement: reported as SQLAlchemy reports a lost
    connection, so the consumer retries the event rather than parking it, and the pool
    hands out a live one next."""
    url = await service_database("referrals")
    engine = create_engine(url, pre_ping=False)  # as a worker's
    sessions = session_factory(engine)
    async with sessions() as session:  # a connection into the pool, its backend noted
        pid = await session.scalar(text("SELECT pg_backend_pid()"))
    admin = create_engine(url)  # its own pool: not the connection it ends
    async with admin.connect() as other:
        await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await other.commit()
    await admin.dispose()
    with pytest.raises(sa_exc.OperationalError) as lost:
        async with sessions() as session, session.begin():
            await driver(session)
    assert lost.value.connection_invalidated and is_transient(lost.value)
    async with sessions() as session, session.begin():
        connection = await driver(session)
        assert await connection.fetchval("SELECT 1") == 1
    await engine.dispose()
