"""The erasure guard on PostgreSQL, in every service's database as its migrations leave it:
``erased_once_locked`` takes the identifiers' advisory locks and then reads the tombstones,
in one call, and the read sees an erasure committed while the locks were awaited (a
statement of its own, with a snapshot taken after them). A consumer writes a guarded
event's inbox row and runs the guard in one call too (``GuardedHandler.apply_once``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import SessionFactory, create_engine, driver, session_factory
from shared.erasure import (
    SERVICES,
    GuardedHandler,
    erased_once_locked,
    lock_identifiers,
    record_tombstones,
)
from shared.events.envelope import CloudEvent, utc_now
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


class Referred(BaseModel):
    case_id: str
    resident_key: str | None = None


@dataclass
class Work:
    session: AsyncSession
    event: CloudEvent


class Handled:
    """The handler behind the guard: what it was given."""

    def __init__(self) -> None:
        self.payloads: list[BaseModel] = []

    async def __call__(self, payload: BaseModel, uow: Any) -> None:
        self.payloads.append(payload)


def envelope_of(payload: Referred, written: Any = None) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/upstream/test",
        type="uk.upstream.test.referred.v1",
        subject=payload.case_id,
        time=written or utc_now(),
        data=payload.model_dump(),
    )


async def _applied_once(
    session: AsyncSession, guarded: GuardedHandler, event: CloudEvent, payload: Referred
) -> bool:
    connection = await driver(session)
    return await guarded.apply_once(connection, "probe", event, payload, Work(session, event))


async def _inbox_rows(session: AsyncSession, event: CloudEvent) -> int:
    found = await session.execute(
        text("SELECT count(*) FROM inbox WHERE consumer = 'probe' AND event_id = :id"),
        {"id": event.id},
    )
    return int(found.scalar_one())


async def test_a_guarded_event_is_applied_once_and_its_inbox_row_written_with_the_guard(
    sessions: SessionFactory,
) -> None:
    handled = Handled()
    guarded = GuardedHandler(Referred, handled, lambda uow: SECRET)
    payload = Referred(case_id=str(uuid.uuid4()), resident_key="k" * 64)
    event = envelope_of(payload)
    async with sessions() as session, session.begin():
        assert await _applied_once(session, guarded, event, payload) is True
    async with sessions() as session, session.begin():  # delivered again
        assert await _applied_once(session, guarded, event, payload) is False
        assert await _inbox_rows(session, event) == 1
    assert handled.payloads == [payload]


async def test_a_guarded_event_about_an_erased_case_writes_its_inbox_row_and_nothing_else(
    sessions: SessionFactory,
) -> None:
    handled = Handled()
    guarded = GuardedHandler(Referred, handled, lambda uow: SECRET)
    erased_at = utc_now()
    payload = Referred(case_id=str(uuid.uuid4()))
    again = Referred(case_id=str(uuid.uuid4()), resident_key="e" * 64)  # referred again later
    async with sessions() as session, session.begin():
        await record_tombstones(session, SECRET, [payload.case_id, "e" * 64], at=erased_at)
    refused, later = envelope_of(payload), envelope_of(again, erased_at + timedelta(seconds=1))
    async with sessions() as session, session.begin():
        assert await _applied_once(session, guarded, refused, payload) is True
        assert await _applied_once(session, guarded, later, again) is True
        assert await _inbox_rows(session, refused) == 1
    assert handled.payloads == [again]


async def test_the_inbox_claim_waits_for_an_erasure_under_way_and_then_sees_it(
    sessions: SessionFactory,
) -> None:
    handled = Handled()
    guarded = GuardedHandler(Referred, handled, lambda uow: SECRET)
    payload = Referred(case_id=str(uuid.uuid4()))
    event = envelope_of(payload)
    async with sessions() as erasing, sessions() as applying:
        await erasing.begin()
        await lock_identifiers(erasing, SECRET, [payload.case_id])
        await record_tombstones(erasing, SECRET, [payload.case_id], at=utc_now())
        await applying.begin()
        claim = asyncio.create_task(_applied_once(applying, guarded, event, payload))
        await asyncio.sleep(0.5)
        assert not claim.done(), "the claim read the tombstones without waiting for the lock"
        await erasing.commit()
        assert await asyncio.wait_for(claim, timeout=30) is True
        await applying.commit()
    assert handled.payloads == []
