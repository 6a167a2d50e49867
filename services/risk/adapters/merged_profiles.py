"""Folding the profiles of two records of one resident into one (after a merge in the
referrals service), and splitting them again (after the merge is undone)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters.tables import (
    assessments,
    cases,
    handled_signals,
    outcomes,
    profile_keys,
    profiles,
    signals,
)
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
    """The other profiles become the survivor: their keys, signals, cases, assessments,
    outcomes and handled signals point at it, the keys not yet known are added to it, and
    the emptied profiles go."""
    if others:
        for table in (profile_keys, signals, cases, assessments, outcomes, handled_signals):
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


# -- splitting them again (a merge undone) ------------------------------------------------


async def new_profile(session: AsyncSession, profile_id: str, council: str) -> None:
    await session.execute(profiles.insert().values(id=profile_id, council=council))


async def take_keys(
    session: AsyncSession, keys: Sequence[str], *, into: str, from_profile: str
) -> None:
    """These keys are ``into``'s: those on ``from_profile`` move, unknown ones are added."""
    if not keys:
        return
    await session.execute(
        update(profile_keys)
        .where(profile_keys.c.key.in_(keys), profile_keys.c.profile_id == from_profile)
        .values(profile_id=into)
    )
    await session.execute(
        pg_insert(profile_keys)
        .values([{"key": k, "profile_id": into} for k in dict.fromkeys(keys)])
        .on_conflict_do_nothing()
    )


async def take_cases(
    session: AsyncSession, case_ids: Sequence[str], *, into: str, from_profile: str
) -> None:
    """These cases, their assessments and outcomes, move from one profile to the other."""
    if not case_ids:
        return
    for table in (cases, assessments, outcomes):
        await session.execute(
            update(table)
            .where(table.c.case_id.in_(case_ids), table.c.profile_id == from_profile)
            .values(profile_id=into)
        )


async def reopen_case(session: AsyncSession, case_id: str) -> None:
    await session.execute(update(cases).where(cases.c.case_id == case_id).values(open=True))


async def signals_of(session: AsyncSession, profile_id: str) -> Sequence[RowMapping]:
    return await fetch_all(
        session,
        select(
            signals.c.id,
            signals.c.type,
            signals.c.source,
            signals.c.observed_on,
            signals.c.attributes,
            signals.c.fingerprint,
        ).where(signals.c.profile_id == profile_id),
    )


async def move_signals(session: AsyncSession, signal_ids: Sequence[str], *, into: str) -> None:
    """These signals (and their marks as handled) move to ``into``."""
    if signal_ids:
        await session.execute(
            update(signals).where(signals.c.id.in_(signal_ids)).values(profile_id=into)
        )
        await session.execute(
            update(handled_signals)
            .where(handled_signals.c.signal_id.in_(signal_ids))
            .values(profile_id=into)
        )
