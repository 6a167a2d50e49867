"""Needs held back from partners while a possible duplicate waits for a caseworker."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, bindparam, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters import Row
from services.referrals.adapters.tables import cases, possible_duplicates, routing_holds
from shared.db import fetch_all, lock_by_id, rows_affected

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


# Built once (every case routed asks): the case bound.
_HELD_NEEDS = select(routing_holds.c.need).where(
    routing_holds.c.case_id == bindparam("case_id"), routing_holds.c.status == HELD
)


async def held_needs(session: AsyncSession, case_id: str) -> set[str]:
    rows = await fetch_all(session, _HELD_NEEDS, {"case_id": case_id})
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


async def move_holds(session: AsyncSession, moves: dict[str, str]) -> dict[str, str]:
    """Holds of a possible-duplicate entry closed by a merge follow the entry it became:
    {hold id: the entry it was of}, for an undo."""
    moved: dict[str, str] = {}
    for stale, surviving in sorted(moves.items()):
        rows = await fetch_all(
            session,
            update(routing_holds)
            .where(routing_holds.c.duplicate_id == stale, routing_holds.c.status == HELD)
            .values(duplicate_id=surviving)
            .returning(routing_holds.c.id),
        )
        moved.update({row["id"]: stale for row in rows})
    return moved


async def settle_holds_on_case(
    session: AsyncSession, case_id: str, status: str, *, now: datetime
) -> list[str]:
    """The holds on this case's own needs end (the case is merged away); their ids."""
    rows = await fetch_all(
        session,
        update(routing_holds)
        .where(routing_holds.c.case_id == case_id, routing_holds.c.status == HELD)
        .values(status=status, settled_at=now)
        .returning(routing_holds.c.id),
    )
    return sorted(row["id"] for row in rows)


async def hold_because_of(
    session: AsyncSession, *, merged_case: str, survivor_case: str
) -> list[str]:
    """Needs held because of a case merged away stay held, now because of the case it
    became: the question (is this the same person?) is still open, and the survivor has
    the needs now. The holds' ids."""
    rows = await fetch_all(
        session,
        update(routing_holds)
        .where(routing_holds.c.other_case_id == merged_case, routing_holds.c.status == HELD)
        .values(other_case_id=survivor_case)
        .returning(routing_holds.c.id),
    )
    return sorted(row["id"] for row in rows)


# -- undoing a merge: its holds as they were ------------------------------------------


async def holds_by_id(session: AsyncSession, ids: Sequence[str]) -> dict[str, Row]:
    """These holds, locked, by id."""
    return await lock_by_id(session, routing_holds, ids)


async def move_holds_back(
    session: AsyncSession, moved: dict[str, str], *, into: dict[str, str]
) -> int:
    """Undo ``move_holds``: each hold ({hold id: its entry before}) is of its entry again,
    if still held under the entry it was moved to (``into``: {stale: surviving}). How many."""
    count = 0
    for hold_id, stale in sorted(moved.items()):
        count += await rows_affected(
            session,
            update(routing_holds)
            .where(
                routing_holds.c.id == hold_id,
                routing_holds.c.status == HELD,
                routing_holds.c.duplicate_id == into[stale],
            )
            .values(duplicate_id=stale),
        )
    return count


async def hold_because_of_again(
    session: AsyncSession, ids: Sequence[str], *, merged_case: str, survivor_case: str
) -> int:
    """Undo ``hold_because_of``: these holds are because of the merged case again (those
    still held because of the survivor). How many."""
    if not ids:
        return 0
    return await rows_affected(
        session,
        update(routing_holds)
        .where(
            routing_holds.c.id.in_(ids),
            routing_holds.c.status == HELD,
            routing_holds.c.other_case_id == survivor_case,
        )
        .values(other_case_id=merged_case),
    )


async def hold_again(session: AsyncSession, ids: Sequence[str], *, ended_as: str) -> list[str]:
    """Undo ``settle_holds_on_case``: these holds, ended ``ended_as`` by the merge, hold
    their need again where their possible duplicate is still open (one the undo rejected
    stays ended: two people after all). The needs held again."""
    if not ids:
        return []
    rows = await fetch_all(
        session,
        update(routing_holds)
        .where(
            routing_holds.c.id.in_(ids),
            routing_holds.c.status == ended_as,
            exists().where(
                possible_duplicates.c.id == routing_holds.c.duplicate_id,
                possible_duplicates.c.status == "open",
            ),
        )
        .values(status=HELD, settled_at=None)
        .returning(routing_holds.c.need),
    )
    return sorted(row["need"] for row in rows)


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
