"""Pruning the inbox: a consumer's record of the events it applied is kept only as long as
a delivery of one of them can come again.

A duplicate comes from the broker (a redelivery, a group reset to its topics' oldest
records) or from the outbox (``replay``, of what it keeps for ``outbox_retention_days``).
The inbox keeps its rows ``inbox_retention_days``, which the settings hold longer than the
outbox's retention; the broker's topics must keep no longer (docs/operations.md,
Retention). Without pruning it would grow by every event every consumer group applies, for
as long as the service runs.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import oldest_first_deletion, rows_affected
from shared.messaging.tables import inbox

_SWEEP = oldest_first_deletion(inbox, "processed_at")  # from ix_inbox_processed_at


async def sweep_inbox(session: AsyncSession, before: datetime, *, limit: int) -> int:
    """Delete up to ``limit`` inbox rows of events applied before ``before``."""
    return await rows_affected(session, _SWEEP, {"before": before, "limit": limit})
