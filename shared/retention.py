"""What every service keeps besides its own records, swept with them by its retention timer:
its audit trail (``audit_retention_days``) and its consumers' inbox
(``inbox_retention_days``). A batch of each a pass, each in its own transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from shared.erasure import sweep_audit
from shared.messaging.inbox import sweep_inbox
from shared.unit_of_work import UnitOfWork


async def sweep_audit_and_inbox(uow: UnitOfWork[Any]) -> int:
    """Up to a batch of audit rows and a batch of inbox rows past their retention; how many
    went."""
    settings = uow.settings
    batch = settings.retention_batch_size
    async with uow.transaction() as session:
        audit = await sweep_audit(
            session, uow.now() - timedelta(days=settings.audit_retention_days), limit=batch
        )
    async with uow.transaction() as session:
        applied = await sweep_inbox(
            session, timedelta(days=settings.inbox_retention_days), limit=batch
        )
    return audit + applied
