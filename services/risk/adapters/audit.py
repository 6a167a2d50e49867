"""The risk service's audit trail of reads (the mechanism is ``shared/audit.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters.tables import audit_log, cases, profile_keys, profiles
from shared import audit
from shared.auth import Principal
from shared.db import fetch_one


async def record(
    session: AsyncSession,
    principal: Principal,
    operation: str,
    categories: Iterable[audit.Category | str],
    seen: Iterable[audit.Seen],
    *,
    purpose: str,
    at: datetime,
) -> None:
    await audit.record_read(
        session, audit_log, principal, operation, categories, seen, purpose=purpose, at=at
    )


async def read_trail(
    session: AsyncSession,
    principal: Principal,
    query: audit.TrailQuery,
    operation: str,
    *,
    at: datetime,
) -> list[audit.AuditEntry]:
    return await audit.read_trail(session, audit_log, principal, query, operation, at=at)


# -- whose data a read showed: the risk service's tables know the council and the profile --


async def owner_of_case(session: AsyncSession, case_id: str) -> RowMapping | None:
    """The case's council and profile (None if the case is not held)."""
    return await fetch_one(
        session, select(cases.c.council, cases.c.profile_id).where(cases.c.case_id == case_id)
    )


async def owner_of_key(session: AsyncSession, resident_key: str) -> RowMapping | None:
    """The council and profile a resident key belongs to (None if unknown)."""
    return await fetch_one(
        session,
        select(profiles.c.council, profiles.c.id.label("profile_id"))
        .join(profile_keys, profile_keys.c.profile_id == profiles.c.id)
        .where(profile_keys.c.key == resident_key),
    )
