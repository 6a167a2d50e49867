"""Reading a feed into batches of rows ready to store: each row checked, keyed (its resident's
keys and their tombstone hashes), its attributes written as stored and fingerprinted.

No database here: what reading needs is the feed, the resident key secret and who sends it,
so a large file is read in a process of its own (``reader_process.py``) while the API's
process stores the batches already read. A ready row is plain values (no models), so a batch
crosses between processes cheaply.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple, Protocol

from services.risk.domain.feeds import Feed, ResidentIdentifiers, Row, RowError, check_parsed
from services.risk.domain.rules import jsonable_attributes
from services.risk.domain.signals import attributes_json, fingerprint
from shared.identity import council_key, identifiers_keys

MAX_REPORTED_ERRORS = 1000


@dataclass(frozen=True)
class Submitter:
    """Who sends the signals: a council's data team may send its own residents' only."""

    organisation: str
    subject: str
    own_council_only: bool


@dataclass(frozen=True)
class Keying:
    """How a feed's rows are keyed: with the deployment's resident key secret; and, when
    erasures recorded before resident keys named the council are held (risk migration
    0011), each row's identifiers' own keys' tombstone hashes too, which those erasures'
    tombstones are of."""

    secret: str
    tombstones_before_council_keys: bool


class Ready(NamedTuple):
    """A valid row and what storing it needs, worked out as it is read: its resident's keys
    (strongest first), their tombstone hashes (and those of its identifiers' own keys, when
    ``Keying`` asks for them, else none), its attributes as stored (JSON), its fingerprint,
    and the resident's identifiers as JSON (sealed into a flag, never stored)."""

    line: int
    council: str
    type: str
    source: str
    observed_on: date
    expires_on: date
    keys: list[str]
    tombstones: list[str]
    tombstones_before_council_keys: list[str]
    attributes: str
    fingerprint: str
    identity: dict[str, Any]  # as JSON: sealed into a flag, never stored


@dataclass
class ReadTotals:
    """What reading a whole feed found besides its valid rows: every row read, those refused
    (the first ``MAX_REPORTED_ERRORS`` reasons, by line), and how its lines were used."""

    read_count: int = 0
    rejected: int = 0
    errors_found: int = 0
    errors: list[RowError] = field(default_factory=list)
    lines_read: int = 0
    lines_skipped: int = 0
    lines_joined: int = 0


class BatchSink(Protocol):
    """Where the batches go, in order, then None: a queue, or the pipe to the API's process."""

    async def put(self, batch: list[Ready] | None) -> None: ...


_ROWS_BETWEEN_TURNS = 200


async def read_feed(
    records: Feed, keying: Keying, batch_size: int, submitter: Submitter, batches: BatchSink
) -> ReadTotals:
    """Read the feed to its end into batches of ready rows (then None), counting and keeping
    its refusals."""
    totals = ReadTotals()
    errors = totals.errors
    batch: list[Ready] = []
    own_council_only, organisation = submitter.own_council_only, submitter.organisation
    tombstone_of = tombstone_hasher(keying.secret)
    async for line, raw in records:
        totals.read_count += 1
        if not totals.read_count % _ROWS_BETWEEN_TURNS:
            # A file's next lines are usually in hand already, so reading would not stop
            # until a batch is full: it lets the storing go on now and then, so that the
            # database works on one batch while the next is read.
            await asyncio.sleep(0)
        checked = check_parsed(line, raw)
        if isinstance(checked, Row) and own_council_only and checked.signal.council != organisation:
            checked = [RowError(line, "council", f"{checked.signal.council} is not your council")]
        if isinstance(checked, list):
            totals.rejected += 1
            totals.errors_found += len(checked)
            errors.extend(checked[: max(0, MAX_REPORTED_ERRORS - len(errors))])
            continue
        batch.append(ready_row(keying, checked, tombstone_of))
        if len(batch) >= batch_size:
            await batches.put(batch)
            batch = []
    if batch:
        await batches.put(batch)
    await batches.put(None)
    totals.lines_read = records.lines_read
    totals.lines_skipped = records.lines_skipped
    totals.lines_joined = records.lines_joined
    return totals


def ready_row(keying: Keying, row: Row, tombstone_of: Callable[[str], str] | None = None) -> Ready:
    signal, person = row.signal, row.signal.resident
    secret = keying.secret
    own_keys = identifiers_keys(
        secret,
        given_name=person.given_name,
        family_name=person.family_name,
        date_of_birth=person.date_of_birth,
        postcode=person.postcode,
        uprn=person.uprn,
    )
    # (shared.identity.resident_keys, from the identifiers' keys it made on the way)
    keys = [council_key(secret, signal.council, key) for key in own_keys]
    tombstone_of = tombstone_of or tombstone_hasher(secret)
    attributes = attributes_json(jsonable_attributes(row.attributes))
    kind = signal.type.value
    found = fingerprint(keys[0], kind, signal.source, signal.observed_on, attributes)
    return Ready(
        row.line,
        signal.council,
        kind,
        signal.source,
        signal.observed_on,
        row.expires_on,
        keys,
        [tombstone_of(k) for k in keys],
        [tombstone_of(k) for k in own_keys] if keying.tombstones_before_council_keys else [],
        attributes,
        found,
        identity_json(person),
    )


def identity_json(person: ResidentIdentifiers) -> dict[str, Any]:
    """``person.model_dump(mode="json", exclude_none=True)``, built directly from its fields
    (each text or a date): a feed has a million, at 1 µs each rather than pydantic's 1.6."""
    return {
        name: value.isoformat() if isinstance(value, date) else value
        for name, value in person.__dict__.items()
        if value is not None
    }


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
