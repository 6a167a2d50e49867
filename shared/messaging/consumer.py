"""Consumer runner: at-least-once delivery from Kafka, applied once through the inbox.

A sealed record (``shared/messaging/sealing.py``) is first opened with its data key from the
keystore; one whose key was forgotten (an erasure) is skipped, counted ``erased``, and one
sealed under a key the keystore never held is dead-lettered. Then, for each record, in one
database transaction: insert (consumer, event id) into the inbox;
if it was there already the event is a duplicate and is skipped, otherwise the handler runs.
A failure rolls both back. Offsets are committed explicitly, only after the transaction.
Records of an interactive partition fetched together are applied in runs of up to
``RUN_SIZE`` in one transaction (each still through the inbox, in order): one commit for
the run; if any of them cannot go so, the run is rolled back whole and each is handled on
its own, as above.

What cannot be applied goes to the group's dead-letter topic with the error in its headers:
a record that is not a CloudEvent, an unknown major version of a handled type, an event
older than the inbox remembers (``remembers_for``: it may have been applied, its inbox row
pruned since, so applying it could apply it twice), a payload
that does not validate, or a handler that keeps failing after retries with backoff. The
consumer then carries on. Database, keystore and broker outages are not the event's fault:
they are retried until they pass, and nothing is dead-lettered for them.

Interactive before bulk: a consumer reads each of its topics' bulk lanes too
(``EventRegistry.bulk_lane``), and serves the interactive partitions first: of each batch
fetched, the interactive records go first, and after every bulk record it handles whatever
interactive records have arrived meanwhile. A bulk backlog never sits in front of an
interactive event; each partition is still handled in order (a key is on one topic only).

Resting (``Resting``): a consumer with nothing to do for a while fetches only every so
often, not continuously. Tansu, the embedded broker, holds every fetch for its whole wait
even when a record arrives meanwhile, so its consumers keep their wait short and, idle,
fetch ten times a second; Apache Kafka answers a fetch as soon as a record arrives, so
there the wait is long and a consumer need not rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NamedTuple

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from pydantic import BaseModel, ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession

from shared.context import traced
from shared.db import DATABASE_UNREACHABLE, RETRY_SQLSTATES, SessionFactory, driver
from shared.events.envelope import CloudEvent, EnvelopeError, utc_now
from shared.events.registry import EventRegistry, EventType, Topic, split_type
from shared.messaging.backoff import backoff_delay, sleep_unless_stopped
from shared.messaging.handlers import EventHandlers, Handler, WritesItsInboxRow
from shared.messaging.kafka import dead_letter_topic, ensure_topics, spec_of
from shared.messaging.sealing import Keystore, KeystoreUnavailable, UnknownKey, Unsealable, unseal
from shared.messaging.tables import inbox
from shared.observability import (
    CONSUMER_LAG,
    EVENT_FETCH_DELAY,
    EVENT_HANDLING,
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
    EVENTS_FAILED,
)
from shared.redaction import safe_reason
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


UnitOfWorkFactory = Callable[[AsyncSession, CloudEvent], UnitOfWork[Any]]
"""Builds the unit of work a handler gets, around the consumer's session and the event."""


@dataclass(frozen=True)
class ConsumerSpec:
    """A consumer group: the payloads it handles, and how."""

    group_id: str
    handlers: EventHandlers[Any] = field(default_factory=EventHandlers)

    @property
    def dead_letter_topic(self) -> str:
        return dead_letter_topic(self.group_id)


FETCH_MAX_WAIT_MS = 100


@dataclass(frozen=True)
class Resting:
    """After ``after_s`` with nothing fetched, fetch only once every ``pause_s``, and the bulk
    lanes' partitions only every ``bulk_every``-th time: the first event after a quiet spell
    waits up to ``pause_s`` longer (a bulk one, such as a feed's flag, up to ``bulk_every``
    times that); the next ones do not."""

    after_s: float  # (a worker's from its settings: consumer_rest_after_s, consumer_rest_ms)
    pause_s: float
    bulk_every: int = 5

    def __post_init__(self) -> None:
        if self.bulk_every < 1:
            raise ValueError("bulk_every must be 1 or more (1: the bulk lanes after every rest)")


