"""The partners service's audit trail of reads (the mechanism is ``shared/audit.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.partners.adapters.tables import audit_log
from shared import audit
from shared.auth import Principal


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
