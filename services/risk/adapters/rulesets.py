"""Stored rulesets: every version ever proposed, at most one of them active (the deployment's
default), and each council's own ruleset in force, where it has one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Text, bindparam, cast, delete, null, select, union_all, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters.tables import council_rulesets, rulesets
from shared.db import advisory_lock, fetch_all, fetch_one, rows_affected


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
    """Put a stored version in force, and no other; False if there is no such version.
    Activations one at a time: two at once would each switch off the one active before
    them, not each other, and leave two in force."""
    await advisory_lock(session, "risk|rulesets")
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


# -- per council ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CouncilChoice:
    council: str
    version: str
    activated_by: str
    activated_at: datetime


# Built once (every assessment asks): the councils' own, then the default (no council).
_VERSIONS_IN_FORCE = union_all(
    select(council_rulesets.c.council, council_rulesets.c.version).where(
        council_rulesets.c.council.in_(bindparam("councils", expanding=True))
    ),
    select(cast(null(), Text).label("council"), rulesets.c.version).where(rulesets.c.active),
)


async def versions_in_force(session: AsyncSession, councils: Sequence[str]) -> dict[str, str]:
    """The version in force for each council, its own else the default, in one statement;
    councils missing from the answer: none of their own and no default (the database was not
    migrated)."""
    rows = await fetch_all(session, _VERSIONS_IN_FORCE, {"councils": list(councils)})
    found = {row["council"]: row["version"] for row in rows}
    fallback = found.pop(None, None)
    return {
        council: found.get(council, fallback)
        for council in councils
        if council in found or fallback is not None
    }


async def choice_of(session: AsyncSession, council: str) -> CouncilChoice | None:
    row = await fetch_one(
        session, select(council_rulesets).where(council_rulesets.c.council == council)
    )
    return None if row is None else CouncilChoice(**dict(row))


async def choose_for_council(
    session: AsyncSession, council: str, version: str, *, by: str, at: datetime
) -> None:
    """Put a stored version in force for one council (the caller checked it is stored)."""
    values = {"version": version, "activated_by": by, "activated_at": at}
    await session.execute(
        insert(council_rulesets)
        .values(council=council, **values)
        .on_conflict_do_update(index_elements=[council_rulesets.c.council], set_=values)
    )


async def forget_council_choice(session: AsyncSession, council: str) -> bool:
    """The council goes back to the default; False if it had no ruleset of its own."""
    return (
        await rows_affected(
            session, delete(council_rulesets).where(council_rulesets.c.council == council)
        )
        == 1
    )
