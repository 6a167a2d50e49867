"""Signals as stored (no identifiers: each belongs to a profile), and the record of imports."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters.tables import imports, signals
from services.risk.domain.rules import SignalFact
from services.risk.domain.signals import SignalType
from shared.db import fetch_all


@dataclass(frozen=True)
class NewSignal:
    id: str
    profile_id: str
    type: str
    attributes: dict[str, Any]
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


async def insert_new(session: AsyncSession, batch: Sequence[NewSignal]) -> list[str]:
    """Store the signals not held already; the profile of each one stored."""
    stored = await fetch_all(
        session,
        pg_insert(signals)
        .values([asdict(signal) for signal in batch])
        .on_conflict_do_nothing()
        .returning(signals.c.profile_id),
    )
    return [row["profile_id"] for row in stored]


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
    """Every stored signal of these profiles, in one query."""
    rows = await fetch_all(
        session, select(*_FACT_COLUMNS).where(signals.c.profile_id.in_(profile_ids))
    )
    facts: dict[str, list[SignalFact]] = defaultdict(list)
    for row in rows:
        facts[row["profile_id"]].append(_fact(row))
    return facts


async def facts_by_profile(session: AsyncSession) -> AsyncIterator[tuple[str, list[SignalFact]]]:
    """Every profile's signals, streamed one profile at a time (for a dry run)."""
    rows = await session.stream(select(*_FACT_COLUMNS).order_by(signals.c.profile_id))
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
