"""Stored rulesets: every version ever proposed, at most one of them active."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters.tables import rulesets
from shared.db import fetch_all, fetch_one, rows_affected


@dataclass(frozen=True)
class StoredRuleset:
    version: str
    label: str
    active: bool
    created_by: str
    created_at: datetime
    activated_at: datetime | None
    source: str


def _stored(row: RowMapping) -> StoredRuleset:
    return StoredRuleset(
        version=row["version"],
        label=row["label"],
        active=row["active"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        activated_at=row["activated_at"],
        source=row["source"],
    )


async def add(
    session: AsyncSession, *, version: str, label: str, source: str, created_by: str
) -> None:
    """Keep a ruleset, inactive; a version held already is left as it is."""
    await session.execute(
        insert(rulesets)
        .values(version=version, label=label, source=source, created_by=created_by)
        .on_conflict_do_nothing()
    )


async def get(session: AsyncSession, version: str) -> StoredRuleset | None:
    row = await fetch_one(session, select(rulesets).where(rulesets.c.version == version))
    return None if row is None else _stored(row)


async def newest_first(session: AsyncSession) -> list[StoredRuleset]:
    rows = await fetch_all(session, select(rulesets).order_by(rulesets.c.created_at.desc()))
    return [_stored(row) for row in rows]


async def active_version(session: AsyncSession) -> str | None:
    return await session.scalar(select(rulesets.c.version).where(rulesets.c.active))


async def activate(session: AsyncSession, version: str, *, at: datetime) -> bool:
    """Put a stored version in force, and no other; False if there is no such version."""
    if await get(session, version) is None:
        return False
    await session.execute(update(rulesets).where(rulesets.c.active).values(active=False))
    return (
        await rows_affected(
            session,
            update(rulesets)
            .where(rulesets.c.version == version)
            .values(active=True, activated_at=at),
        )
        == 1
    )
