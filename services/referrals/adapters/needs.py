"""Queries over the needs of a case (one row each) and the overdue marks of its offers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, cast, func, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.referrals.adapters import Row
from services.referrals.adapters.tables import case_needs, cases, offers
from services.referrals.domain.offers import FOLLOWED_UP
from shared.db import fetch_all, fetch_one, update_where

# Built once (each referral runs them): each value is bound.
_NEEDS_OF = (
    select(case_needs)
    .where(case_needs.c.case_id == bindparam("case_id"))
    .order_by(case_needs.c.created_at)
)
_ADD_NEED = pg_insert(case_needs).on_conflict_do_nothing()


async def needs_of(session: AsyncSession, case_id: str) -> Sequence[Row]:
    """Every need row of the case (the case row is locked by the caller when it writes)."""
    return await fetch_all(session, _NEEDS_OF, {"case_id": case_id})


async def add_needs(
    session: AsyncSession, case_id: str, statuses: dict[str, str], *, now: datetime
) -> None:
    """New need rows, each in its first status since ``now`` (a need already there stays)."""
    if not statuses:
        return
    rows = [
        {
            "case_id": case_id,
            "need": need,
            "status": status,
            "status_at": now,
            f"{status}_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for need, status in statuses.items()
    ]
    for row in rows:  # one row per statement: each names only its own milestone
        await session.execute(_ADD_NEED, row)


async def update_need(session: AsyncSession, case_id: str, need: str, **values: Any) -> None:
    await update_where(session, case_needs, {"case_id": case_id, "need": need}, values)


async def fill_milestone(
    session: AsyncSession, case_id: str, need: str, status: str, at: datetime
) -> None:
    """A milestone a late event tells of, if the need does not know it yet."""
    column = case_needs.c[f"{status}_at"]
    await session.execute(
        update(case_needs)
        .where(case_needs.c.case_id == case_id, case_needs.c.need == need, column.is_(None))
        .values({column: at})
    )


# -- offers: what the mirror holds, its overdue marks ----------------------------------


async def offer(session: AsyncSession, offer_id: str) -> Row | None:
    return await fetch_one(session, select(offers).where(offers.c.id == offer_id))


async def fill_offer(session: AsyncSession, offer_id: str, values: dict[str, Any]) -> None:
    """What a late report carries, only where the mirror has nothing yet."""
    if values:
        await session.execute(
            update(offers)
            .where(offers.c.id == offer_id)
            .values(
                {
                    k: func.coalesce(offers.c[k], literal(v, offers.c[k].type))
                    for k, v in values.items()
                }
            )
        )


async def mark_overdue(
    session: AsyncSession, offer_id: str, *, at: datetime, follow_up_by: datetime
) -> None:
    await session.execute(
        update(offers)
        .where(offers.c.id == offer_id)
        .values(overdue_at=func.coalesce(offers.c.overdue_at, at), follow_up_by=follow_up_by)
    )


def overdue_offer() -> ColumnElement[bool]:
    """An offer a partner holds and is late to report on."""
    return and_(
        offers.c.overdue_at.is_not(None), offers.c.status.in_([s.value for s in FOLLOWED_UP])
    )


async def overdue_offers_of(session: AsyncSession, case_id: str) -> Sequence[Row]:
    return await fetch_all(
        session,
        select(offers)
        .where(offers.c.case_id == case_id, overdue_offer())
        .order_by(offers.c.overdue_at),
    )


def overdue_count() -> ColumnElement[int]:
    """How many overdue offers a case has (a correlated subquery on ``cases``)."""
    return (
        select(func.count())
        .select_from(offers)
        .where(offers.c.case_id == cases.c.id, overdue_offer())
        .scalar_subquery()
    )


def need_statuses() -> ColumnElement[Any]:
    """``{need: status}`` of a case's current needs (a correlated subquery on ``cases``)."""
    return (
        select(
            func.coalesce(
                func.jsonb_object_agg(case_needs.c.need, case_needs.c.status),
                cast(literal("{}"), JSONB),
            )
        )
        .where(case_needs.c.case_id == cases.c.id, cases.c.needs.has_key(case_needs.c.need))
        .scalar_subquery()
    )


def has_need_in(statuses: Sequence[str]) -> ColumnElement[bool]:
    """The case has a current need in one of ``statuses``."""
    return (
        select(case_needs.c.case_id)
        .where(
            case_needs.c.case_id == cases.c.id,
            case_needs.c.status.in_(statuses),
            cases.c.needs.has_key(case_needs.c.need),
        )
        .exists()
    )


def has_overdue_offer() -> ColumnElement[bool]:
    return select(offers.c.id).where(offers.c.case_id == cases.c.id, overdue_offer()).exists()
