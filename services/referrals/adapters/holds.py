"""Needs held back from partners while a possible duplicate waits for a caseworker."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters import Row
from services.referrals.adapters.tables import cases, routing_holds
from shared.db import fetch_all

HELD = "held"


async def insert_hold(
    session: AsyncSession,
    *,
    id: str,
    case_id: str,
    need: str,
    duplicate_id: str,
    other_case_id: str,
) -> None:
    await session.execute(
        routing_holds.insert().values(
            id=id,
            case_id=case_id,
            need=need,
            duplicate_id=duplicate_id,
            other_case_id=other_case_id,
            status=HELD,
        )
    )


async def held_needs(session: AsyncSession, case_id: str) -> set[str]:
    rows = await fetch_all(
        session,
        select(routing_holds.c.need).where(
            routing_holds.c.case_id == case_id, routing_holds.c.status == HELD
        ),
    )
    return {row["need"] for row in rows}


async def settle_holds_of_duplicate(
    session: AsyncSession, duplicate_id: str, status: str, *, now: datetime
) -> list[str]:
    """The holds of this possible duplicate end (``released`` or ``merged``); the cases
    they held."""
    rows = await fetch_all(
        session,
        update(routing_holds)
        .where(routing_holds.c.duplicate_id == duplicate_id, routing_holds.c.status == HELD)
        .values(status=status, settled_at=now)
        .returning(routing_holds.c.case_id),
    )
    return sorted({row["case_id"] for row in rows})


async def move_holds(session: AsyncSession, moves: dict[str, str]) -> None:
    """Holds of a possible-duplicate entry closed by a merge follow the entry it became."""
    for stale, surviving in moves.items():
        await session.execute(
            update(routing_holds)
            .where(routing_holds.c.duplicate_id == stale, routing_holds.c.status == HELD)
            .values(duplicate_id=surviving)
        )


async def settle_holds_on_case(
    session: AsyncSession, case_id: str, status: str, *, now: datetime
) -> None:
    """The holds on this case's own needs end (the case is merged away)."""
    await session.execute(
        update(routing_holds)
        .where(routing_holds.c.case_id == case_id, routing_holds.c.status == HELD)
        .values(status=status, settled_at=now)
    )


async def hold_because_of(session: AsyncSession, *, merged_case: str, survivor_case: str) -> None:
    """Needs held because of a case merged away stay held, now because of the case it
    became: the question (is this the same person?) is still open, and the survivor has
    the needs now."""
    await session.execute(
        update(routing_holds)
        .where(routing_holds.c.other_case_id == merged_case, routing_holds.c.status == HELD)
        .values(other_case_id=survivor_case)
    )


async def holds_of(session: AsyncSession, case_id: str) -> Sequence[Row]:
    return await fetch_all(
        session,
        select(
            routing_holds.c.need,
            routing_holds.c.duplicate_id,
            routing_holds.c.other_case_id,
            routing_holds.c.status,
            routing_holds.c.created_at,
            routing_holds.c.settled_at,
        )
        .where(routing_holds.c.case_id == case_id)
        .order_by(routing_holds.c.created_at),
    )


async def held_needs_by_duplicate(
    session: AsyncSession, duplicate_ids: Sequence[str]
) -> dict[str, set[str]]:
    if not duplicate_ids:
        return {}
    rows = await fetch_all(
        session,
        select(routing_holds.c.duplicate_id, routing_holds.c.need).where(
            routing_holds.c.duplicate_id.in_(duplicate_ids), routing_holds.c.status == HELD
        ),
    )
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row["duplicate_id"], set()).add(row["need"])
    return found


def case_is_held() -> ColumnElement[bool]:
    """For the queue: the case has a need held for a possible duplicate."""
    return exists().where(routing_holds.c.case_id == cases.c.id, routing_holds.c.status == HELD)
