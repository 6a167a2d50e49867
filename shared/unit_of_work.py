"""The unit of work every use case takes: its transaction, its outbox, its service's settings,
a clock and id generation, and (inside an event handler) the event being applied.

A use case owns its transaction: ``async with uow.transaction():``. Inside an event handler
the consumer has already opened the transaction that holds the inbox row, so the use case
joins it and the consumer commits both together. A use case that shows what it reads
(a case, an inbox, a report) reads it in ``async with uow.snapshot():``, so that what it
shows is one moment's state, never half of a change committed between two of its reads.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from shared.events.envelope import CloudEvent, utc_now
from shared.messaging.outbox import Outbox
from shared.settings import ServiceSettings

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass
class UnitOfWork(Generic[SettingsT]):
    session: AsyncSession
    outbox: Outbox
    settings: SettingsT
    event: CloudEvent | None = None  # the event being applied, inside a handler
    clock: Callable[[], datetime] = field(default=utc_now)
    new_id: Callable[[], str] = field(default=new_uuid)

    def now(self) -> datetime:
        return self.clock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """Commit what the block did, or roll it all back; inside a handler, join the
        consumer's transaction (it commits the inbox row and the change together)."""
        if self.event is not None:
            yield self.session
            return
        try:
            yield self.session
        except BaseException:
            await self.session.rollback()
            raise
        await self.session.commit()

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncSession]:
        """As ``transaction``, but every statement of the block sees the database as it was
        at the first (PostgreSQL's REPEATABLE READ): under READ COMMITTED each statement
        sees what committed before it, so a case read, then its needs, could show a need
        moved on by a change that had not yet moved the case. For reads (what they write,
        an audit of the read, only inserts: a snapshot's update of a row changed since
        would fail). Inside a handler, the consumer's transaction as it is. Never inside
        another use case's ``transaction`` block: the read before it is committed first."""
        if self.event is None:
            if self.session.in_transaction():
                # A read made before, outside any use case's transaction (a web session
                # looked up): ended as ``transaction`` would end it, with its commit.
                await self.session.commit()
            await self.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        async with self.transaction() as session:
            yield session


UnitOfWorkT = TypeVar("UnitOfWorkT", bound=UnitOfWork)
