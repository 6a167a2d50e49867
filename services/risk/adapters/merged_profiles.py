"""Folding the profiles of two records of one resident into one (after a merge in the
referrals service)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters.tables import assessments, cases, profile_keys, profiles, signals
from shared.db import fetch_all


async def profiles_of_keys(session: AsyncSession, keys: Sequence[str]) -> dict[str, str]:
    """Key -> profile, for the keys known."""
    if not keys:
        return {}
    rows = await fetch_all(
        session,
        select(profile_keys.c.key, profile_keys.c.profile_id).where(profile_keys.c.key.in_(keys)),
    )
    return {row["key"]: row["profile_id"] for row in rows}


async def fold_profiles(
    session: AsyncSession, survivor: str, others: Sequence[str], keys: Sequence[str]
) -> None:
    """The other profiles become the survivor: their keys, signals, cases and assessments
    point at it, the keys not yet known are added to it, and the emptied profiles go."""
    if others:
        for table in (profile_keys, signals, cases, assessments):
            await session.execute(
                update(table).where(table.c.profile_id.in_(others)).values(profile_id=survivor)
            )
        await session.execute(delete(profiles).where(profiles.c.id.in_(others)))
    if keys:
        await session.execute(
            pg_insert(profile_keys)
            .values([{"key": k, "profile_id": survivor} for k in dict.fromkeys(keys)])
            .on_conflict_do_nothing()
        )
