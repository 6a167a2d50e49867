"""The partners service's audit trail of reads (the mechanism is ``shared/audit.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.partners.adapters.tables import audit_log
from shared import audit
from shared.auth import Principal


async def record(
    session: AsyncSession, principal: Principal, reads: Iterable[audit.Read], at: datetime
) -> None:
    await audit.record_reads(session, audit_log, principal, reads, at=at)


async def trail(
    session: AsyncSession, *, councils: Iterable[str] | None, query: audit.TrailQuery
) -> Sequence[RowMapping]:
    return await audit.trail(session, audit_log, councils=councils, query=query)
