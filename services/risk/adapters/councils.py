"""Each council's organisational details for its transparency record, as operators and the
council's information-governance team set them (``council_configuration.CouncilDetails``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters.tables import councils
from shared.db import fetch_one


@dataclass(frozen=True)
class StoredCouncil:
    council: str
    details: dict[str, Any]
    updated_by: str
    created_at: datetime
    updated_at: datetime


async def get(session: AsyncSession, council: str) -> StoredCouncil | None:
    row = await fetch_one(session, select(councils).where(councils.c.council == council))
    return None if row is None else StoredCouncil(**dict(row))


async def put(
    session: AsyncSession, council: str, details: dict[str, Any], *, by: str, at: datetime
) -> None:
    """Set a council's details, whole (the first time, its record is completed then)."""
    values = {"details": details, "updated_by": by, "updated_at": at}
    await session.execute(
        insert(councils)
        .values(council=council, created_at=at, **values)
        .on_conflict_do_update(index_elements=[councils.c.council], set_=values)
    )


async def put_unless_held(
    session: AsyncSession, council: str, details: dict[str, Any], *, by: str, at: datetime
) -> bool:
    """Set a council's details unless it has some already (a development stack's demo)."""
    result = await session.execute(
        insert(councils)
        .values(council=council, details=details, updated_by=by, created_at=at, updated_at=at)
        .on_conflict_do_nothing()
        .returning(councils.c.council)
    )
    return result.first() is not None
