"""The unit of work every use case takes: its transaction, its outbox, its service's settings,
a clock and id generation, and (inside an event handler) the event being applied.

A use case owns its transaction: ``async with uow.transaction():``. Inside an event handler
the consumer has already opened the transaction that holds the inbox row, so the use case
joins it and the consumer commits both together.
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


UnitOfWorkT = TypeVar("UnitOfWorkT", bound=UnitOfWork)
