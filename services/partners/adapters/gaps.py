"""Gaps in service in the database: the needs that are in one (unroutable or waiting), and
the gap episodes (at most one open per council, need and reason)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.partners.adapters.tables import gaps, requests
from services.partners.domain.gaps import GapKey, NeedInGap
from services.partners.domain.placement import RouteRequestStatus
from shared.db import fetch_all
from shared.events.payloads import GapReason
from shared.vocabulary import Need

_IN_A_GAP = [RouteRequestStatus.UNROUTABLE.value, RouteRequestStatus.WAITING.value]


async def needs_in_gaps(
    session: AsyncSession, *, council: str | None = None, need: str | None = None
) -> list[NeedInGap]:
    """The needs unroutable or waiting (of one council and need, or all), with what a gap
    reports of them: since when, why, and the district, language and age of the packet."""
    packet = requests.c.packet
    query = select(
        requests.c.council,
        requests.c.need,
        requests.c.status,
        # waiting: since it began to wait; unroutable: since it turned so (not its last
        # retry, which moves updated_at); created_at only for a row that has neither
        func.coalesce(
            requests.c.waiting_since, requests.c.unroutable_since, requests.c.created_at
        ).label("since"),
        requests.c.unroutable_reason,
        packet["postcode_district"].astext.label("district"),
        packet["preferred_language"].astext.label("language"),
        packet["age_years"].astext.label("age"),
    ).where(requests.c.status.in_(_IN_A_GAP))
    if council is not None:
        query = query.where(requests.c.council == council)
    if need is not None:
        query = query.where(requests.c.need == need)
    return [
        NeedInGap(
            council=row["council"],
            need=Need(row["need"]),
            status=RouteRequestStatus(row["status"]),
            since=row["since"],
            why=row["unroutable_reason"],
            district=row["district"],
            language=row["language"],
            age=int(row["age"]) if row["age"] is not None else None,
        )
        for row in await fetch_all(session, query)
    ]


async def open_gaps(session: AsyncSession) -> dict[GapKey, str]:
    """The open gap episodes (key -> id)."""
    rows = await fetch_all(
        session,
        select(gaps.c.id, gaps.c.council, gaps.c.need, gaps.c.reason).where(
            gaps.c.closed_at.is_(None)
        ),
    )
    return {
        GapKey(row["council"], Need(row["need"]), GapReason(row["reason"])): row["id"]
        for row in rows
    }


async def open_gap(
    session: AsyncSession, gap_id: str, key: GapKey, *, residents: int, at: datetime
) -> bool:
    """A new episode of the gap, unless one is open already (another worker, an earlier
    run): True if this one opened it."""
    opened = await session.execute(
        pg_insert(gaps)
        .values(
            id=gap_id,
            council=key.council,
            need=key.need.value,
            reason=key.reason.value,
            residents=residents,
            opened_at=at,
        )
        .on_conflict_do_nothing(
            index_elements=[gaps.c.council, gaps.c.need, gaps.c.reason],
            index_where=gaps.c.closed_at.is_(None),
        )
        .returning(gaps.c.id)
    )
    return opened.first() is not None


async def close_gaps(session: AsyncSession, gap_ids: Sequence[str], at: datetime) -> None:
    if gap_ids:
        await session.execute(
            update(gaps)
            .where(gaps.c.id.in_(list(gap_ids)), gaps.c.closed_at.is_(None))
            .values(closed_at=at)
        )