class DeadLetter(Exception):
    """This record can never be applied as it is."""

    event: CloudEvent | None = None  # its envelope, if it read: the parked record says so


class Ready(NamedTuple):
    """A record opened and checked, to apply."""

    event: CloudEvent
    payload: BaseModel
    handler: Handler[Any, Any]


RUN_SIZE = 50  # interactive records applied in one transaction at most
RUN_LOCK_WAIT_MS = 500  # under PostgreSQL's deadlock_timeout (1 s): a run yields first
_INBOX_INSERT = (
    f"INSERT INTO {inbox.name} (consumer, event_id, event_type) VALUES ($1, $2, $3) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


_ABANDONED = object()  # stopped before the event could be opened

PREFETCHED_FOR_S = 1.0  # a data key read from the keystore, trusted this long (then asked again)


@dataclass(frozen=True)
class Prefetched:
    """The data keys fetched for a batch of records, each with when it was read from the
    keystore: a key is used for the batch's records that need it within
    ``PREFETCHED_FOR_S`` of its reading, never after, and never for another batch."""

    keys: dict[str, tuple[bytes | None, float]] = field(default_factory=dict)

    def fresh(self, key_id: str) -> bool:
        # A batch handled slowly (retries, a long handler) asks again: a key forgotten
        # meanwhile opens nothing more.
        read = self.keys.get(key_id)
        return read is not None and time.monotonic() - read[1] < PREFETCHED_FOR_S

    def key(self, key_id: str) -> bytes | None:
        return self.keys[key_id][0]


def is_transient(exc: BaseException) -> bool:
    """Infrastructure trouble (database or network) or a concurrency conflict that passes
    on retry, as opposed to a bad event or a bug (which would fail the same way again)."""
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        driver_error = exc.orig.__cause__ if exc.orig is not None else None
        if getattr(driver_error, "sqlstate", None) in RETRY_SQLSTATES:
            return True
    # The same answers from asyncpg itself, for the statements run on its connection
    # (``shared.db.driver``): the inbox, the erasure guard, the outbox.
    if isinstance(exc, asyncpg.PostgresError) and exc.sqlstate in RETRY_SQLSTATES:
        return True
    return isinstance(exc, DATABASE_UNREACHABLE)  # (a TimeoutError is an OSError)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, runner: EventConsumer) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._runner._commit(only=revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"partitions": sorted(map(str, assigned))})


class EventConsumer:
    def __init__(
        self,
        spec: ConsumerSpec,
        *,
        registry: EventRegistry,
        sessions: SessionFactory,
        unit_of_work: UnitOfWorkFactory,
        bootstrap_servers: str,
        producer_factory: Callable[[], AIOKafkaProducer],
        partitions: int = 6,
        replication_factor: int = 1,
        max_attempts: int = 3,
        retry_backoff: float = 0.05,
        batch_size: int = 200,
        keystore: Keystore | None = None,
        fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
        resting: Resting | None = None,
        run_size: int = RUN_SIZE,
        remembers_for: timedelta | None = None,
    ) -> None:
        self.spec = spec
        # How long the inbox keeps its rows, less a day of clocks' drift: an event older
        # than that may have been applied, its row since pruned (shared/messaging/inbox.py).
        self._remembers_for = remembers_for
        self._run_size = run_size
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._resting = resting
        self._rests = 0  # rests taken (the bulk lanes are fetched every ``bulk_every``-th)
        self._keystore = keystore  # opens sealed events (shared/messaging/sealing.py)
        self._registry = registry
        self._sessions = sessions
        self._unit_of_work = unit_of_work
        self._bootstrap = bootstrap_servers
        self._producer_factory = producer_factory
        self._max_attempts = max_attempts
        self._retry_backoff = retry_backoff
        self._batch_size = batch_size
        self._handled = self._resolve_handlers(spec.handlers)
        topics: dict[str, Topic | str] = {}
        for event_type, _ in self._handled.values():
            topics[event_type.topic.name] = event_type.topic
            if (bulk_lane := registry.bulk_lane_of(event_type.topic)) is not None:
                topics[bulk_lane.name] = bulk_lane
        self._topics = sorted(topics)
        self._bulk_topics = frozenset(
            name for name, topic in topics.items() if isinstance(topic, Topic) and topic.bulk
        )
        self._topic_specs = [
            spec_of(topic, partitions=partitions, replication_factor=replication_factor)
            for topic in [*topics.values(), spec.dead_letter_topic]
        ]
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._pending: dict[TopicPartition, int] = {}
        self._lock = asyncio.Lock()
        self.stats = {
            "applied": 0,
            "duplicate": 0,
            "ignored": 0,
            "erased": 0,
            "dead_lettered": 0,
        }

    def _resolve_handlers(
        self, handlers: EventHandlers[Any]
    ) -> dict[str, tuple[EventType, Handler[Any, Any]]]:
        resolved: dict[str, tuple[EventType, Handler[Any, Any]]] = {}
        for payload, handler in handlers:
            event_type = self._registry.for_payload(payload)
            if event_type.family in resolved:
                raise ValueError(f"{self.spec.group_id} handles two versions of {event_type.name}")
            resolved[event_type.family] = (event_type, handler)
        return resolved

    @property
    def topics(self) -> list[str]:
        return self._topics

    @property
    def assigned_partitions(self) -> set[TopicPartition]:
        return set(self._consumer.assignment()) if self._consumer is not None else set()

    @property
    def resting(self) -> bool:
        """Whether it is resting now (its partitions paused: ``Resting``)."""
        return self._consumer is not None and bool(self._consumer.paused())

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; reconnect through broker outages."""
        failures = 0
        while not stop.is_set():
            try:
                await self._start()
                failures = 0
                await self._consume(stop)
            except (KafkaError, OSError, TimeoutError) as exc:
                failures += 1
                delay = backoff_delay(failures)
                log.warning(
                    "consumer lost the broker; restarting",
                    extra={"consumer": self.spec.group_id, "error": repr(exc), "retry_in_s": delay},
                )
                await sleep_unless_stopped(stop, delay)
            finally:
                await self._shutdown()

    async def _start(self) -> None:
        await ensure_topics(self._bootstrap, self._topic_specs)
        self._producer = self._producer_factory()
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self.spec.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_interval_ms=300_000,
            # How long the broker may hold a fetch with nothing new. aiokafka's getmany waits
            # out most of it even when a record arrives meanwhile (measured here: ~215 ms a
            # hop at 500 ms, the default; ~15 ms at 100 ms), so keep it short: an event's
            # journey crosses three consumers. Idle, it costs a fetch every 100 ms.
            fetch_max_wait_ms=self._fetch_max_wait_ms,
        )
        self._consumer.subscribe(self._topics, listener=_Rebalance(self))
        await self._consumer.start()

    async def _shutdown(self) -> None:
        consumer, self._consumer = self._consumer, None
        producer, self._producer = self._producer, None
        if consumer is not None:
            try:
                await self._commit(consumer=consumer)
            finally:
                await consumer.stop()
        if producer is not None:
            await producer.stop()

    async def _consume(self, stop: asyncio.Event) -> None:
        assert self._consumer is not None
        busy_at = time.monotonic()
        while not stop.is_set():
            resting = self._resting is not None and (
                time.monotonic() - busy_at >= self._resting.after_s
            )
            if resting:
                await self._rest(stop)
            elif self._consumer.paused():  # awake again: the bulk lanes too
                self._consumer.resume(*self._consumer.paused())
            batches = await self._consumer.getmany(
                # Resting: back to rest after one fetch's wait, not after several.
                timeout_ms=self._fetch_max_wait_ms * 3 // 2 if resting else 500,
                max_records=self._batch_size,
            )
            if any(batches.values()):
                busy_at = time.monotonic()
            await self._handle_batches(batches, stop)
            await self._commit()

    async def _rest(self, stop: asyncio.Event) -> None:
        """No fetching for a moment: every partition paused, then the interactive ones
        resumed (the bulk lanes' too, every ``bulk_every``-th time)."""
        assert self._consumer is not None and self._resting is not None
        self._consumer.pause(*self._consumer.assignment())
        try:
            await sleep_unless_stopped(stop, self._resting.pause_s)
        finally:
            # Only what is still ours: a rebalance meanwhile assigns afresh, unpaused. The
            # bulk lanes' partitions wait for every ``bulk_every``-th fetch: half of what a
            # quiet worker's fetches decode, for work no one waits on by the second.
            self._rests += 1
            paused = self._consumer.paused()
            if self._rests % self._resting.bulk_every:
                paused = {tp for tp in paused if tp.topic not in self._bulk_topics}
            self._consumer.resume(*paused)

    async def _handle_batches(
        self, batches: dict[TopicPartition, list[ConsumerRecord]], stop: asyncio.Event
    ) -> None:
        """Each partition's records in order, the interactive partitions' first; after each
        bulk record, any interactive records fetched meanwhile."""
        assert self._consumer is not None
        keys = await self._prefetch_keys([r for records in batches.values() for r in records])
        for tp, records in sorted(batches.items(), key=lambda b: b[0].topic in self._bulk_topics):
            bulk = tp.topic in self._bulk_topics
            # Interactive records in runs of one transaction; bulk ones one at a time, so
            # that an interactive record waits for one bulk record at most.
            size = 1 if bulk else self._run_size
            for start in range(0, len(records), size):
                if stop.is_set():
                    break
                async with self._lock:
                    if tp not in self._consumer.assignment():
                        break  # revoked meanwhile: the new owner reads it again
                    if not await self._handle_run(tp, records[start : start + size], stop, keys):
                        break  # shutting down: left uncommitted, delivered again later
                if bulk:
                    await self._serve_interactive(stop)
            highwater = self._consumer.highwater(tp)
            if highwater is not None and tp in self._pending:
                CONSUMER_LAG.labels(self.spec.group_id, tp.topic, tp.partition).set(
                    max(0, highwater - self._pending[tp])
                )

    async def _handle_run(
        self,
        tp: TopicPartition,
        run: list[ConsumerRecord],
        stop: asyncio.Event,
        keys: Prefetched,
    ) -> bool:
        """A partition's next records, in one transaction if they can go so, else one at a
        time; their offsets then pending. False: abandoned at shutdown, not all done."""
        started = time.time()
        if len(run) > 1 and await self._apply_run(run, stop, keys):
            self._pending[tp] = run[-1].offset + 1
            for record in run:
                self._observe_hop(record, started)
            return True
        for record in run:  # one at a time: each retried, or parked, on its own
            started = time.time()
            if not await self._handle_record(record, stop, keys):
                return False
            self._pending[tp] = record.offset + 1
            self._observe_hop(record, started)
        return True

    async def _serve_interactive(self, stop: asyncio.Event) -> None:
        """Handle the interactive records already fetched, before the next bulk one."""
        assert self._consumer is not None
        while not stop.is_set():
            interactive = [
                tp for tp in self._consumer.assignment() if tp.topic not in self._bulk_topics
            ]
            if not interactive:
                return
            try:
                ready = await self._consumer.getmany(
                    *interactive, timeout_ms=0, max_records=self._batch_size
                )
            except IllegalStateError:  # reassigned meanwhile: the next fetch tells
                return
            if not any(ready.values()):
                return
            await self._handle_batches(ready, stop)

    async def _commit(
        self,
        only: set[TopicPartition] | None = None,
        consumer: AIOKafkaConsumer | None = None,
    ) -> None:
        consumer = consumer or self._consumer
        offsets = {tp: offset for tp, offset in self._pending.items() if only is None or tp in only}
        if consumer is None or not offsets:
            return
        for tp in offsets:
            self._pending.pop(tp, None)
        # A partition revoked while its records were being handled is another's now: its
        # offset would fail the whole commit, the others' too (its new owner redelivers).
        assigned = consumer.assignment()
        offsets = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced under us; the new owner gets these records again and the
            # inbox makes the repeat harmless.
            log.warning(
                "offset commit refused after a rebalance",
                extra={"consumer": self.spec.group_id, "error": repr(exc)},
            )

    async def _handle_record(
        self,
        record: ConsumerRecord,
        stop: asyncio.Event,
        keys: Prefetched | None = None,
    ) -> bool:
        """Apply, skip or dead-letter one record (``keys``: data keys fetched for its batch).
        False: abandoned at shutdown, not done."""
        try:
            prepared = await self._prepare(record, stop, keys or Prefetched())
        except DeadLetter as reason:
            await self._dead_letter(record, str(reason), reason.event)
            return True
        if prepared is _ABANDONED:
            return False
        if isinstance(prepared, str):
            self._count(prepared)
            return True
        assert isinstance(prepared, Ready)
        event, payload, handler = prepared
        failures = 0
        while not stop.is_set():
            try:
                applied = await self._apply(event, payload, handler)
            except Exception as exc:
                if is_transient(exc):
                    log.warning(
                        "database unavailable; retrying the event",
                        extra={"consumer": self.spec.group_id, "error": safe_reason(exc)},
                    )
                    await sleep_unless_stopped(stop, 1.0)
                    continue
                failures += 1
                EVENTS_FAILED.labels(self.spec.group_id).inc()
                log.warning(
                    "handler failed",
                    extra={
                        "consumer": self.spec.group_id,
                        "event_id": event.id,
                        "event_type": event.type,
                        "attempt": failures,
                        "error": safe_reason(exc),
                    },
                )
                if failures >= self._max_attempts:
                    await self._dead_letter(
                        record, f"handler failed {failures} times: {safe_reason(exc)}", event
                    )
                    return True
                await sleep_unless_stopped(stop, backoff_delay(failures, base=self._retry_backoff))
                continue
            self._count("applied" if applied else "duplicate")
            return True
        return False

    async def _prepare(
        self, record: ConsumerRecord, stop: asyncio.Event, keys: Prefetched
    ) -> Ready | str | object:
        """The record read, opened and its payload checked, ready to apply; or what became
        of it (``ignored``: no handler here, ``erased``: its keys were forgotten), or
        ``_ABANDONED`` (stopped while the keystore was out of reach). ``DeadLetter`` if it
        can never be applied."""
        known: CloudEvent | None = None  # once the envelope reads, its id and type are told
        try:
            event, event_type, handler = self._decode(record)
            known = event
            if event_type is None or handler is None:
                return "ignored"
            if event.sealedwith is not None:
                opened = await self._open(event, record, stop, keys)
                if opened is _ABANDONED:
                    return _ABANDONED
                if opened is None:
                    return "erased"
                assert isinstance(opened, CloudEvent)
                event = opened
            try:
                payload = event_type.payload.model_validate(event.data)
            except ValidationError as exc:
                raise DeadLetter(f"payload of {event.type} is invalid: {safe_reason(exc)}") from exc
        except DeadLetter as reason:
            reason.event = reason.event or known
            raise
        return Ready(event, payload, handler)

    async def _apply_run(
        self, run: list[ConsumerRecord], stop: asyncio.Event, keys: Prefetched
    ) -> bool:
        """A run of records applied in one transaction, each through the inbox as alone: one
        commit for them all. False, with nothing done, if any of them cannot go so (one to
        park, a keystore outage, a handler that raises, the database out of reach): then
        each is handled on its own, as ever."""
        outcomes: list[str] = []
        ready: list[Ready] = []
        for record in run:
            try:
                prepared = await self._prepare(record, stop, keys)
            except DeadLetter:
                return False
            if isinstance(prepared, Ready):
                ready.append(prepared)
            elif isinstance(prepared, str):
                outcomes.append(prepared)
            else:
                return False
        try:
            if ready:  # (a run of records ignored here, or erased, needs no transaction)
                await self._apply_ready(ready, outcomes)
        except Exception as exc:
            log.debug(
                "a run of records rolled back; applying them one at a time",
                extra={"consumer": self.spec.group_id, "error": safe_reason(exc)},
            )
            return False
        for outcome in outcomes:
            self._count(outcome)
        return True

    async def _apply_ready(self, ready: list[Ready], outcomes: list[str]) -> None:
        """The records of a run, in one transaction; each one's outcome added."""
        async with self._sessions() as session, session.begin():
            # A run holds its records' locks together, not in the one order each handler
            # keeps: give up (and go one at a time) before waiting long on one, so that it
            # never deadlocks with an API request, whose caller would see it. A run of one
            # record is already what going one at a time would do: it waits as that would.
            if len(ready) > 1:
                await (await driver(session)).execute(
                    f"SET LOCAL lock_timeout = '{RUN_LOCK_WAIT_MS}ms'"
                )
            for event, payload, handler in ready:
                applied = await self._apply_in(session, event, payload, handler)
                outcomes.append("applied" if applied else "duplicate")

    def _decode(
        self, record: ConsumerRecord
    ) -> tuple[CloudEvent, EventType, Handler[Any, Any]] | tuple[CloudEvent, None, None]:
        try:
            event = CloudEvent.from_bytes(record.value)
        except EnvelopeError as exc:
            raise DeadLetter(str(exc)) from exc
        family, major = split_type(event.type) or (event.type, 0)  # the envelope checks it
        handled = self._handled.get(family)
        if handled is None:
            return event, None, None
        event_type, handler = handled
        if major != event_type.major:
            raise DeadLetter(
                f"unknown major version v{major} of {family}: "
                f"{self.spec.group_id} handles v{event_type.major}"
            )
        if self._remembers_for is not None and event.time < utc_now() - self._remembers_for:
            raise DeadLetter(
                f"{event.type} of {event.time.isoformat()} is older than the inbox remembers "
                f"({self._remembers_for.days} days): {self.spec.group_id} may have applied it "
                "already, so it is not applied again"
            )
        return event, event_type, handler

    async def _prefetch_keys(self, records: list[ConsumerRecord]) -> Prefetched:
        """The data keys a fetch's sealed records need (every partition's, those of a type
        handled here: the others are ignored unopened), in one keystore round trip rather
        than one a record or a partition, each trusted for the fetch's records handled
        within ``PREFETCHED_FOR_S``. Only a shortcut: whatever it misses is asked record by
        record."""
        if self._keystore is None or not records:
            return Prefetched()
        wanted = set()
        handled = self._handled
        for record in records:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                envelope = json.loads(record.value or b"{}")
                key_id, kind = envelope.get("sealedwith"), envelope.get("type")
                if key_id and (split_type(kind) or (kind, 0))[0] in handled:
                    wanted.add(str(key_id))
        # Asked afresh for every fetch: a key read for an earlier fetch served records fetched
        # after its forgetting (an erasure test's records, sent again, opened), so no fetch
        # trusts another's answer.
        keys: dict[str, tuple[bytes | None, float]] = {}
        if wanted:
            with contextlib.suppress(Exception):  # the record-by-record path retries outages
                read_at = time.monotonic()
                found = await self._keystore.data_keys(wanted)
                keys.update((key_id, (key, read_at)) for key_id, key in found.items())
        return Prefetched(keys)

    async def _open(
        self,
        event: CloudEvent,
        record: ConsumerRecord,
        stop: asyncio.Event,
        keys: Prefetched,
    ) -> CloudEvent | object | None:
        """The sealed event opened; None if its key was forgotten (an erasure);
        ``_ABANDONED`` if stopped while the keystore was out of reach (left uncommitted)."""
        if self._keystore is None:
            raise DeadLetter(f"{self.spec.group_id} has no keystore to open sealed events")
        assert event.sealedwith is not None
        data_key: bytes | None = None
        while not stop.is_set():
            if keys.fresh(event.sealedwith):
                data_key = keys.key(event.sealedwith)
                break
            try:
                data_key = await self._keystore.data_key(event.sealedwith)
                break
            except UnknownKey as exc:
                raise DeadLetter(str(exc)) from exc
            except KeystoreUnavailable as exc:
                log.warning(
                    "keystore unavailable; retrying the event",
                    extra={"consumer": self.spec.group_id, "error": safe_reason(exc)},
                )
                await sleep_unless_stopped(stop, 1.0)
        else:
            return _ABANDONED
        if data_key is None:
            return None
        try:
            # The record as sent: its attributes, exactly, authenticate the ciphertext.
            return CloudEvent.model_validate(unseal(json.loads(record.value), data_key))
        except (Unsealable, ValidationError) as exc:
            raise DeadLetter(f"sealed {event.type} does not open: {safe_reason(exc)}") from exc

    async def _apply(
        self, event: CloudEvent, payload: BaseModel, handler: Handler[Any, Any]
    ) -> bool:
        async with self._sessions() as session, session.begin():
            return await self._apply_in(session, event, payload, handler)

    async def _apply_in(
        self,
        session: AsyncSession,
        event: CloudEvent,
        payload: BaseModel,
        handler: Handler[Any, Any],
    ) -> bool:
        """The inbox row and the handler's work, in the session's transaction (False: a
        duplicate, applied before)."""
        with traced(event.correlationid or event.id, event.id):
            connection = await driver(session)
            uow = self._unit_of_work(session, event)
            if isinstance(handler, WritesItsInboxRow):  # with its check, in one round trip
                return await handler.apply_once(connection, self.spec.group_id, event, payload, uow)
            first_time = await connection.fetchval(
                _INBOX_INSERT, self.spec.group_id, event.id, event.type
            )
            if first_time is None:
                return False
            await handler(payload, uow)
            return True

    async def _dead_letter(
        self, record: ConsumerRecord, error: str, event: CloudEvent | None = None
    ) -> None:
        """Park the record, untouched, with why. ``error`` is built from safe reasons only
        (``shared.redaction``): the headers never repeat the payload's values."""
        assert self._producer is not None
        identity = (
            [("dlq-event-id", event.id.encode()), ("dlq-event-type", event.type.encode())]
            if event is not None
            else []
        )
        headers = [
            *(record.headers or ()),
            ("dlq-error", error[:4000].encode()),
            *identity,
            ("dlq-consumer", self.spec.group_id.encode()),
            ("dlq-original-topic", record.topic.encode()),
            ("dlq-original-partition", str(record.partition).encode()),
            ("dlq-original-offset", str(record.offset).encode()),
            ("dlq-failed-at", utc_now().isoformat().encode()),
        ]
        await self._producer.send_and_wait(
            self.spec.dead_letter_topic, value=record.value, key=record.key, headers=headers
        )
        EVENTS_DEAD_LETTERED.labels(self.spec.group_id).inc()
        self.stats["dead_lettered"] += 1
        log.error(
            "event dead-lettered",
            extra={
                "consumer": self.spec.group_id,
                "topic": record.topic,
                "offset": record.offset,
                "error": error[:500],
            },
        )

    def _observe_hop(self, record: ConsumerRecord, started: float) -> None:
        EVENT_HANDLING.labels(self.spec.group_id).observe(time.time() - started)
        if record.timestamp and record.timestamp > 0:  # the producer's clock, at sending
            EVENT_FETCH_DELAY.labels(self.spec.group_id).observe(
                max(0.0, started - record.timestamp / 1000)
            )

    def _count(self, outcome: str) -> None:
        EVENTS_CONSUMED.labels(self.spec.group_id, outcome).inc()
        self.stats[outcome] += 1
