"""Merging two open cases of one resident: what moves, and the record of the merge."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters.tables import case_merges, cases, consents, notes, referrals
from shared.db import fetch_all


async def move_case_records(
    session: AsyncSession, *, from_case: str, to_case: str
) -> dict[str, list[str]]:
    """Referrals, consents and notes of one case move to the other; their ids, by table.
    (Timeline entries and mirrored offers stay with the case they happened to.)"""
    moved: dict[str, list[str]] = {}
    for name, table in (("referrals", referrals), ("consents", consents), ("notes", notes)):
        rows = await fetch_all(
            session,
            update(table)
            .where(table.c.case_id == from_case)
            .values(case_id=to_case)
            .returning(table.c.id),
        )
        moved[name] = [row["id"] for row in rows]
    return moved


async def mark_merged_into(session: AsyncSession, case_id: str, into: str) -> None:
    await session.execute(update(cases).where(cases.c.id == case_id).values(merged_into_case=into))


async def insert_merge(session: AsyncSession, **values: Any) -> None:
    await session.execute(case_merges.insert().values(**values))
