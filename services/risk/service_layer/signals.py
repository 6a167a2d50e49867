"""Signals from council data teams: one, a batch, or a whole CSV/NDJSON file streamed in.

Valid rows are stored in batches (``import_batch_size``), each in its own transaction with the
assessments it leads to; bad rows are reported by line and skipped. Every row read is stored,
held already or rejected (``rows_read = rows_stored + rows_duplicate + rows_rejected``), and
every line of a file is a row, a header or blank, or the second or later line of a CSV record
whose quoted cell holds line breaks (``lines_read = rows_read + lines_skipped + lines_joined``).
Residents are profiles found through their keys (keyed hashes of normalised identifiers),
created on first sight.

A row about an erased resident (one of its keys has a tombstone, ``shared/erasure.py``)
observed on or before the day of the erasure is refused: an old feed re-sent after an
erasure re-creates no one. It is not stored nor assessed, and is counted as rejected, with
``ERASED_REASON``. A row observed after the erasure is the council's new data about the
person (referred or flagged again) and is stored like anyone's. The tombstones are checked
for a whole batch at once, in the transaction that stores it (``erased_rows``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from services.risk.adapters import bulk
from services.risk.adapters import signals as stored_signals
from services.risk.adapters.profiles import lock_council, resolve_profiles
from services.risk.adapters.signals import ImportRecord, NewSignal
from services.risk.domain.feeds import BatchFeed, Feed, Row, RowError, check_parsed
from services.risk.domain.rules import jsonable_attributes
from services.risk.domain.signals import attributes_json, fingerprint
from services.risk.service_layer.assessments import ResidentSeen, assess_residents
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared.errors import Invalid
from shared.identity import resident_keys

MAX_SIGNALS_A_REQUEST = 1000
MAX_REPORTED_ERRORS = 1000
# Says why, and nothing the sender does not already hold: not when, not by whose request.
ERASED_REASON = (
    "refused: this resident's data was erased after the signal's date (UK GDPR Article 17)"
)


@dataclass(frozen=True)
class Submitter:
    """Who sends the signals: a council's data team may send its own residents' only."""

    organisation: str
    subject: str
    own_council_only: bool


@dataclass
class BatchOutcome:
    stored: int = 0
    duplicate: int = 0
    flagged: int = 0
    cases_assessed: int = 0
    erased: int = 0  # refused: about an erased resident, observed before the erasure
    erased_errors: list[RowError] = field(default_factory=list)  # the first of them

    def __iadd__(self, other: BatchOutcome) -> BatchOutcome:
        self.stored += other.stored
        self.duplicate += other.duplicate
        self.flagged += other.flagged
        self.cases_assessed += other.cases_assessed
        self.erased += other.erased
        room = max(0, MAX_REPORTED_ERRORS - len(self.erased_errors))
        self.erased_errors.extend(other.erased_errors[:room])
        return self


@dataclass(frozen=True)
class ImportOutcome:
    import_id: str
    rows_read: int
    rows_stored: int
    rows_duplicate: int
    rows_rejected: int
    flagged: int
    cases_assessed: int
    errors: list[RowError] = field(default_factory=list)
    errors_truncated: bool = False
    lines_read: int = 0
    lines_skipped: int = 0
    lines_joined: int = 0


async def record_signals(
    uow: RiskUnitOfWork, submitter: Submitter, values: Sequence[Any]
) -> ImportOutcome:
    """One signal or a batch sent as JSON (their place in the batch is their line)."""
    if len(values) > MAX_SIGNALS_A_REQUEST:
        raise Invalid("body", "at most 1,000 signals a request: import larger files")
    return await import_signals(uow, submitter, BatchFeed(values), "json")


async def import_signals(
    uow: RiskUnitOfWork,
    submitter: Submitter,
    records: Feed,
    fmt: str,
) -> ImportOutcome:
    """Check each parsed record, store the valid ones batch by batch, and keep a record of
    the import; the outcome says what was stored, held already, refused (and why).

    Reading and storing overlap: while one batch is being stored (the database working),
    the next is read, checked and keyed; at most two batches wait in memory."""
    reading = _Reading(uow.resident_key_secret, uow.settings.import_batch_size, submitter)
    total = BatchOutcome()
    batches: asyncio.Queue[list[_Ready] | None] = asyncio.Queue(maxsize=1)

    async def store() -> None:
        nonlocal total
        while (batch := await batches.get()) is not None:
            total += await store_batch(uow, batch)

    try:
        with _fewer_collections():
            async with asyncio.TaskGroup() as group:
                group.create_task(reading.read(records, batches))
                group.create_task(store())
    except BaseExceptionGroup as failed:
        raise _first(failed) from None
    rejected = reading.rejected + total.erased
    # Both lists are each the first of their kind by line: merged, the first of all.
    errors = sorted([*reading.errors, *total.erased_errors], key=lambda e: e.line)
    errors_found = reading.errors_found + total.erased
    import_id = uow.new_id()
    async with uow.transaction():
        await stored_signals.record_import(
            uow.session,
            ImportRecord(
                id=import_id,
                council=submitter.organisation,
                submitted_by=submitter.subject,
                format=fmt,
                rows_read=reading.read_count,
                rows_stored=total.stored,
                rows_duplicate=total.duplicate,
                rows_rejected=rejected,
                flagged=total.flagged,
                finished_at=uow.now(),
            ),
        )
    return ImportOutcome(
        import_id=import_id,
        rows_read=reading.read_count,
        rows_stored=total.stored,
        rows_duplicate=total.duplicate,
        rows_rejected=rejected,
        flagged=total.flagged,
        cases_assessed=total.cases_assessed,
        errors=errors[:MAX_REPORTED_ERRORS],
        errors_truncated=errors_found > min(len(errors), MAX_REPORTED_ERRORS),
        lines_read=records.lines_read,
        lines_skipped=records.lines_skipped,
        lines_joined=records.lines_joined,
    )


_imports_running = 0
_thresholds = gc.get_threshold()


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """While any import runs, the cyclic garbage collector runs far less often. A feed makes
    millions of short-lived objects while it holds a few batches of rows; at the usual pace
    the collector would go through those batches again and again (a third of an import's
    time). Reference counting still frees the rows as each batch is stored."""
    global _imports_running, _thresholds
    if _imports_running == 0:
        _thresholds = gc.get_threshold()
        gc.set_threshold(_IMPORT_GC_THRESHOLD, *_thresholds[1:])
    _imports_running += 1
    try:
        yield
    finally:
        _imports_running -= 1
        if _imports_running == 0:
            gc.set_threshold(*_thresholds)


_IMPORT_GC_THRESHOLD = 100_000  # allocations between collections (Python's default: 700)


def _first(failed: BaseExceptionGroup) -> BaseException:
    """What stopped an import: the first error that is not another task's cancellation."""
    found = [e for e in failed.exceptions if not isinstance(e, asyncio.CancelledError)]
    first = (found or list(failed.exceptions))[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


class _Ready(NamedTuple):
    """A valid row and what storing it needs, worked out as it is read: its resident's keys
    (strongest first), their tombstone hashes, its attributes as stored (JSON) and its
    fingerprint."""

    row: Row
    keys: list[str]
    tombstones: list[str]
    attributes: str
    fingerprint: str


_ROWS_BETWEEN_TURNS = 200


class _Reading:
    """Reads a feed into batches of ready rows, counting and keeping its refusals."""

    def __init__(self, secret: str, batch_size: int, submitter: Submitter) -> None:
        self.secret = secret
        self.batch_size = batch_size
        self.submitter = submitter
        self.read_count = 0
        self.rejected = 0
        self.errors_found = 0
        self.errors: list[RowError] = []

    async def read(self, records: Feed, batches: asyncio.Queue[list[_Ready] | None]) -> None:
        batch: list[_Ready] = []
        own_council_only, organisation = (
            self.submitter.own_council_only,
            self.submitter.organisation,
        )
        tombstone_of = tombstone_hasher(self.secret)
        async for line, raw in records:
            self.read_count += 1
            if not self.read_count % _ROWS_BETWEEN_TURNS:
                # A file's next lines are usually in hand already, so reading would not stop
                # until a batch is full: it lets the storing go on now and then, so that the
                # database works on one batch while the next is read.
                await asyncio.sleep(0)
            checked = check_parsed(line, raw)
            if (
                isinstance(checked, Row)
                and own_council_only
                and checked.signal.council != organisation
            ):
                checked = [
                    RowError(line, "council", f"{checked.signal.council} is not your council")
                ]
            if isinstance(checked, list):
                self.rejected += 1
                self.errors_found += len(checked)
                self.errors.extend(checked[: max(0, MAX_REPORTED_ERRORS - len(self.errors))])
                continue
            batch.append(_ready(self.secret, checked, tombstone_of))
            if len(batch) >= self.batch_size:
                await batches.put(batch)
                batch = []
        if batch:
            await batches.put(batch)
        await batches.put(None)


def _ready(secret: str, row: Row, tombstone_of: Callable[[str], str] | None = None) -> _Ready:
    keys = _keys_of(secret, row)
    tombstone_of = tombstone_of or tombstone_hasher(secret)
    attributes = attributes_json(jsonable_attributes(row.attributes))
    signal = row.signal
    found = fingerprint(keys[0], signal.type.value, signal.source, signal.observed_on, attributes)
    return _Ready(row, keys, [tombstone_of(k) for k in keys], attributes, found)


@functools.lru_cache(maxsize=8)
def tombstone_hasher(secret: str) -> Callable[[str], str]:
    """``shared.erasure.tombstone(secret, key)`` as a function of the key, from HMAC-SHA256
    pads hashed once (RFC 2104), as ``shared.identity`` derives the keys: a million-row feed
    checks two million keys against the tombstones, at a third of ``hmac.new``'s cost."""
    key = secret.encode()
    if len(key) > _SHA256_BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_SHA256_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(b"erased|")  # every tombstone's message starts so
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def hashed(identifier: str) -> str:
        digest = inner.copy()
        digest.update(identifier.encode())
        keyed = outer.copy()
        keyed.update(digest.digest())
        return keyed.hexdigest()

    return hashed


_SHA256_BLOCK = 64


async def store_batch(uow: RiskUnitOfWork, batch: Sequence[_Ready]) -> BatchOutcome:
    """Store a batch of valid rows in one transaction; assess whoever got a new signal."""
    outcome = BatchOutcome()
    if not batch:
        return outcome
    by_council: dict[str, list[_Ready]] = defaultdict(list)
    for ready in batch:
        by_council[ready.row.signal.council].append(ready)
    async with uow.transaction():
        now = uow.now()
        # Each council's residents are assessed together, by the ruleset in force for it.
        in_force = await uow.rulesets_for(list(by_council))
        for council, rows in by_council.items():
            await lock_council(uow.session, council)
            # After the lock: an erasure committed before it is seen (READ COMMITTED).
            council_rows = await _not_erased(uow, rows, outcome)
            if not council_rows:
                continue
            profile_ids = await resolve_profiles(
                uow.session,
                council,
                [ready.keys for ready in council_rows],
                # A feed's new profiles sit together in the indexes on them.
                new_id=iter(bulk.time_ordered_ids(len(council_rows))).__next__,
            )
            new = [
                NewSignal(
                    profile_id=profile,
                    type=ready.row.signal.type.value,
                    attributes=ready.attributes,
                    source=ready.row.signal.source,
                    observed_on=ready.row.signal.observed_on,
                    expires_on=ready.row.expires_on,
                    fingerprint=ready.fingerprint,
                )
                for ready, profile in zip(council_rows, profile_ids, strict=True)
            ]
            inserted = await stored_signals.insert_new(uow.session, new)
            outcome.stored += len(inserted)
            outcome.duplicate += len(new) - len(inserted)
            # Who to flag is decided with the identity of their latest row in this batch.
            latest = dict(zip(profile_ids, council_rows, strict=True))
            with_new_signals = {
                profile: ResidentSeen(latest[profile].keys[0], latest[profile].row.signal.resident)
                for profile in dict.fromkeys(inserted)
            }
            reassessed = await assess_residents(
                uow, council, with_new_signals, ruleset=in_force[council], now=now
            )
            outcome.flagged += reassessed.flagged
            outcome.cases_assessed += reassessed.cases_assessed
    return outcome


async def _not_erased(
    uow: RiskUnitOfWork, rows: list[_Ready], outcome: BatchOutcome
) -> list[_Ready]:
    """The rows to store: those about an erased resident observed on or before the day of
    the erasure are counted in ``outcome`` as refused instead."""
    erased = await stored_signals.erased_rows(
        uow.session, [(ready.tombstones, ready.row.signal.observed_on) for ready in rows]
    )
    if not erased:
        return rows
    outcome.erased += len(erased)
    outcome.erased_errors.extend(
        RowError(rows[at].row.line, "resident", ERASED_REASON)
        for at in sorted(erased)[:MAX_REPORTED_ERRORS]
    )
    return [ready for at, ready in enumerate(rows) if at not in erased]


def _keys_of(secret: str, row: Row) -> list[str]:
    person = row.signal.resident
    return resident_keys(
        secret,
        given_name=person.given_name,
        family_name=person.family_name,
        date_of_birth=person.date_of_birth,
        postcode=person.postcode,
        uprn=person.uprn,
    )
