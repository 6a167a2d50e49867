"""Transactional outbox: write events with the state change; a relay publishes them.

Ordering: every row gets a *lane* from its key. A relay publishes a lane only while holding a
transaction-scoped advisory lock on it, in id order, and rows are locked ``FOR UPDATE SKIP
LOCKED`` as well, so two relays never publish the same row and a key's events keep their
order. Published rows stay for the retention period so a fresh broker can be refilled
(``replay``); the relay prunes older ones.

Bulk work (a feed's flags, the outreach cases they open) is written to its topic's *bulk
lane* (``EventRegistry.bulk_lane``) and to lanes of its own (``LANES`` to ``2 * LANES - 1``);
each pass of the relay takes interactive rows first and fills what is left of its batch with
bulk rows, so an interactive event never waits behind a bulk backlog. Whether a key is bulk
is decided once, where its aggregate is made, and never changes (an outreach case is bulk for
its whole life), so a key's rows share one lane and one topic and keep their order.

With a keystore (every worker's), the relay seals each event as it sends it, under its
message key's data key (``shared/messaging/sealing.py``). ``Outbox.forget`` writes a row
that is no event: the digests of subjects whose keys the relay forgets once it commits (an
erasure); from then on the relay never sends an event of those subjects written before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import BaseModel
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import (
    DATABASE_UNREACHABLE,
    SessionFactory,
    driver,
    plain_postgres_url,
    rows_affected,
)
from shared.events.envelope import STRUCTURED_CONTENT_TYPE, CloudEvent, encode, utc_now
from shared.events.registry import EventRegistry
from shared.messaging.backoff import backoff_delay, sleep_unless_stopped
from shared.messaging.kafka import TopicSpec, ensure_topics
from shared.messaging.sealing import Keystore, KeystoreUnavailable, SubjectKey, digest_of, seal
from shared.messaging.tables import OUTBOX_CHANNEL, outbox
from shared.observability import (
    EVENT_PUBLISH_DELAY,
    EVENTS_PUBLISHED,
    EVENTS_WITHHELD,
    OUTBOX_BACKLOG,
    PUBLISH_FAILURES,
)

log = logging.getLogger(__name__)

# An outbox row that is no event: the digests of subjects whose keys the relay forgets.
FORGET_KEYS = "upstream.keystore.forget"
LANES = 32  # interactive lanes 0 … LANES - 1; bulk lanes LANES … 2 * LANES - 1
BACKLOG_EVERY_S = 5.0
VERIFY_TOPICS_EVERY_S = 1.0
# Namespace of the advisory locks the relay takes (pg_try_advisory_xact_lock(int, int)).
_ADVISORY_NAMESPACE = 0x0B0C


_DATABASE_UNREACHABLE: tuple[type[BaseException], ...] = (
    KeystoreUnavailable,
    *DATABASE_UNREACHABLE,
)


def lane_of(key: str, *, bulk: bool = False) -> int:
    return zlib.crc32(key.encode()) % LANES + (LANES if bulk else 0)


BulkKeys = Callable[[AsyncSession, Sequence[str]], Awaitable[Collection[str]]]
"""Which of these keys are bulk work, asked in the writer's transaction: a service whose
aggregates can be bulk (the referrals service's outreach cases) says so by its own data."""


class Remembered:
    """``bulk_keys`` asked once per key in a process: a key is bulk or interactive for its
    whole life (that is what keeps its events in order), so the answer never changes and a
    key's later events need no query. Forgets the oldest keys past ``size``."""

    def __init__(self, bulk_keys: BulkKeys, *, size: int = 50_000) -> None:
        self._bulk_keys = bulk_keys
        self._size = size
        self._known: OrderedDict[str, bool] = OrderedDict()

    async def __call__(self, session: AsyncSession, keys: Sequence[str]) -> Collection[str]:
        known = self._known
        unknown = [key for key in dict.fromkeys(keys) if key not in known]
        if unknown:
            bulk = set(await self._bulk_keys(session, unknown))
            for key in unknown:
                self.learn(key, bulk=key in bulk)
        return {key for key in keys if known.get(key)}

    def learn(self, key: str, *, bulk: bool) -> None:
        """What the writer knows already (a key it has just made: an aggregate it created),
        so that no query asks it. Learnt in a transaction that then rolls back, it is only
        the answer about a key no one uses."""
        self._known[key] = bulk
        while len(self._known) > self._size:
            self._known.popitem(last=False)


class Outbox:
    """What a service's code uses to record an event inside its own transaction."""

    def __init__(
        self,
        registry: EventRegistry,
        *,
        source: str,
        bulk_keys: BulkKeys | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.registry = registry
        self.source = source
        self._bulk_keys = bulk_keys
        self._clock = clock  # the events' time: the service's clock (shared/clock.py)

    def with_bulk_keys(self, bulk_keys: BulkKeys) -> Outbox:
        """This outbox, writing the events of the keys ``bulk_keys`` names as bulk work."""
        return Outbox(self.registry, source=self.source, bulk_keys=bulk_keys, clock=self._clock)

    async def forget(self, session: AsyncSession, subjects: Iterable[str], *, before: str) -> None:
        """Crypto-shred every event of these keys (an erasure), in the caller's transaction:
        once it commits, the relay forgets their data keys in the keystore (then no copy
        on any topic opens again) and never sends an event of theirs written before it.
        ``before``: the key of the event that says it is done (a confirmation, keyed by its
        request): the forgetting shares its lane, so is carried out before that is sent.
        Recorded as the subjects' digests only; a replay forgets nothing twice."""
        digests = sorted({digest_of(subject) for subject in subjects})
        if digests:
            await session.execute(
                insert(outbox).values(
                    event_id=f"forget-{uuid.uuid4()}",
                    topic=FORGET_KEYS,
                    message_key=before,
                    lane=lane_of(before),
                    event_type=FORGET_KEYS,
                    envelope={"digests": digests},
                )
            )

    async def add(
        self, session: AsyncSession, payload: BaseModel, *, subject: str, bulk: bool = False
    ) -> CloudEvent:
        """Record the event; ``bulk``: it is bulk work (its topic's bulk lane, if any)."""
        event = self.registry.envelope(
            payload, source=self.source, subject=subject, time=self._clock()
        )
        await self.add_event(session, event, bulk=bulk)
        return event

    async def add_event(
        self, session: AsyncSession, event: CloudEvent, *, bulk: bool = False
    ) -> None:
        if not bulk and self._bulk_keys is not None:
            bulk = _key_of(event) in await self._bulk_keys(session, [_key_of(event)])
        await (await driver(session)).execute(_INSERT, *self._record(event, bulk=bulk))

    async def add_all(
        self,
        session: AsyncSession,
        payloads: Iterable[tuple[BaseModel, str]],
        *,
        bulk: bool = False,
    ) -> list[CloudEvent]:
        """Many events (payload, subject) in one ``COPY``, each recorded as ``add`` records
        it, in the order given: a bulk step's events (a feed's flags) in one round trip,
        in the session's transaction (the outbox's trigger fires for a ``COPY`` too)."""
        written = self._clock()
        events = [
            self.registry.envelope(payload, source=self.source, subject=subject, time=written)
            for payload, subject in payloads
        ]
        if events:
            bulk_keys: Collection[str] = ()
            if not bulk and self._bulk_keys is not None:
                bulk_keys = await self._bulk_keys(session, [_key_of(e) for e in events])
            connection = await driver(session)
            await connection.copy_records_to_table(
                outbox.name,
                columns=_ADDED,
                records=[self._record(e, bulk=bulk or _key_of(e) in bulk_keys) for e in events],
            )
        return events

    def _record(self, event: CloudEvent, *, bulk: bool) -> tuple[str, str, str, int, str, str]:
        """The event's outbox row (``_ADDED``): its id, topic (or the topic's bulk lane), key,
        lane and type, and its envelope serialised once, by pydantic's own encoder (what
        ``to_json`` gives, as text: a ``jsonb`` reads the two alike)."""
        event_type = self.registry.by_name(event.type)
        if event_type is None:
            raise KeyError(f"{event.type} is not a registered event type")
        key = _key_of(event)
        topic = event_type.topic
        if bulk and (bulk_lane := self.registry.bulk_lane_of(topic)) is not None:
            topic = bulk_lane
        envelope = event.model_dump_json(exclude_none=True)
        return event.id, topic.name, key, lane_of(key, bulk=topic.bulk), event.type, envelope


def _key_of(event: CloudEvent) -> str:
    return event.partitionkey or event.subject or event.id


_ADDED = ("event_id", "topic", "message_key", "lane", "event_type", "envelope")


class _Pending(NamedTuple):
    """An unpublished row, as a relay's pass reads it."""

    id: int
    topic: str
    message_key: str
    envelope: dict[str, Any]
    created_at: datetime
    event_id: str


# A pass in one statement. The lanes with unpublished rows (one probe of the unpublished
# index a lane, not a scan of a bulk backlog), the advisory lock tried for each (only for a
# lane with work: a select list is computed for the rows the WHERE keeps); the oldest rows
# of the lanes held, each lane's read from that index (so a pass reads its batch, never the
# outbox's published history: a plain ``ORDER BY id LIMIT`` over the lanes walked the
# primary key through every published row kept for the retention period, hundreds of
# milliseconds a pass behind a bulk backlog), the interactive lanes' first and the bulk
# lanes' filling the batch, in id order. The statement's snapshot is taken before its locks:
# a row another relay published and committed in between looks unpublished to it, so the
# rows are locked FOR UPDATE, which in READ COMMITTED reads a row changed since again and
# drops it if no longer unpublished. Always a row at least: ``lanes``, how many lanes had
# work, with no event if none is this pass's.
_PASS = f"""
    WITH with_work AS MATERIALIZED (
        SELECT lane, pg_try_advisory_xact_lock({_ADVISORY_NAMESPACE}, lane) AS ours
        FROM generate_series(0, {2 * LANES - 1}) AS every_lane(lane)
        WHERE EXISTS (
            SELECT FROM outbox WHERE outbox.lane = every_lane.lane AND published_at IS NULL
        )
    ),
    chosen AS (
        SELECT oldest.id, held.lane >= {LANES} AS bulk
        FROM with_work AS held
        CROSS JOIN LATERAL (
            SELECT id FROM outbox
            WHERE outbox.lane = held.lane AND published_at IS NULL
            ORDER BY id LIMIT $1
        ) AS oldest
        WHERE held.ours
        ORDER BY bulk, oldest.id LIMIT $1
    ),
    locked AS (
        SELECT unsent.id, unsent.topic, unsent.message_key, unsent.envelope, unsent.created_at,
            unsent.event_id, chosen.bulk
        FROM outbox AS unsent JOIN chosen ON chosen.id = unsent.id
        WHERE unsent.published_at IS NULL
        FOR UPDATE OF unsent SKIP LOCKED
    )
    SELECT lanes, locked.id, topic, message_key, envelope, created_at, event_id
    FROM (SELECT count(*) AS lanes FROM with_work) AS lanes_with_work
    LEFT JOIN locked ON true
    ORDER BY locked.bulk, locked.id
"""
_PUBLISHED = "UPDATE outbox SET published_at = $1 WHERE id = ANY($2::bigint[])"
_INSERT = f"INSERT INTO outbox ({', '.join(_ADDED)}) VALUES ($1, $2, $3, $4, $5, $6)"


async def backlog(session: AsyncSession) -> int:
    return (
        await session.scalar(
            select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        )
        or 0
    )


async def replay(session: AsyncSession, *, since: datetime | None = None) -> int:
    """Mark retained published events unpublished so the relay sends them again, in order."""
    statement = update(outbox).where(outbox.c.published_at.is_not(None))
    if since is not None:
        statement = statement.where(outbox.c.created_at >= since)
    return await rows_affected(session, statement.values(published_at=None))


class OutboxRelay:
    """Publishes unpublished outbox rows; survives broker outages and its own restarts."""

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        bootstrap_servers: str,
        topics: Iterable[TopicSpec],
        producer_factory: Callable[[], AIOKafkaProducer],
        verify_topics: bool = False,
        wake_on_commit_from: str | None = None,
        batch_size: int = 500,
        poll_interval: float = 0.2,
        retention: timedelta = timedelta(days=30),
        max_backoff: float = 10.0,
        keystore: Keystore | None = None,
    ) -> None:
        self._sessions = sessions
        # With a keystore every event is sealed under its key's data key as it is sent.
        self._keystore = keystore
        self._bootstrap = bootstrap_servers
        self._topics = list(topics)
        self._producer_factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._verify_topics_each_pass = verify_topics
        self._topics_verified_at = float("-inf")
        # With a database URL the relay LISTENs for the outbox trigger's notifications and
        # wakes as a transaction commits; ``poll_interval`` is then only the fallback.
        self._wake_url = wake_on_commit_from
        self._wake = asyncio.Event()
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retention = retention
        self._max_backoff = max_backoff
        self._last_prune: datetime | None = None
        self._backlog_counted_at = float("-inf")

    async def run(self, stop: asyncio.Event) -> None:
        listener = asyncio.create_task(self._listen(stop)) if self._wake_url is not None else None
        try:
            await self._relay(stop)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def _listen(self, stop: asyncio.Event) -> None:
        """Hold a LISTEN connection; reconnect after losing it (polling covers the gap)."""
        assert self._wake_url is not None
        failures = 0
        while not stop.is_set():
            try:
                connection = await asyncpg.connect(plain_postgres_url(self._wake_url))
            except (OSError, asyncpg.PostgresError) as exc:
                failures += 1
                log.warning("relay cannot listen for commits; polling", extra={"error": repr(exc)})
                await sleep_unless_stopped(stop, backoff_delay(failures, cap=30.0))
                continue
            failures = 0
            try:
                await connection.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake.set())
                self._wake.set()  # whatever committed before we listened
                while not stop.is_set() and not connection.is_closed():
                    await sleep_unless_stopped(stop, 5.0)  # (a lost connection: the poll covers)
            finally:
                with contextlib.suppress(Exception):
                    await connection.close()

    async def _wait_for_work(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=self._poll_interval, return_when="FIRST_COMPLETED")
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _relay(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                await self._connect()
                self._wake.clear()  # a commit from here on wakes the next pass
                published = await self.publish_pending()
                failures = 0
                await self._prune_if_due()
                if published < self._batch_size:
                    # Every row its lanes held went: the next pass waits for a commit
                    # (its notification may have come during this pass) or the poll,
                    # rather than asking again at once only to find nothing.
                    await self._wait_for_work(stop)
            except (KafkaError, OSError, TimeoutError) as exc:
                # (the keystore's own trouble comes as KeystoreUnavailable, below)
                failures += 1
                delay = backoff_delay(failures, cap=self._max_backoff)
                PUBLISH_FAILURES.inc()
                log.warning(
                    "outbox relay cannot reach the broker; retrying",
                    extra={"error": repr(exc), "retry_in_s": delay},
                )
                await self._disconnect()
                await sleep_unless_stopped(stop, delay)
            except _DATABASE_UNREACHABLE as exc:
                # Its own database or the keystore: nothing is lost, the rows wait.
                failures += 1
                delay = backoff_delay(failures, cap=self._max_backoff)
                log.warning(
                    "outbox relay cannot reach a database; retrying",
                    extra={"error": repr(exc), "retry_in_s": delay},
                )
                await sleep_unless_stopped(stop, delay)
        await self._disconnect()

    async def _connect(self) -> None:
        if self._producer is not None:
            return
        # A broker may be new (Tansu keeps topics in memory): create topics before publishing
        # so they get their partitions rather than the broker's auto-created default.
        await ensure_topics(self._bootstrap, self._topics)
        producer = self._producer_factory()
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def _verify_topics(self) -> None:
        """Recreate any topic the broker lost. Tansu keeps topics in memory and, after a
        restart, acknowledges records sent to a topic it no longer has; they would be lost."""
        assert self._producer is not None
        metadata = await self._producer.client.fetch_all_metadata()
        present = metadata.topics()
        missing = [topic for topic in self._topics if topic.name not in present]
        if missing:
            log.warning(
                "broker lacks topics; creating them", extra={"topics": [t.name for t in missing]}
            )
            await ensure_topics(self._bootstrap, missing)

    def _topics_due(self) -> bool:
        """A metadata round trip on every pass costs each hop ~10 ms; once a second bounds
        the window in which a freshly restarted Tansu could swallow records (a restart also
        drops the producer's connection, and reconnecting creates the topics)."""
        now = time.monotonic()
        if now - self._topics_verified_at < VERIFY_TOPICS_EVERY_S:
            return False
        self._topics_verified_at = now
        return True

    def _backlog_due(self) -> bool:
        """The backlog gauge is a count: refresh it every few seconds, not every pass."""
        now = time.monotonic()
        if now - self._backlog_counted_at < BACKLOG_EVERY_S:
            return False
        self._backlog_counted_at = now
        return True

    async def _disconnect(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except Exception:  # a broken connection may fail to close; it is gone either way
                log.debug("producer stop failed", exc_info=True)

    async def publish_pending(self) -> int:
        """One pass over every lane with work that no other relay holds, in one transaction:
        the lanes found and locked and their rows read in one statement (``_PASS``), in id
        order (so each key's events keep their order), one batch of sends, one update.
        Returns how many rows it finished (events published, forgettings carried out,
        events of forgotten subjects withheld). The batch takes the interactive lanes' rows
        first and fills up with the bulk lanes' (a key's rows are all in one kind of lane,
        so each key keeps its order). Its statements are asyncpg's own, run on the
        session's connection: a pass follows every commit that wrote an event."""
        async with self._sessions() as session, session.begin():
            connection = await driver(session)
            found = await connection.fetch(_PASS, self._batch_size)
            if not found[0]["lanes"]:
                OUTBOX_BACKLOG.set(0)  # nothing unpublished: no need to count it
            elif self._backlog_due():
                OUTBOX_BACKLOG.set(await backlog(session))
            rows = [_Pending(*row[1:]) for row in found if row["id"] is not None]
            if not rows:
                return 0  # no work, or other relays have these lanes now
            if self._verify_topics_each_pass and self._topics_due():
                await self._verify_topics()
            published, failure = await self._send(rows)
            if published:
                await connection.execute(_PUBLISHED, utc_now(), published)
        if failure is not None:
            raise failure
        return len(published)

    async def _send(self, rows: list[_Pending]) -> tuple[list[int], BaseException | None]:
        """Send the rows as one batch: the ids of the unbroken prefix sent (only those count
        as published: whatever follows a failure is sent again, the consumers' inbox
        absorbing any duplicate, never skipped), and the failure that broke it."""
        assert self._producer is not None
        await self._forget_keys([row for row in rows if row.topic == FORGET_KEYS])
        records = await self._records(rows)
        headers = [("content-type", STRUCTURED_CONTENT_TYPE.encode())]
        sends = [
            await self._producer.send(row.topic, value=value, key=key, headers=headers)
            for row, (key, value) in zip(rows, records, strict=True)
            if value
        ]
        sent = iter(await asyncio.gather(*sends, return_exceptions=True))
        # A row with nothing to send (a forgetting, an event of a forgotten subject) is
        # done as it stands.
        results = [next(sent) if value else None for _, value in records]
        published: list[int] = []
        failure: BaseException | None = None
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException):
                failure = result
                break
            published.append(row.id)
        acknowledged = time.time()
        for row, (_, value) in zip(rows[: len(published)], records, strict=False):
            if value:
                EVENTS_PUBLISHED.labels(topic=row.topic).inc()
                EVENT_PUBLISH_DELAY.labels(topic=row.topic).observe(
                    max(0.0, acknowledged - row.created_at.timestamp())
                )
        return published, failure

    async def _records(self, rows: Sequence[Any]) -> list[tuple[bytes, bytes]]:
        """Each row's Kafka key and value: as stored (validated when it was written), or
        sealed under its message key's data key, one keystore round trip a batch. Empty for
        a row not to send: a forgetting, or an event written before its subject's keys
        were forgotten (about an erased resident)."""
        events = [row for row in rows if row.topic != FORGET_KEYS]
        if self._keystore is None:
            keys: dict[str, SubjectKey] = {}
        else:
            keys = await self._keystore.keys_for({row.message_key for row in events})
        records: list[tuple[bytes, bytes]] = []
        dropped = 0
        for row in rows:
            if row.topic == FORGET_KEYS:
                records.append((b"", b""))
            elif self._keystore is None:
                records.append((row.message_key.encode(), encode(row.envelope)))
            elif (key := keys[row.message_key]).seals(row.created_at):
                records.append((key.key_id.encode(), encode(seal(row.envelope, key))))
            else:
                records.append((b"", b""))
                dropped += 1
        if dropped:
            EVENTS_WITHHELD.inc(dropped)
            log.info("events of forgotten subjects not sent", extra={"events": dropped})
        return records

    async def _forget_keys(self, rows: Sequence[Any]) -> None:
        """Forget the keys the committed forgetting rows name, as of when each was written."""
        if self._keystore is None:
            return  # events went out in the clear: there is no key to forget
        for row in rows:
            await self._keystore.forget(
                row.envelope["digests"], at=row.created_at, forgetting=row.event_id
            )

    async def _prune_if_due(self) -> None:
        now = utc_now()
        if self._last_prune and now - self._last_prune < timedelta(minutes=10):
            return
        self._last_prune = now
        await self.prune(now)

    async def prune(self, now: datetime) -> int:
        """Delete published rows published or written longer ago than the outbox's retention
        (a replay publishes a row again; it goes once written that long ago all the same),
        and sooner those of a topic
        the broker keeps less long (subject access answers: the outbox keeps no longer
        than the topic what it carries there)."""
        async with self._sessions() as session, session.begin():
            pruned = await rows_affected(
                session, delete(outbox).where(outbox.c.published_at < now - self._retention)
            )
            # A replay publishes a row again, so its published_at starts anew: rows written
            # before the retention go too (consumers refuse events older than their inbox
            # remembers), found from the oldest ids on, not by reading the whole outbox. The
            # bound is asked first and then given as a value, so the planner sees how few
            # ids lie below it (as a subquery it guessed a third of the table).
            first_kept = await session.scalar(
                select(outbox.c.id)
                .where(outbox.c.created_at >= now - self._retention)
                .order_by(outbox.c.id)
                .limit(1)
            )
            if first_kept is None:
                first_kept = (await session.scalar(select(func.max(outbox.c.id))) or 0) + 1
            pruned += await rows_affected(
                session,
                delete(outbox).where(outbox.c.published_at.is_not(None), outbox.c.id < first_kept),
            )
            for topic in self._topics:
                if topic.retention_ms is None:
                    continue
                kept = timedelta(milliseconds=topic.retention_ms)
                if kept < self._retention:
                    pruned += await rows_affected(
                        session,
                        delete(outbox).where(
                            outbox.c.topic == topic.name, outbox.c.published_at < now - kept
                        ),
                    )
        if pruned:
            log.info("pruned published outbox rows", extra={"rows": pruned})
        return pruned


__all__ = [
    "LANES",
    "BulkKeys",
    "Outbox",
    "OutboxRelay",
    "Remembered",
    "backlog",
    "lane_of",
    "replay",
]
