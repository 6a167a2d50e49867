"""The inbox is pruned: each service's retention sweep deletes its consumers' records of
events applied longer ago than ``inbox_retention_days``, oldest first, reading the batch due
through ``ix_inbox_processed_at`` rather than the months of records a service keeps."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import create_engine, driver, session_factory
from shared.events.envelope import utc_now
from shared.messaging.inbox import _SWEEP, sweep_inbox
from tests.conftest import MakeDatabase
from tests.support.plans import rows_read

pytestmark = pytest.mark.integration

KEPT, DUE, BATCH = 20_000, 300, 100
KEPT_FOR = timedelta(days=45)


async def _fill(session: AsyncSession, prefix: str, newest: datetime, count: int) -> None:
    """``count`` inbox records, ``prefix`` and a number, applied a minute apart before
    ``newest``."""
    await session.execute(
        text(
            "INSERT INTO inbox (consumer, event_id, event_type, processed_at) "
            "SELECT 'group', :prefix || n, 'probe', "
            "CAST(:newest AS timestamptz) - n * interval '1 minute' "
            "FROM generate_series(1, :count) AS n"
        ),
        {"prefix": prefix, "newest": newest, "count": count},
    )


@pytest.mark.parametrize("service", ["referrals", "risk", "partners"])
async def test_the_inbox_sweep_deletes_the_oldest_records_past_retention_and_reads_only_them(
    service_database: MakeDatabase, service: str
) -> None:
    engine = create_engine(await service_database(service))
    sessions = session_factory(engine)
    now = utc_now()
    cutoff = now - KEPT_FOR
    try:
        async with sessions() as session, session.begin():
            # Two weeks of records within retention, then older ones, a minute apart.
            await _fill(session, "kept-", now, KEPT)
            await _fill(session, "due-", cutoff, DUE)
        async with engine.connect() as connection:
            await connection.execute(text("ANALYZE inbox"))
            await connection.commit()

        async with sessions() as session, session.begin():
            explained = await (await driver(session)).fetchval(
                "EXPLAIN (ANALYZE, FORMAT JSON) "
                + str(_SWEEP).replace(":before", "$1").replace(":limit", "$2"),
                cutoff,
                BATCH,
            )
            await session.rollback()  # (EXPLAIN ANALYZE deleted them)
        (plan,) = json.loads(explained) if isinstance(explained, str) else explained
        # The batch, twice (found, then deleted by address), not the weeks of records kept.
        assert rows_read(plan["Plan"]) <= 3 * BATCH

        swept: list[int] = []
        while True:
            async with sessions() as session, session.begin():
                deleted = await sweep_inbox(session, KEPT_FOR, limit=BATCH)
            if not deleted:
                break
            swept.append(deleted)
        assert swept == [BATCH, BATCH, BATCH]
        async with engine.connect() as connection:
            left = (
                await connection.execute(text("SELECT event_id FROM inbox ORDER BY processed_at"))
            ).scalars()
            assert [event for event in left if not event.startswith("kept-")] == []
            assert await connection.scalar(text("SELECT count(*) FROM inbox")) == KEPT
    finally:
        await engine.dispose()


async def test_the_sweep_takes_the_oldest_first(service_database: MakeDatabase) -> None:
    """A batch smaller than what is due takes the records applied longest ago."""
    engine = create_engine(await service_database("risk"))
    now = utc_now()
    try:
        async with session_factory(engine)() as session, session.begin():
            # Written in an order that is not their age's.
            for days, event in ((50, "old"), (10, "recent"), (90, "oldest"), (60, "older")):
                await session.execute(
                    text(
                        "INSERT INTO inbox (consumer, event_id, event_type, processed_at) "
                        "VALUES ('group', :event, 'probe', :at)"
                    ),
                    {"event": event, "at": now - timedelta(days=days)},
                )
        async with session_factory(engine)() as session, session.begin():
            assert await sweep_inbox(session, KEPT_FOR, limit=2) == 2
        async with engine.connect() as connection:
            left = (await connection.execute(text("SELECT event_id FROM inbox"))).scalars()
            assert sorted(left) == ["old", "recent"]
    finally:
        await engine.dispose()
