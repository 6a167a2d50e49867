"""Signals from council data teams: one, a batch, or a whole CSV/NDJSON file streamed in.

Valid rows are stored in batches (``import_batch_size``), each in its own transaction with the
assessments it leads to; bad rows are reported by line and skipped. Every row read is stored,
held already or rejected (``rows_read = rows_stored + rows_duplicate + rows_rejected``), and
every line of a file is a row, a header or blank, or the second or later line of a CSV record
whose quoted cell holds line breaks (``lines_read = rows_read + lines_skipped + lines_joined``).
Residents are profiles found through their keys (keyed hashes of normalised identifiers),
created on first sight.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from services.risk.adapters import signals as stored_signals
from services.risk.adapters.profiles import lock_council, resolve_profiles
from services.risk.adapters.signals import ImportRecord, NewSignal
from services.risk.domain.feeds import BatchFeed, Feed, Row, RowError, check_parsed
from services.risk.domain.rules import jsonable_attributes
from services.risk.service_layer.assessments import ResidentSeen, assess_residents
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared.errors import Invalid
from shared.identity import resident_keys

MAX_SIGNALS_A_REQUEST = 1000
MAX_REPORTED_ERRORS = 1000


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

    def __iadd__(self, other: BatchOutcome) -> BatchOutcome:
        self.stored += other.stored
        self.duplicate += other.duplicate
        self.flagged += other.flagged
        self.cases_assessed += other.cases_assessed
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
    the import; the outcome says what was stored, held already, refused (and why)."""
    total, read, rejected, errors_found = BatchOutcome(), 0, 0, 0
    errors: list[RowError] = []
    batch: list[Row] = []
    async for line, raw in records:
        read += 1
        checked = check_parsed(line, raw)
        if (
            isinstance(checked, Row)
            and submitter.own_council_only
            and checked.signal.council != submitter.organisation
        ):
            checked = [RowError(line, "council", f"{checked.signal.council} is not your council")]
        if isinstance(checked, list):
            rejected += 1
            errors_found += len(checked)
            errors.extend(checked[: max(0, MAX_REPORTED_ERRORS - len(errors))])
            continue
        batch.append(checked)
        if len(batch) >= uow.settings.import_batch_size:
            total += await store_batch(uow, batch)
            batch = []
    if batch:
        total += await store_batch(uow, batch)
    import_id = uow.new_id()
    async with uow.transaction():
        await stored_signals.record_import(
            uow.session,
            ImportRecord(
                id=import_id,
                council=submitter.organisation,
                submitted_by=submitter.subject,
                format=fmt,
                rows_read=read,
                rows_stored=total.stored,
                rows_duplicate=total.duplicate,
                rows_rejected=rejected,
                flagged=total.flagged,
                finished_at=uow.now(),
            ),
        )
    return ImportOutcome(
        import_id=import_id,
        rows_read=read,
        rows_stored=total.stored,
        rows_duplicate=total.duplicate,
        rows_rejected=rejected,
        flagged=total.flagged,
        cases_assessed=total.cases_assessed,
        errors=errors,
        errors_truncated=errors_found > len(errors),
        lines_read=records.lines_read,
        lines_skipped=records.lines_skipped,
        lines_joined=records.lines_joined,
    )


async def store_batch(uow: RiskUnitOfWork, rows: Sequence[Row]) -> BatchOutcome:
    """Store a batch of valid rows in one transaction; assess whoever got a new signal."""
    outcome = BatchOutcome()
    if not rows:
        return outcome
    by_council: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_council[row.signal.council].append(row)
    async with uow.transaction():
        now = uow.now()
        ruleset = await uow.ruleset_in_force()
        for council, council_rows in by_council.items():
            await lock_council(uow.session, council)
            key_sets = [_keys_of(uow.resident_key_secret, row) for row in council_rows]
            profile_ids = await resolve_profiles(uow.session, council, key_sets, new_id=uow.new_id)
            new = [
                _new_signal(uow.new_id(), profile, keys[0], row)
                for row, keys, profile in zip(council_rows, key_sets, profile_ids, strict=True)
            ]
            inserted = await stored_signals.insert_new(uow.session, new)
            outcome.stored += len(inserted)
            outcome.duplicate += len(new) - len(inserted)
            # Who to flag is decided with the identity of their latest row in this batch.
            latest: dict[str, ResidentSeen] = {}
            for row, keys, profile in zip(council_rows, key_sets, profile_ids, strict=True):
                latest[profile] = ResidentSeen(keys[0], row.signal.resident)
            with_new_signals = {profile: latest[profile] for profile in dict.fromkeys(inserted)}
            reassessed = await assess_residents(
                uow, council, with_new_signals, ruleset=ruleset, now=now
            )
            outcome.flagged += reassessed.flagged
            outcome.cases_assessed += reassessed.cases_assessed
    return outcome


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


def _new_signal(signal_id: str, profile_id: str, resident_key: str, row: Row) -> NewSignal:
    attributes = jsonable_attributes(row.attributes)
    # The same fact about the same resident is the same signal, whoever sends it again.
    fact = [
        resident_key,
        row.signal.type.value,
        row.signal.source,
        row.signal.observed_on.isoformat(),
        attributes,
    ]
    return NewSignal(
        id=signal_id,
        profile_id=profile_id,
        type=row.signal.type.value,
        attributes=attributes,
        source=row.signal.source,
        observed_on=row.signal.observed_on,
        expires_on=row.expires_on,
        fingerprint=hashlib.sha256(
            json.dumps(fact, sort_keys=True, default=str).encode()
        ).hexdigest(),
    )
