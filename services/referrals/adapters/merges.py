"""Merging two open cases of one resident: what moves, the record of the merge, and
undoing it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters import Row
from services.referrals.adapters.residents import council_scope
from services.referrals.adapters.tables import (
    case_merges,
    case_needs,
    cases,
    consents,
    notes,
    offers,
    referrals,
)
from shared.auth import Principal
from shared.db import fetch_all, fetch_one


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


# -- undoing a merge ---------------------------------------------------------------------


def _merges_query(principal: Principal) -> Any:
    return select(case_merges).where(council_scope(principal, case_merges.c.council))


async def lock_merge(session: AsyncSession, principal: Principal, merge_id: str) -> Row | None:
    """The merge, if it is of the caller's council (an operator's: any), locked."""
    return await fetch_one(
        session, _merges_query(principal).where(case_merges.c.id == merge_id).with_for_update()
    )


async def merges_of(
    session: AsyncSession, principal: Principal, resident_id: str | None
) -> Sequence[Row]:
    """The caller's council's merges, newest first; of one resident (either side) if named."""
    query = _merges_query(principal)
    if resident_id is not None:
        query = query.where(
            or_(
                case_merges.c.merged_resident_id == resident_id,
                case_merges.c.into_resident_id == resident_id,
            )
        )
    return await fetch_all(
        session, query.order_by(case_merges.c.created_at.desc(), case_merges.c.id).limit(200)
    )


async def move_case_records_back(
    session: AsyncSession, moved: dict[str, Any], *, from_case: str, to_case: str
) -> dict[str, list[str]]:
    """What ``move_case_records`` moved goes back, by key (every column travels with its
    row); only rows still on the survivor's case. Their ids, by table."""
    back: dict[str, list[str]] = {}
    for name, table in (("referrals", referrals), ("consents", consents), ("notes", notes)):
        ids = list(moved.get(name) or ())
        if not ids:
            back[name] = []
            continue
        rows = await fetch_all(
            session,
            update(table)
            .where(table.c.case_id == from_case, table.c.id.in_(ids))
            .values(case_id=to_case)
            .returning(table.c.id),
        )
        back[name] = [row["id"] for row in rows]
    return back


async def written_since(
    session: AsyncSession, case_ids: Sequence[str], since: datetime, *, moved: Sequence[str]
) -> dict[str, int]:
    """Referrals and consents recorded on these cases since ``since`` that the merge did not
    move there: {table: how many} for those with any."""
    found: dict[str, int] = {}
    if not case_ids:
        return found
    for name, table in (("referrals", referrals), ("consents", consents)):
        query = select(func.count().label("n")).where(
            table.c.case_id.in_(case_ids), table.c.created_at >= since
        )
        if moved:
            query = query.where(table.c.id.not_in(moved))
        row = await fetch_one(session, query)
        if row is not None and row["n"]:
            found[name] = row["n"]
    return found


async def live_offers_for(
    session: AsyncSession, case_id: str, needs: Sequence[str], statuses: Sequence[str]
) -> list[str]:
    """The needs of ``needs`` with an offer in one of ``statuses`` on the case."""
    if not needs:
        return []
    rows = await fetch_all(
        session,
        select(offers.c.need)
        .distinct()
        .where(
            offers.c.case_id == case_id, offers.c.need.in_(needs), offers.c.status.in_(statuses)
        ),
    )
    return sorted(row["need"] for row in rows)


async def mark_undone(session: AsyncSession, merge_id: str, *, by: str, now: datetime) -> Row:
    undone = await fetch_one(
        session,
        update(case_merges)
        .where(case_merges.c.id == merge_id)
        .values(undone_at=now, undone_by=by)
        .returning(case_merges),
    )
    assert undone is not None  # locked by the caller
    return undone


async def reopen_withdrawn_needs(
    session: AsyncSession, case_id: str, status: str, *, now: datetime
) -> None:
    """The case's withdrawn needs (withdrawn with the case by the merge) are at ``status``
    again, with no offer; needs that ended otherwise keep their status."""
    await session.execute(
        update(case_needs)
        .where(case_needs.c.case_id == case_id, case_needs.c.status == "withdrawn")
        .values(
            {
                "status": status,
                "status_at": now,
                f"{status}_at": now,
                "withdrawn_at": None,
                "offer_id": None,
                "updated_at": now,
            }
        )
    )
