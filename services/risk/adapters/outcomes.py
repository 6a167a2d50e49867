"""Outcomes on profiles and the signals they handled, in the database."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters.tables import outcomes
from services.risk.domain.outcomes import Help
from services.risk.domain.rules import SignalFact
from services.risk.domain.signals import SignalType
from shared.db import driver


async def record(
    session: AsyncSession,
    *,
    id: str,
    profile_id: str,
    case_id: str,
    need: str,
    outcome: str,
    helped: bool,
    recorded_at: datetime,
) -> bool:
    """The outcome on the profile; False if it is held already (the same event again)."""
    inserted = await session.execute(
        pg_insert(outcomes)
        .values(
            id=id,
            profile_id=profile_id,
            case_id=case_id,
            need=need,
            outcome=outcome,
            helped=helped,
            recorded_at=recorded_at,
        )
        .on_conflict_do_nothing()
        .returning(outcomes.c.id)
    )
    return inserted.first() is not None


async def mark_handled(
    session: AsyncSession,
    *,
    outcome_id: str,
    profile_id: str,
    types: Sequence[SignalType],
    on: date,
    at: datetime,
) -> int:
    """The profile's signals of these types current on ``on`` (observed by then, not yet
    expired), handled by the outcome, in one statement. How many were newly handled."""
    result = await session.execute(
        text(
            "INSERT INTO handled_signals (signal_id, profile_id, outcome_id, handled_at) "
            "SELECT id, profile_id, :outcome, :at FROM signals "
            "WHERE profile_id = :profile AND type = ANY(:types) "
            "AND observed_on <= :on AND expires_on >= :on "
            "ON CONFLICT (signal_id) DO NOTHING"
        ),
        {
            "outcome": outcome_id,
            "at": at,
            "profile": profile_id,
            "types": [kind.value for kind in types],
            "on": on,
        },
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def help_of(session: AsyncSession, profile_ids: Sequence[str]) -> dict[str, Help]:
    """What help did for each of these profiles that was ever helped: its handled signals
    and the last time help arrived. One query over the profiles as one array, and a second
    only when one of them was ever helped (rare in a feed)."""
    db = await driver(session)
    helped = await db.fetch(
        "SELECT profile_id::text, max(recorded_at) FROM outcomes "
        "WHERE profile_id = ANY($1::uuid[]) AND helped GROUP BY profile_id",
        list(profile_ids),
    )
    if not helped:
        return {}
    last = {profile_id: at for profile_id, at in helped}
    handled: dict[str, list[SignalFact]] = defaultdict(list)
    for profile_id, kind, attributes, observed_on, expires_on in await db.fetch(
        "SELECT h.profile_id::text, s.type, s.attributes, s.observed_on, s.expires_on "
        "FROM handled_signals h JOIN signals s ON s.id = h.signal_id "
        "WHERE h.profile_id = ANY($1::uuid[])",
        list(last),
    ):
        fact = SignalFact(SignalType(kind), attributes, observed_on, expires_on)
        handled[profile_id].append(fact)
    return {
        profile_id: Help(tuple(handled.get(profile_id, ())), at) for profile_id, at in last.items()
    }
