"""Signals as stored (no identifiers: each belongs to a profile), and the record of imports."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters import bulk
from services.risk.adapters.tables import imports, profiles, signals
from services.risk.domain.rules import SignalFact
from services.risk.domain.signals import SignalType
from shared.db import driver


class NewSignal(NamedTuple):
    profile_id: str
    type: str
    attributes: str  # as JSON
    source: str
    observed_on: date
    expires_on: date
    fingerprint: str  # the same fact sent twice is stored once


@dataclass(frozen=True)
class ImportRecord:
    id: str
    council: str
    submitted_by: str
    format: str
    rows_read: int
    rows_stored: int
    rows_duplicate: int
    rows_rejected: int
    flagged: int
    finished_at: datetime


_COLUMNS = (
    "id",
    "profile_id",
    "type",
    "attributes",
    "source",
    "observed_on",
    "expires_on",
    "fingerprint",
)
# When some of a batch are held already, the batch is copied into a table of the
# transaction's own, then stored in one statement that skips those held.
_INCOMING = "risk_incoming_signals"
_CREATE_INCOMING = f"""
    CREATE TEMPORARY TABLE IF NOT EXISTS {_INCOMING} (
        position integer NOT NULL,
        id uuid NOT NULL,
        profile_id uuid NOT NULL,
        type text NOT NULL,
        attributes jsonb NOT NULL,
        source text NOT NULL,
        observed_on date NOT NULL,
        expires_on date NOT NULL,
        fingerprint text COLLATE "C" NOT NULL
    ) ON COMMIT DELETE ROWS
"""
_STORE_INCOMING = f"""
    INSERT INTO signals ({", ".join(_COLUMNS)})
    SELECT {", ".join(_COLUMNS)} FROM {_INCOMING} ORDER BY position
    ON CONFLICT DO NOTHING
    RETURNING profile_id::text
"""

_STORE_FEW = f"""
    INSERT INTO signals ({", ".join(_COLUMNS)})
    SELECT {", ".join(_COLUMNS)} FROM unnest(
        $1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::text[], $6::date[], $7::date[],
        $8::text[]
    ) WITH ORDINALITY AS few({", ".join(_COLUMNS)}, position)
    ORDER BY position
    ON CONFLICT DO NOTHING
    RETURNING profile_id::text
"""


async def insert_new(session: AsyncSession, batch: Sequence[NewSignal]) -> list[str]:
    """Store the signals not held already (in the order given); the profile of each one
    stored. A few (``bulk.COPY_FROM``) in one ``INSERT`` that skips those held; a batch in
    one ``COPY`` when none is held already, else one ``COPY`` into a table of the
    transaction's own and one ``INSERT … SELECT`` that skips those held."""
    if not batch:
        return []
    db = await driver(session)
    records = [(id_, *s) for id_, s in zip(bulk.time_ordered_ids(len(batch)), batch, strict=True)]
    if len(records) < bulk.COPY_FROM:
        columns = (list(column) for column in zip(*records, strict=True))
        return [row[0] for row in await db.fetch(_STORE_FEW, *columns)]
    if await bulk.copy_unless_held(db, "signals", _COLUMNS, records):
        return [s.profile_id for s in batch]
    await db.execute(_CREATE_INCOMING)
    await db.copy_records_to_table(
        _INCOMING,
        columns=("position", *_COLUMNS),
        records=[(position, *record) for position, record in enumerate(records)],
    )
    stored = await db.fetch(_STORE_INCOMING)
    await db.execute(f"DELETE FROM {_INCOMING}")  # for the next council in this transaction
    return [row[0] for row in stored]


# The tombstones (``shared/erasure.py``) among a batch's keys' hashes, each with the day of
# its erasure (Europe/London): one statement probing the primary key for the whole batch.
# (Joining the batch's rows to the table instead lets the planner hash every tombstone for
# each batch, a cost that grows with every erasure ever made.)
_TOMBSTONED = """
    SELECT hash, (erased_at AT TIME ZONE 'Europe/London')::date
    FROM erased_identifiers
    WHERE hash = ANY($1::text[])
       OR (hash = ANY($2::text[]) AND erased_at < (SELECT min(at) FROM council_keys_since))
"""

