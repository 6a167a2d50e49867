"""Pruning the inbox: a consumer's record of the events it applied is kept
``inbox_retention_days``, then the retention sweep deletes it.

No event is applied twice for it: a consumer refuses (dead-letters, saying why) an event
older than the inbox remembers, less a day for clocks' drift (``EventConsumer``,
``remembers_for``). An event younger than that was applied, if at all, after it was
written, so its row is younger still and has not gone; whatever brings it again (a
redelivery, a group reset to its topics' oldest records, ``replay`` of the outbox, a dead
letter replayed) finds it. The settings keep the inbox longer than the outbox keeps events
to replay, so that a replay is never refused; the broker's topics should keep theirs less
long too (docs/operations.md, Replay events). Without pruning the inbox would grow by every
event every consumer group applies, for as long as the service runs.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import oldest_first_deletion, rows_affected
from shared.messaging.tables import inbox

_SWEEP = oldest_first_deletion(inbox, "processed_at")  # from ix_inbox_processed_at


async def sweep_inbox(session: AsyncSession, kept_for: timedelta, *, limit: int) -> int:
    """Delete up to ``limit`` inbox rows of events applied longer than ``kept_for`` ago, by
    the database's clock, which wrote their ``processed_at`` (a settable development clock
    moved on must not empty the inbox)."""
    now = await session.scalar(select(func.now()))
    assert now is not None
    before = now - kept_for
    return await rows_affected(session, _SWEEP, {"before": before, "limit": limit})
