"""Sealing an event for the wire (shared/messaging/sealing.py), without a keystore; and what a
consumer asks a keystore for the records of one fetch."""

from __future__ import annotations

import copy
import json
import os
import uuid

import pytest

from shared.messaging.sealing import SubjectKey, Unsealable, seal, unseal


def _envelope() -> dict:
    case = str(uuid.uuid4())
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/upstream/referrals",
        "type": "uk.upstream.referrals.case.ready_for_routing.v1",
        "subject": case,
        "partitionkey": case,
        "time": "2026-12-01T10:00:00Z",
        "datacontenttype": "application/json",
        "correlationid": "req-1",
        "data": {"case_id": case, "packet": {"first_name": "Amina", "phone": "07700 900123"}},
    }


KEY = SubjectKey(str(uuid.uuid4()), os.urandom(32))


def test_a_sealed_envelope_keeps_only_what_routes_it_and_opens_to_the_original() -> None:
    envelope = _envelope()
    sealed = seal(envelope, KEY)
    assert set(sealed) == {
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "datacontenttype",
        "data",
        "partitionkey",
        "sealedwith",
    }  # fmt: skip  (the trace ids are sealed too: they could link a resident's story)
    assert list(sealed["data"]) == ["sealed"]
    wire = str(sealed)
    assert envelope["subject"] not in wire and "Amina" not in wire and "07700" not in wire
    assert unseal(sealed, KEY.data_key) == envelope
    assert seal(envelope, KEY)["data"] != sealed["data"]  # a fresh nonce each time


def test_another_key_a_changed_ciphertext_or_a_moved_ciphertext_does_not_open() -> None:
    sealed = seal(_envelope(), KEY)
    with pytest.raises(Unsealable):
        unseal(sealed, os.urandom(32))
    tampered = copy.deepcopy(sealed)
    blob = tampered["data"]["sealed"]
    tampered["data"]["sealed"] = blob[:-4] + ("AAAA" if blob[-4:] != "AAAA" else "BBBB")
    with pytest.raises(Unsealable):
        unseal(tampered, KEY.data_key)
    # The ciphertext is bound to every attribute in the clear: pasted into another event,
    # or under a changed time or classification, it does not open.
    for change in ({"id": str(uuid.uuid4())}, {"time": "2026-12-02T10:00:00Z"},
                   {"dataclassification": "operational"}):  # fmt: skip
        with pytest.raises(Unsealable):
            unseal({**sealed, **change}, KEY.data_key)
    with pytest.raises(Unsealable):
        unseal({**sealed, "data": {}}, KEY.data_key)


class _CountingKeystore:
    """Answers data keys from a dict and remembers each question (one a round trip)."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        self.keys: dict[str, bytes | None] = dict(keys)  # None: forgotten
        self.asked: list[set[str]] = []

    async def data_keys(self, key_ids: set[str]) -> dict[str, bytes | None]:
        self.asked.append(set(key_ids))
        return {k: self.keys[k] for k in key_ids if k in self.keys}


def _record(partition: int, envelope: dict) -> object:
    from aiokafka import ConsumerRecord

    value = json.dumps(envelope).encode()
    return ConsumerRecord("probe", partition, 0, 0, 0, b"k", value, None, 1, len(value), [])


async def test_a_fetch_asks_the_keystore_once_for_every_partition_and_not_for_ignored_types() -> (
    None
):
    from shared.messaging.consumer import ConsumerSpec, EventConsumer
    from shared.messaging.handlers import EventHandlers
    from tests.support.probe import ProbeRecorded, probe_registry

    registry = probe_registry()
    handlers = EventHandlers()
    handlers.on(ProbeRecorded)(lambda payload, uow: None)  # only the probe's "recorded"
    handled, other, ignored = (str(uuid.uuid4()) for _ in range(3))
    keystore = _CountingKeystore({k: os.urandom(32) for k in (handled, other, ignored)})
    consumer = EventConsumer(
        ConsumerSpec("prefetch", handlers),
        registry=registry,
        sessions=None,  # type: ignore[arg-type]  # no database: only the prefetch is asked
        unit_of_work=None,  # type: ignore[arg-type]
        bootstrap_servers="",
        producer_factory=None,  # type: ignore[arg-type]
        keystore=keystore,  # type: ignore[arg-type]
    )
    recorded, flaky = "uk.upstream.probe.recorded.v1", "uk.upstream.probe.flaky.v1"
    records = [
        _record(0, {"type": recorded, "sealedwith": handled}),
        _record(3, {"type": recorded, "sealedwith": other}),
        _record(5, {"type": flaky, "sealedwith": ignored}),  # handled? no: not on this group
        _record(5, {"type": recorded}),  # not sealed
    ]

    prefetched = await consumer._prefetch_keys(records)  # type: ignore[arg-type]

    assert keystore.asked == [{handled, other}]  # one question, for two partitions
    assert set(prefetched.keys) == {handled, other}
    assert prefetched.fresh(handled) and prefetched.key(handled) == keystore.keys[handled]


async def test_every_fetch_asks_the_keystore_afresh_so_a_forgotten_key_opens_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fetch's keys serve its own records for ``PREFETCHED_FOR_S``; the next fetch asks
    again, even a moment later: a key forgotten in between (an erasure) opens nothing of
    what it fetched. (Trusting the last fetch's keys opened an erased resident's records.)"""
    from shared.messaging import consumer as consuming
    from shared.messaging.consumer import ConsumerSpec, EventConsumer
    from shared.messaging.handlers import EventHandlers
    from tests.support.probe import ProbeRecorded, probe_registry

    handlers = EventHandlers()
    handlers.on(ProbeRecorded)(lambda payload, uow: None)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    keystore = _CountingKeystore({k: os.urandom(32) for k in (first, second)})
    consumer = EventConsumer(
        ConsumerSpec("prefetch", handlers),
        registry=probe_registry(),
        sessions=None,  # type: ignore[arg-type]  # no database: only the prefetch is asked
        unit_of_work=None,  # type: ignore[arg-type]
        bootstrap_servers="",
        producer_factory=None,  # type: ignore[arg-type]
        keystore=keystore,  # type: ignore[arg-type]
    )
    recorded = "uk.upstream.probe.recorded.v1"
    now = [1000.0]
    monkeypatch.setattr(consuming.time, "monotonic", lambda: now[0])

    await consumer._prefetch_keys([_record(0, {"type": recorded, "sealedwith": first})])  # type: ignore[list-item]
    keystore.keys[first] = None  # forgotten a moment later
    now[0] += consuming.PREFETCHED_FOR_S / 10
    both = [_record(0, {"type": recorded, "sealedwith": k}) for k in (first, second)]
    prefetched = await consumer._prefetch_keys(both)  # type: ignore[arg-type]
    assert keystore.asked == [{first}, {first, second}]
    assert prefetched.fresh(first) and prefetched.key(first) is None  # it opens nothing
    now[0] += consuming.PREFETCHED_FOR_S
    assert not prefetched.fresh(second)  # a record handled later asks on its own