# Tombstones that may be of keys made before resident keys named the council (migration
# 0011): erasures recorded before then.
_TOMBSTONED_BEFORE_COUNCIL_KEYS = """
    SELECT EXISTS (
        SELECT FROM erased_identifiers
        WHERE erased_at < (SELECT min(at) FROM council_keys_since)
    )
"""


async def tombstones_before_council_keys(session: AsyncSession) -> bool:
    """Whether an erasure recorded before resident keys named the council is held: its
    tombstones are of the identifiers' keys alone, so a feed's rows must be checked against
    those too (``Keying``)."""
    db = await driver(session)
    return bool(await db.fetchval(_TOMBSTONED_BEFORE_COUNCIL_KEYS))


async def erased_rows(
    session: AsyncSession, rows: Sequence[tuple[Sequence[str], Sequence[str], date]]
) -> set[int]:
    """The places in ``rows`` (each its keys' tombstone hashes, its identifiers' own keys'
    (matched only to erasures recorded before keys named the council), and its observed
    date) of those about an erased resident observed on or before the day of the erasure (a
    date says nothing of the hour: the erasure's own day counts as before). One query for
    the whole batch; the few tombstones it finds are matched to the rows here."""
    hashes = list({hash_ for tombstones, _, _ in rows for hash_ in tombstones})
    before = list({hash_ for _, tombstones, _ in rows for hash_ in tombstones})
    if not hashes and not before:
        return set()
    db = await driver(session)
    erased_on: dict[str, date] = dict(await db.fetch(_TOMBSTONED, hashes, before))
    if not erased_on:
        return set()
    return {
        position
        for position, (tombstones, tombstones_before, observed_on) in enumerate(rows)
        if any(
            h in erased_on and observed_on <= erased_on[h]
            for h in (*tombstones, *tombstones_before)
        )
    }


_FACT_COLUMNS = (
    signals.c.profile_id,
    signals.c.type,
    signals.c.attributes,
    signals.c.observed_on,
    signals.c.expires_on,
)


def _fact(row: RowMapping) -> SignalFact:
    return SignalFact(
        SignalType(row["type"]), row["attributes"], row["observed_on"], row["expires_on"]
    )


async def facts_of(
    session: AsyncSession, profile_ids: Sequence[str]
) -> dict[str, list[SignalFact]]:
    """Every stored signal of these profiles, in one query (the profiles as one array)."""
    db = await driver(session)
    rows = await db.fetch(
        "SELECT profile_id::text, type, attributes, observed_on, expires_on FROM signals "
        "WHERE profile_id = ANY($1::uuid[])",
        list(profile_ids),
    )
    facts: dict[str, list[SignalFact]] = defaultdict(list)
    types = _SIGNAL_TYPES
    for profile_id, kind, attributes, observed_on, expires_on in rows:
        facts[profile_id].append(SignalFact(types[kind], attributes, observed_on, expires_on))
    return facts


_SIGNAL_TYPES = {kind.value: kind for kind in SignalType}


async def facts_by_profile(
    session: AsyncSession, council: str | None = None
) -> AsyncIterator[tuple[str, list[SignalFact]]]:
    """Every profile's signals (of one council's profiles, if given), streamed one profile at
    a time (for a dry run)."""
    query = select(*_FACT_COLUMNS)
    if council is not None:
        query = query.join(profiles, profiles.c.id == signals.c.profile_id).where(
            profiles.c.council == council
        )
    rows = await session.stream(query.order_by(signals.c.profile_id))
    profile: str | None = None
    facts: list[SignalFact] = []
    async for row in rows.mappings():
        if row["profile_id"] != profile and profile is not None:
            yield profile, facts
            facts = []
        profile = row["profile_id"]
        facts.append(_fact(row))
    if profile is not None:
        yield profile, facts


async def record_import(session: AsyncSession, record: ImportRecord) -> None:
    await session.execute(imports.insert().values(**asdict(record)))
