"""The keystore on a real PostgreSQL, and sealed events through the real broker: a relay
with the keystore puts no byte of an event's data or aggregate id on the wire in the clear;
a consumer with it opens and applies them once; forgetting a subject's keys makes every
record of it skipped, while another subject's still open; a record sealed under a key the
keystore never held is dead-lettered, never dropped."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from devtools.embedded import with_database
from shared.db import create_engine, session_factory
from shared.messaging.outbox import Outbox
from shared.messaging.sealing import Keystore, SubjectKey, UnknownKey, digest_of, seal, unseal
from tests.conftest import MakeDatabase
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
    create_tables,
    probe_consumer,
    probe_registry,
    scalar,
)
from tests.support.services import publisher

pytestmark = pytest.mark.integration


@pytest.fixture
async def keystore(postgres_admin_url: str):  # type: ignore[no-untyped-def]
    store = Keystore(with_database(postgres_admin_url, f"keys_{uuid.uuid4().hex[:8]}"))
    try:
        yield store
    finally:
        await store.close()


async def test_a_subject_keeps_its_key_until_forgotten_then_gets_a_new_one(
    keystore: Keystore,
) -> None:
    case, other = str(uuid.uuid4()), str(uuid.uuid4())
    first = await keystore.keys_for([case, other])
    again = await keystore.keys_for([case])
    assert again[case] == first[case]
    assert first[case].key_id != first[other].key_id
    assert await keystore.data_key(first[case].key_id) == first[case].data_key

    erased_at = datetime.now(UTC)
    assert await keystore.forget([digest_of(case)], at=erased_at, forgetting="f1") == 1
    earlier = erased_at - timedelta(days=1)
    assert await keystore.forget([digest_of(case)], at=earlier, forgetting="f0") == 0
    assert await keystore.data_key(first[case].key_id) is None  # forgotten, not unknown
    assert await keystore.data_key(first[other].key_id) == first[other].data_key
    renewed = await keystore.keys_for([case])
    assert renewed[case].key_id != first[case].key_id  # seen again: a new key
    # ... that seals only what was written after the erasure (a replay moved nothing back).
    assert renewed[case].forgotten_at == erased_at
    assert not renewed[case].seals(erased_at - timedelta(seconds=1))
    assert renewed[case].seals(erased_at + timedelta(seconds=1))
    assert first[other].forgotten_at is None and first[other].seals(erased_at)
    # A replay of the forgetting (the same one) leaves the key made since it was carried
    # out; the keys' clock is the keystore's, whatever time the erasure was written at.
    assert await keystore.forget([digest_of(case)], at=erased_at, forgetting="f1") == 0
    assert await keystore.data_key(renewed[case].key_id) == renewed[case].data_key
    with pytest.raises(UnknownKey):
        await keystore.data_key(str(uuid.uuid4()))
    # A batch's keys in one round trip: forgotten ones as None, never-held ones left out.
    stranger = str(uuid.uuid4())
    batch = [first[case].key_id, first[other].key_id, stranger, "not-a-key-id"]
    assert await keystore.data_keys(batch) == {
        first[case].key_id: None,
        first[other].key_id: first[other].data_key,
    }


async def test_a_key_made_while_the_erasure_is_being_written_is_forgotten_with_it(
    keystore: Keystore,
) -> None:
    """The erasure is written (its time taken at its transaction's start); meanwhile a relay
    makes a key for her and seals an event of hers with it; the forgetting, carried out
    after, forgets that key too: it was made before the forgetting, by the keystore's
    clock. And a key being made while the forgetting runs waits for it, then is new."""
    case = str(uuid.uuid4())
    written_at = datetime.now(UTC)
    made = (await keystore.keys_for([case]))[case]
    assert await keystore.forget([digest_of(case)], at=written_at, forgetting="f2") == 1
    assert await keystore.data_key(made.key_id) is None
    other = str(uuid.uuid4())
    forgetting = asyncio.create_task(
        keystore.forget([digest_of(other)], at=datetime.now(UTC), forgetting="f3")
    )
    making = asyncio.create_task(keystore.keys_for([other]))
    forgotten, keys = await asyncio.gather(forgetting, making)
    # Either the key was made first and forgotten, or made after, as a new key.
    key = keys[other]
    assert (forgotten == 1 and await keystore.data_key(key.key_id) is None) or (
        forgotten == 0 and await keystore.data_key(key.key_id) == key.data_key
    )


async def test_sealed_envelopes_name_nothing_and_open_with_their_key(keystore: Keystore) -> None:
    case = str(uuid.uuid4())
    key = (await keystore.keys_for([case]))[case]
    envelope = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/upstream/test",
        "type": "uk.upstream.referrals.case.opened.v1",
        "subject": case,
        "partitionkey": case,
        "time": "2026-12-01T10:00:00Z",
        "datacontenttype": "application/json",
        "data": {"case_id": case, "given_name": "Amina"},
    }
    sealed = seal(envelope, key)
    assert case not in json.dumps(sealed) and "Amina" not in json.dumps(sealed)
    assert sealed["partitionkey"] == sealed["sealedwith"] == key.key_id
    assert unseal(sealed, key.data_key) == envelope


@pytest.fixture
async def probe_databases(service_database: MakeDatabase):  # type: ignore[no-untyped-def]
    producer = create_engine(await service_database("referrals"))
    consumer_url = await service_database("risk")
    consumer = create_engine(consumer_url)
    await create_tables(producer, PRODUCER_DDL)
    await create_tables(consumer, CONSUMER_DDL)
    yield producer, consumer, consumer_url
    await producer.dispose()
    await consumer.dispose()


async def test_through_the_broker_sealed_events_apply_once_and_forgotten_ones_not_at_all(
    probe_databases, kafka: Broker, keystore: Keystore
) -> None:
    producer_db, consumer_db, consumer_url = probe_databases
    registry = probe_registry()
    topic = next(iter(registry.topics)).name
    keep, gone = f"kept-{uuid.uuid4().hex[:6]}", f"gone-{uuid.uuid4().hex[:6]}"
    bootstrap = kafka.bootstrap_servers
    await write_events(producer_db, registry, [(keep, 1), (gone, 1)])
    await _relay_until_drained(producer_db, registry, bootstrap, keystore)
    first = await read_topic(bootstrap, topic, expected=2)
    for record in first:  # nothing of the aggregate or the payload in the clear
        assert keep.encode() not in record.value + (record.key or b"")
        assert gone.encode() not in record.value + (record.key or b"")
        assert json.loads(record.value)["sealedwith"] == record.key.decode()
    before = await keystore.keys_for([keep, gone])  # theirs already: nothing new made
    assert {r.key.decode() for r in first} == {before[keep].key_id, before[gone].key_id}

    # An event of hers still unsent, her erasure (forgetting in its transaction), then
    # an event written after it: the first is never sent, the last under a new key.
    await write_events(producer_db, registry, [(gone, 2)])
    async with session_factory(producer_db)() as session, session.begin():
        await Outbox(registry, source="/upstream/probe").forget(session, [gone], before=gone)
    await write_events(producer_db, registry, [(gone, 3)])
    await _relay_until_drained(producer_db, registry, bootstrap, keystore)
    records = await read_topic(bootstrap, topic, expected=3)
    assert len(records) == 3
    keys = sorted(r.key.decode() for r in records)
    renewed = set(keys) - {before[keep].key_id, before[gone].key_id}
    assert len(renewed) == 1 and keys.count(before[gone].key_id) == 1  # seq 2 never sent

    stop = asyncio.Event()
    tasks = []
    try:
        group = f"sealed-{uuid.uuid4().hex[:6]}"
        consumer = probe_consumer(registry, group, consumer_url, bootstrap, keystore=keystore)
        tasks.append(asyncio.create_task(consumer.run(stop)))
        await wait_for(
            lambda: consumer.stats["applied"] + consumer.stats["erased"] >= 3,
            what="every record handled",
        )
        assert consumer.stats["applied"] == 2 and consumer.stats["erased"] == 1
        effects = "SELECT count(*) * 100 + coalesce(sum(seq), 0) FROM probe_effects WHERE key = :k"
        assert await scalar(consumer_db, effects, k=keep) == 101  # one effect: seq 1
        assert await scalar(consumer_db, effects, k=gone) == 103  # one effect: seq 3

        # A record sealed under a key no keystore ever held is parked, not dropped; so is
        # every sealed record reaching a consumer with no keystore.
        stranger = seal(json.loads(records[0].value) | {"data": {"seq": 1}}, _unknown_key())
        async with publisher(bootstrap) as sender:
            await sender.producer.send_and_wait(topic, value=json.dumps(stranger).encode())
        await wait_for(lambda: consumer.stats["dead_lettered"] == 1, what="the stranger parked")
        blind = probe_consumer(registry, f"blind-{uuid.uuid4().hex[:6]}", consumer_url, bootstrap)
        tasks.append(asyncio.create_task(blind.run(stop)))
        await wait_for(lambda: blind.stats["dead_lettered"] == 4, what="all four parked")
        assert blind.stats["applied"] == 0
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def _relay_until_drained(engine, registry, bootstrap: str, keystore: Keystore) -> None:  # type: ignore[no-untyped-def]
    relay = make_relay(engine, registry, bootstrap, partitions=2, keystore=keystore)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await wait_for(lambda: _none_left(engine), what="the outbox to drain")
    finally:
        stop.set()
        await task


def _unknown_key() -> SubjectKey:
    return SubjectKey(str(uuid.uuid4()), os.urandom(32))


async def _none_left(engine) -> bool:  # type: ignore[no-untyped-def]
    return await unpublished(engine) == 0
