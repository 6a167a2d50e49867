"""Residents as profiles, reached through their keys (keyed hashes of normalised identifiers)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters.tables import profile_keys, profiles
from shared.db import fetch_all


async def lock_council(session: AsyncSession, council: str) -> None:
    """One writer of profiles per council at a time, so a new resident gets one profile."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"risk|{council}"))))


async def resolve_profiles(
    session: AsyncSession,
    council: str,
    key_sets: Sequence[Sequence[str]],
    *,
    new_id: Callable[[], str],
) -> list[str]:
    """The profile of each key set (strongest key first), created when none is known.
    Call it holding ``lock_council``. A set with no key is refused: its profile could never
    be found again."""
    if not all(key_sets):
        raise ValueError("a resident with no key has no profile")
    if not key_sets:
        return []
    wanted = {key for keys in key_sets for key in keys}
    known: dict[str, str] = {
        row["key"]: row["profile_id"]
        for row in await fetch_all(
            session,
            select(profile_keys.c.key, profile_keys.c.profile_id).where(
                profile_keys.c.key.in_(wanted)
            ),
        )
    }
    new_profiles: list[str] = []
    found: list[str] = []
    for keys in key_sets:
        profile = next((known[k] for k in keys if k in known), None)
        if profile is None:
            profile = new_id()
            new_profiles.append(profile)
        for key in keys:
            known.setdefault(key, profile)
        found.append(profile)
    if new_profiles:
        await session.execute(
            insert(profiles), [{"id": p, "council": council} for p in new_profiles]
        )
    await session.execute(
        pg_insert(profile_keys)
        .values([{"key": k, "profile_id": known[k]} for k in wanted])
        .on_conflict_do_nothing()
    )
    return found
