"""Data-sharing agreements between a council and a partner organisation, and the record of
what happened to each, in the database."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.partners.adapters.tables import agreement_changes, agreements, organizations
from services.partners.domain.routing import Agreement
from shared.db import fetch_all, fetch_one
from shared.vocabulary import LawfulBasis, Need


def plain(row: RowMapping) -> dict[str, Any]:
    return {str(key): value for key, value in row.items()}


def as_terms(row: RowMapping | dict[str, Any]) -> Agreement:
    """A row as routing reads it."""
    return Agreement(
        id=row["id"],
        reference=row["reference"],
        council=row["council"],
        needs=frozenset(Need(n) for n in row["needs"]),
        data_categories=frozenset(row["data_categories"]),
        special_category=row["special_category"],
        lawful_bases=frozenset(LawfulBasis(b) for b in row["lawful_bases"]),
        starts_on=row["starts_on"],
        ends_on=row["ends_on"],
        ended_at=row["ended_at"],
    )


async def add(session: AsyncSession, agreement_id: str, values: dict[str, Any]) -> bool:
    """False if the organisation already holds an agreement with that council under that
    reference."""
    inserted = await session.execute(
        pg_insert(agreements)
        .values(id=agreement_id, **values)
        .on_conflict_do_nothing(index_elements=["organization_id", "council", "reference"])
        .returning(agreements.c.id)
    )
    return inserted.first() is not None


async def record_change(session: AsyncSession, change_id: str, **values: Any) -> None:
    await session.execute(insert(agreement_changes).values(id=change_id, **values))


async def get(
    session: AsyncSession, agreement_id: str, *, for_update: bool = False
) -> dict[str, Any] | None:
    query = select(agreements, organizations.c.name.label("organization_name")).join(
        organizations, organizations.c.id == agreements.c.organization_id
    )
    query = query.where(agreements.c.id == agreement_id)
    if for_update:
        query = query.with_for_update(of=agreements)
    row = await fetch_one(session, query)
    return plain(row) if row is not None else None


async def listing(
    session: AsyncSession,
    *,
    council: str | None,
    organization_id: str | None,
) -> list[dict[str, Any]]:
    """Agreements of one council (None: every council), of one organisation (None: every
    one), newest first."""
    query = select(agreements, organizations.c.name.label("organization_name")).join(
        organizations, organizations.c.id == agreements.c.organization_id
    )
    if council is not None:
        query = query.where(agreements.c.council == council)
    if organization_id is not None:
        query = query.where(agreements.c.organization_id == organization_id)
    query = query.order_by(
        agreements.c.starts_on.desc(), agreements.c.council, agreements.c.reference
    )
    return [plain(row) for row in await fetch_all(session, query)]


async def changes(session: AsyncSession, agreement_id: str) -> list[dict[str, Any]]:
    rows = await fetch_all(
        session,
        select(agreement_changes)
        .where(agreement_changes.c.agreement_id == agreement_id)
        .order_by(agreement_changes.c.at, agreement_changes.c.id),
    )
    return [plain(row) for row in rows]


async def end(session: AsyncSession, agreement_id: str, *, at: datetime, reason: str) -> None:
    await session.execute(
        update(agreements)
        .where(agreements.c.id == agreement_id)
        .values(ended_at=at, end_reason=reason, updated_at=at)
    )


async def of_organizations(
    session: AsyncSession, organization_ids: Collection[str]
) -> dict[str, list[Agreement]]:
    """Every agreement of these organisations (in force or not: routing says which)."""
    if not organization_ids:
        return {}
    rows = await fetch_all(
        session,
        select(agreements).where(agreements.c.organization_id.in_(sorted(organization_ids))),
    )
    found: dict[str, list[Agreement]] = {}
    for row in rows:
        found.setdefault(row["organization_id"], []).append(as_terms(row))
    return found
