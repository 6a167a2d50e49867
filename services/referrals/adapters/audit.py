"""The referrals service's audit trail of reads (the mechanism is ``shared/audit.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters import Row
from services.referrals.adapters.tables import audit_log
from shared import audit
from shared.auth import Principal


async def record(
    session: AsyncSession, principal: Principal, read: audit.Read, at: datetime
) -> None:
    await audit.record_read(session, audit_log, principal, read, at=at)


async def trail(
    session: AsyncSession,
    *,
    councils: Iterable[str] | None,
    resident_id: str | None,
    subject: str | None,
    limit: int,
) -> Sequence[Row]:
    return await audit.trail(
        session,
        audit_log,
        councils=councils,
        resident_id=resident_id,
        subject=subject,
        limit=limit,
    )
