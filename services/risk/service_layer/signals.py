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
import gc
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.risk.adapters import bulk
from services.risk.adapters import signals as stored_signals
from services.risk.adapters.profiles import lock_council, resolve_profiles
from services.risk.adapters.signals import ImportRecord, NewSignal
from services.risk.domain.feeds import BatchFeed, Feed, RowError, lines_of, parse_csv, parse_ndjson
from services.risk.domain.rules import SignalFact
from services.risk.domain.signals import SignalType
from services.risk.service_layer import reader_process
from services.risk.service_layer.assessments import ResidentSeen, assess_residents
from services.risk.service_layer.reading import (
    MAX_REPORTED_ERRORS,
    Keying,
    ReadTotals,
    Ready,
    read_feed,
)

# What callers (routes, tests) have always found here, now read in ``reading.py``.
from services.risk.service_layer.reading import Submitter as Submitter
from services.risk.service_layer.reading import ready_row as _ready  # noqa: F401
from services.risk.service_layer.reading import tombstone_hasher as tombstone_hasher
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared.errors import Invalid

MAX_SIGNALS_A_REQUEST = 1000
# Says why, and nothing the sender does not already hold: not when, not by whose request.
ERASED_REASON = (
    "refused: this resident's data was erased after the signal's date (UK GDPR Article 17)"
)


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


_Reader = Coroutine[Any, Any, ReadTotals]  # reads a feed into a queue of batches


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
    batch_size = uow.settings.import_batch_size

    def read_here(batches: asyncio.Queue[list[Ready] | None], keying: Keying) -> _Reader:
        return read_feed(records, keying, batch_size, submitter, batches)

    return await _import(uow, submitter, fmt, read_here)


async def import_file(
    uow: RiskUnitOfWork,
    submitter: Submitter,
    chunks: AsyncIterator[bytes],
    fmt: str,
) -> ImportOutcome:
    """A CSV or NDJSON file streamed in, as ``import_signals``. A file larger than
    ``import_reader_process_from_bytes`` is read in a process of its own
    (``reader_process.py``) while this one stores: parsing, checking and keying cost about
    what storing and assessing cost here, so the two then use a core each. A smaller one is
    read here (a process costs a second to start). Either way the same rows, the same report."""
    head: list[bytes] = []
    received = 0
    threshold = uow.settings.import_reader_process_from_bytes
    async for chunk in chunks:
        head.append(chunk)
        received += len(chunk)
        if received > threshold:
            break
    else:
        lines = lines_of(_replayed(head))
        records = parse_csv(lines) if fmt == "csv" else parse_ndjson(lines)
        return await import_signals(uow, submitter, records, fmt)
    batch_size = uow.settings.import_batch_size

    def read_elsewhere(batches: asyncio.Queue[list[Ready] | None], keying: Keying) -> _Reader:
        return reader_process.read_elsewhere(
            head,
            chunks,
            fmt=fmt,
            keying=keying,
            batch_size=batch_size,
            submitter=submitter,
            batches=batches,
        )

    return await _import(uow, submitter, fmt, read_elsewhere)


