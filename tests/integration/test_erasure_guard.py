"""The erasure guard on PostgreSQL, in every service's database as its migrations leave it:
``erased_once_locked`` takes the identifiers' advisory locks and then reads the tombstones,
in one call, and the read sees an erasure committed while the locks were awaited (a
statement of its own, with a snapshot taken after them)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from shared.db import SessionFactory, create_engine, session_factory
from shared.erasure import SERVICES, erased_once_locked, lock_identifiers, record_tombstones
from shared.events.envelope import utc_now
from tests.conftest import MakeDatabase

pytestmark = pytest.mark.integration

SECRET = "a deployment's secret"


@pytest.fixture(params=SERVICES)
async def sessions(
    request: pytest.FixtureRequest, service_database: MakeDatabase
) -> AsyncIterator[SessionFactory]:
    """Sessions on a database of each service, migrated to head."""
    engine = create_engine(await service_database(request.param))
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def test_the_guard_waits_for_an_erasure_under_way_and_then_sees_it(
    sessions: SessionFactory,
) -> None:
    case_id = str(uuid.uuid4())
    async with sessions() as erasing, sessions() as guarding:
        await erasing.begin()
        await lock_identifiers(erasing, SECRET, [case_id])
        await record_tombstones(erasing, SECRET, [case_id], at=utc_now())
        await guarding.begin()
        guard = asyncio.create_task(erased_once_locked(guarding, SECRET, [case_id]))
        await asyncio.sleep(0.5)
        assert not guard.done(), "the guard read the tombstones without waiting for the lock"
        await erasing.commit()
        assert await asyncio.wait_for(guard, timeout=30) is True
        await guarding.rollback()


async def test_an_erased_key_refuses_what_was_written_before_and_a_case_id_always(
    sessions: SessionFactory,
) -> None:
    erased_at = utc_now()
    case_id, key, other = str(uuid.uuid4()), "k" * 64, str(uuid.uuid4())
    async with sessions() as session, session.begin():
        await record_tombstones(session, SECRET, [case_id, key], at=erased_at)
    before, after = erased_at - timedelta(seconds=1), erased_at + timedelta(seconds=1)
    async with sessions() as session, session.begin():
        assert await erased_once_locked(session, SECRET, [key], keys=[key], written_at=before)
        assert not await erased_once_locked(session, SECRET, [key], keys=[key], written_at=after)
        assert await erased_once_locked(
            session, SECRET, [case_id, key], keys=[key], written_at=after
        )
        assert not await erased_once_locked(session, SECRET, [other])
        assert not await erased_once_locked(session, SECRET, [])
