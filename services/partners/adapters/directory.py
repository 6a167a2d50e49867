"""The directory in the database: organisations, their services, and the
rows the Open Referral UK reads are made from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.partners.adapters.tables import organizations, services
from shared.db import fetch_all, fetch_one, lock_by_id


def plain(row: RowMapping) -> dict[str, Any]:
    """A row as a plain dict keyed by column name."""
    return {str(key): value for key, value in row.items()}


async def add_organization(
    session: AsyncSession, organization_id: str, values: dict[str, Any]
) -> None:
    await session.execute(insert(organizations).values(id=organization_id, **values))


async def add_organization_if_new(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(organizations).values(**values).on_conflict_do_nothing())


async def lock_organization(session: AsyncSession, organization_id: str) -> bool:
    """The organisation's row locked until the transaction ends (False: there is none): two
    changes to what belongs to it wait for each other."""
    return bool(await lock_by_id(session, organizations, [organization_id]))


async def organization_exists(session: AsyncSession, organization_id: str) -> bool:
    found = await session.scalar(
        select(organizations.c.id).where(organizations.c.id == organization_id)
    )
    return found is not None


async def save_service(
    session: AsyncSession, service_id: str, values: dict[str, Any], now: datetime
) -> None:
    """Insert the service, or replace its details (its pause stays as it is)."""
    statement = insert(services).values(id=service_id, paused=False, last_modified=now, **values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[services.c.id], set_={**values, "last_modified": now}
        )
    )


async def service(
    session: AsyncSession, service_id: str, *, lock: bool = False
) -> dict[str, Any] | None:
    """The service; ``lock``: held (``FOR UPDATE``) until the transaction ends, for a change."""
    query = select(services).where(services.c.id == service_id)
    row = await fetch_one(session, query.with_for_update() if lock else query)
    return plain(row) if row is not None else None


async def opening_hours(session: AsyncSession, service_id: str) -> list[dict[str, str]] | None:
    """The service's opening hours as stored (None: not known, or no such service)."""
    hours = await session.scalar(
        select(services.c.opening_hours).where(services.c.id == service_id)
    )
    return hours or None


async def set_paused(
    session: AsyncSession, service_id: str, paused: bool, reason: str | None
) -> None:
    await session.execute(
        update(services)
        .where(services.c.id == service_id)
        .values(paused=paused, pause_reason=reason)
    )


async def set_capacity(session: AsyncSession, service_id: str, capacity: int) -> None:
    await session.execute(
        update(services).where(services.c.id == service_id).values(capacity=capacity)
    )


# -- Open Referral UK reads ------------------------------------------------------------------

# A service row carries its organisation's fields under these names.
_WITH_ORGANIZATION: Select[Any] = select(
    services,
    organizations.c.name.label("org_name"),
    organizations.c.description.label("org_description"),
    organizations.c.email.label("org_email"),
    organizations.c.website.label("org_website"),
).join(organizations, organizations.c.id == services.c.organization_id)


def organization_of(row: dict[str, Any]) -> dict[str, Any]:
    """The organisation fields of a service row from ``_WITH_ORGANIZATION``."""
    return {
        "id": row["organization_id"],
        "name": row["org_name"],
        "description": row["org_description"],
        "email": row["org_email"],
        "website": row["org_website"],
    }


async def all_services(session: AsyncSession) -> list[dict[str, Any]]:
    """Every service with its organisation, by name."""
    rows = await fetch_all(session, _WITH_ORGANIZATION.order_by(services.c.name))
    return [plain(row) for row in rows]


async def service_with_organization(
    session: AsyncSession, service_id: str
) -> dict[str, Any] | None:
    row = await fetch_one(session, _WITH_ORGANIZATION.where(services.c.id == service_id))
    return plain(row) if row is not None else None


def _matching(text: str | None, need: str | None, any_need: bool) -> Select[Any]:
    query = _WITH_ORGANIZATION
    if text:
        # The words searched for as written: a % or _ in them is not a wildcard.
        query = query.where(
            services.c.name.icontains(text, autoescape=True)
            | services.c.description.icontains(text, autoescape=True)
        )
    if any_need:
        condition: ColumnElement[bool] = services.c.needs.contains([need]) if need else false()
        query = query.where(condition)
    return query


async def services_page(
    session: AsyncSession,
    *,
    text: str | None,
    need: str | None,
    by_need: bool,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """One page of services (matching ``text`` in name or description; with ``by_need``,
    meeting ``need``, or none if it is None) and how many match in all."""
    query = _matching(text, need, by_need)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await fetch_all(
        session, query.order_by(services.c.name, services.c.id).limit(limit).offset(offset)
    )
    return [plain(row) for row in rows], total


async def service_ids_of(session: AsyncSession, organization_id: str) -> list[str]:
    """The organisation's services, by name."""
    rows = await fetch_all(
        session,
        select(services.c.id)
        .where(services.c.organization_id == organization_id)
        .order_by(services.c.name, services.c.id),
    )
    return [row["id"] for row in rows]


async def organization_name(session: AsyncSession, organization_id: str) -> str | None:
    row = await fetch_one(
        session, select(organizations.c.name).where(organizations.c.id == organization_id)
    )
    return row["name"] if row is not None else None
