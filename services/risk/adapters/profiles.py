"""Residents as profiles, reached through their keys (keyed hashes of normalised identifiers)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters import bulk
from shared.db import advisory_lock, driver


async def lock_council(session: AsyncSession, council: str) -> None:
    """One writer of profiles per council at a time, so a new resident gets one profile (and
    what decides a flag, signals and help, is written by one at a time)."""
    await advisory_lock(session, f"risk|{council}")


async def resolve_profiles(
    session: AsyncSession,
    council: str,
    key_sets: Sequence[Sequence[str]],
    *,
    new_id: Callable[[], str],
    created: set[str] | None = None,
) -> list[str]:
    """The profile of each key set (strongest key first), created when none is known.
    Call it holding ``lock_council``. A set with no key is refused: its profile could never
    be found again. One query for the known keys and one statement each for the new profiles
    and the new keys, whatever the number of sets (a ``COPY`` for a batch). ``created``
    collects the new profiles."""
    if not all(key_sets):
        raise ValueError("a resident with no key has no profile")
    if not key_sets:
        return []
    db = await driver(session)
    known: dict[str, str] = {
        key: profile_id
        for key, profile_id in await db.fetch(
            "SELECT key, profile_id::text FROM profile_keys WHERE key = ANY($1::text[])",
            [key for keys in key_sets for key in keys],
        )
    }
    new_profiles: list[str] = []
    new_keys: list[tuple[str, str]] = []
    found: list[str] = []
    for keys in key_sets:
        profile = next((known[k] for k in keys if k in known), None)
        if profile is None:
            profile = new_id()
            new_profiles.append(profile)
        for key in keys:
            if key not in known:
                known[key] = profile
                new_keys.append((key, profile))
        found.append(profile)
    if created is not None:
        created.update(new_profiles)
    if new_profiles and len(new_profiles) < bulk.COPY_FROM:
        await db.execute(
            "INSERT INTO profiles (id, council) SELECT unnest($1::uuid[]), $2",
            new_profiles,
            council,
        )
    elif new_profiles:
        await db.copy_records_to_table(
            "profiles", columns=("id", "council"), records=[(p, council) for p in new_profiles]
        )
    if new_keys and (
        len(new_keys) < bulk.COPY_FROM
        or not await bulk.copy_unless_held(db, "profile_keys", ("key", "profile_id"), new_keys)
    ):
        # (Skipping a key held already; under the council's lock, which every writer of its
        # keys holds, none should be.)
        await db.execute(
            "INSERT INTO profile_keys (key, profile_id) "
            "SELECT * FROM unnest($1::text[], $2::uuid[]) ON CONFLICT DO NOTHING",
            [key for key, _ in new_keys],
            [profile for _, profile in new_keys],
        )
    return found