async def _replayed(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def _import(
    uow: RiskUnitOfWork,
    submitter: Submitter,
    fmt: str,
    read: Callable[[asyncio.Queue[list[Ready] | None], Keying], _Reader],
) -> ImportOutcome:
    total = BatchOutcome()
    batches: asyncio.Queue[list[Ready] | None] = asyncio.Queue(maxsize=1)
    async with uow.transaction():
        before = await stored_signals.tombstones_before_council_keys(uow.session)
    keying = Keying(uow.resident_key_secret, tombstones_before_council_keys=before)

    async def store() -> None:
        nonlocal total
        while (batch := await batches.get()) is not None:
            total += await store_batch(uow, batch)

    try:
        with _fewer_collections():
            async with asyncio.TaskGroup() as group:
                reading = group.create_task(read(batches, keying))
                group.create_task(store())
    except BaseExceptionGroup as failed:
        raise _first(failed) from None
    found = reading.result()
    rejected = found.rejected + total.erased
    # Both lists are each the first of their kind by line: merged, the first of all.
    errors = sorted([*found.errors, *total.erased_errors], key=lambda e: e.line)
    errors_found = found.errors_found + total.erased
    import_id = uow.new_id()
    async with uow.transaction():
        await stored_signals.record_import(
            uow.session,
            ImportRecord(
                id=import_id,
                council=submitter.organisation,
                submitted_by=submitter.subject,
                format=fmt,
                rows_read=found.read_count,
                rows_stored=total.stored,
                rows_duplicate=total.duplicate,
                rows_rejected=rejected,
                flagged=total.flagged,
                finished_at=uow.now(),
            ),
        )
    return ImportOutcome(
        import_id=import_id,
        rows_read=found.read_count,
        rows_stored=total.stored,
        rows_duplicate=total.duplicate,
        rows_rejected=rejected,
        flagged=total.flagged,
        cases_assessed=total.cases_assessed,
        errors=errors[:MAX_REPORTED_ERRORS],
        errors_truncated=errors_found > min(len(errors), MAX_REPORTED_ERRORS),
        lines_read=found.lines_read,
        lines_skipped=found.lines_skipped,
        lines_joined=found.lines_joined,
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


async def store_batch(uow: RiskUnitOfWork, batch: Sequence[Ready]) -> BatchOutcome:
    """Store a batch of valid rows in one transaction; assess whoever got a new signal."""
    outcome = BatchOutcome()
    if not batch:
        return outcome
    by_council: dict[str, list[Ready]] = defaultdict(list)
    for ready in batch:
        by_council[ready.council].append(ready)
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
            created: set[str] = set()
            profile_ids = await resolve_profiles(
                uow.session,
                council,
                [ready.keys for ready in council_rows],
                # A feed's new profiles sit together in the indexes on them.
                new_id=iter(bulk.time_ordered_ids(len(council_rows))).__next__,
                created=created,
            )
            new = [
                NewSignal(
                    profile,
                    ready.type,
                    ready.attributes,
                    ready.source,
                    ready.observed_on,
                    ready.expires_on,
                    ready.fingerprint,
                )
                for ready, profile in zip(council_rows, profile_ids, strict=True)
            ]
            inserted = await stored_signals.insert_new(uow.session, new)
            outcome.stored += len(inserted)
            outcome.duplicate += len(new) - len(inserted)
            # Who to flag is decided with the identity of their latest row in this batch.
            latest = dict(zip(profile_ids, council_rows, strict=True))
            with_new_signals = {
                profile: ResidentSeen(latest[profile].keys[0], latest[profile].identity)
                for profile in dict.fromkeys(inserted)
            }
            reassessed = await assess_residents(
                uow,
                council,
                with_new_signals,
                ruleset=in_force[council],
                now=now,
                first_seen=_signals_of_new(created, profile_ids, council_rows)
                if len(inserted) == len(new)
                else None,
            )
            outcome.flagged += reassessed.flagged
            outcome.cases_assessed += reassessed.cases_assessed
    return outcome


def _signals_of_new(
    created: set[str], profile_ids: list[str], rows: list[Ready]
) -> dict[str, list[SignalFact]]:
    """The signals of the profiles made for this batch, as ``facts_of`` would read them back
    (in the order stored), when every row of the batch was stored: they hold no other."""
    facts: dict[str, list[SignalFact]] = defaultdict(list)
    types, decoded = _SIGNAL_TYPES, json.loads
    for profile, ready in zip(profile_ids, rows, strict=True):
        if profile in created:
            facts[profile].append(
                SignalFact(
                    types[ready.type],
                    decoded(ready.attributes),
                    ready.observed_on,
                    ready.expires_on,
                )
            )
    return facts


_SIGNAL_TYPES = {kind.value: kind for kind in SignalType}


async def _not_erased(uow: RiskUnitOfWork, rows: list[Ready], outcome: BatchOutcome) -> list[Ready]:
    """The rows to store: those about an erased resident observed on or before the day of
    the erasure are counted in ``outcome`` as refused instead."""
    erased = await stored_signals.erased_rows(
        uow.session,
        [
            (ready.tombstones, ready.tombstones_before_council_keys, ready.observed_on)
            for ready in rows
        ],
    )
    if not erased:
        return rows
    outcome.erased += len(erased)
    outcome.erased_errors.extend(
        RowError(rows[at].line, "resident", ERASED_REASON)
        for at in sorted(erased)[:MAX_REPORTED_ERRORS]
    )
    return [ready for at, ready in enumerate(rows) if at not in erased]
