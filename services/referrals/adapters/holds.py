"""Needs held back from partners while a possible duplicate waits for a caseworker."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, exists, or_, select, update
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


async def settle_holds_of_cases(
    session: AsyncSession, case_ids: Sequence[str], status: str, *, now: datetime
) -> list[str]:
    """Holds on, or because of, these cases end; the cases they held."""
    rows = await fetch_all(
        session,
        update(routing_holds)
        .where(
            routing_holds.c.status == HELD,
            or_(routing_holds.c.case_id.in_(case_ids), routing_holds.c.other_case_id.in_(case_ids)),
        )
        .values(status=status, settled_at=now)
        .returning(routing_holds.c.case_id),
    )
    return sorted({row["case_id"] for row in rows})


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
