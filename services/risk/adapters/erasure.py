"""Erasure in the risk service (``service_layer/erasure.py``): the profiles an erasure
request's keys and cases reach, and everything they hold."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import delete, or_, select
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
from shared.db import fetch_all, rows_affected


async def keys_of(session: AsyncSession, profile_ids: Sequence[str]) -> list[str]:
    rows = await fetch_all(
        session, select(profile_keys.c.key).where(profile_keys.c.profile_id.in_(profile_ids))
    )
    return [r["key"] for r in rows]


async def signal_ids(session: AsyncSession, profile_ids: Sequence[str]) -> list[str]:
    rows = await fetch_all(
        session, select(signals.c.id).where(signals.c.profile_id.in_(profile_ids))
    )
    return [str(r["id"]) for r in rows]


async def erase(
    session: AsyncSession, council: str, profile_ids: Sequence[str], case_ids: Sequence[str]
) -> dict[str, int]:
    """Delete the profiles and the council's cases named, and all they hold, children first;
    how many of each kind."""
    own_cases = select(cases.c.case_id).where(
        cases.c.case_id.in_(case_ids), cases.c.council == council
    )
    return {
        "handled_signals": await rows_affected(
            session, delete(handled_signals).where(handled_signals.c.profile_id.in_(profile_ids))
        ),
        "outcomes": await rows_affected(
            session,
            delete(outcomes).where(
                or_(outcomes.c.profile_id.in_(profile_ids), outcomes.c.case_id.in_(own_cases))
            ),
        ),
        "assessments": await rows_affected(
            session,
            delete(assessments).where(
                or_(
                    assessments.c.profile_id.in_(profile_ids),
                    assessments.c.case_id.in_(own_cases),
                )
            ),
        ),
        "signals": await rows_affected(
            session, delete(signals).where(signals.c.profile_id.in_(profile_ids))
        ),
        "cases": await rows_affected(
            session,
            delete(cases).where(
                or_(
                    cases.c.profile_id.in_(profile_ids),
                    (cases.c.case_id.in_(case_ids)) & (cases.c.council == council),
                )
            ),
        ),
        "keys": await rows_affected(
            session, delete(profile_keys).where(profile_keys.c.profile_id.in_(profile_ids))
        ),
        "profiles": await rows_affected(
            session, delete(profiles).where(profiles.c.id.in_(profile_ids))
        ),
    }


# -- retention ------------------------------------------------------------------------------


async def delete_signals_expired_before(session: AsyncSession, cutoff: date, batch: int) -> int:
    """Signals that expired before ``cutoff`` (and their handled marks): at most ``batch``."""
    due = (
        select(signals.c.id)
        .where(signals.c.expires_on < cutoff)
        .order_by(signals.c.expires_on, signals.c.id)
        .limit(batch)
    )
    ids = [str(r["id"]) for r in await fetch_all(session, due)]
    if not ids:
        return 0
    await session.execute(delete(handled_signals).where(handled_signals.c.signal_id.in_(ids)))
    return await rows_affected(session, delete(signals).where(signals.c.id.in_(ids)))
