"""Event handlers keyed by payload class: a handler gets the typed payload and a unit of work.

    HANDLERS = EventHandlers[ReferralsUnitOfWork]()

    @HANDLERS.on(RiskAssessed)
    async def on_risk_assessed(event: RiskAssessed, uow: ReferralsUnitOfWork) -> None: ...

The type checker holds each handler to the payload it is registered for.

A handler may write its event's inbox row itself (``WritesItsInboxRow``), so that what it
checks before applying the event (the erasure guard: ``shared/erasure.py``) goes with the
inbox row in one round trip instead of a statement after it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Generic, TypeVar

import asyncpg
from pydantic import BaseModel

from shared.events.envelope import CloudEvent
from shared.unit_of_work import UnitOfWorkT

PayloadT = TypeVar("PayloadT", bound=BaseModel)
Handler = Callable[[PayloadT, UnitOfWorkT], Awaitable[None]]


class WritesItsInboxRow(ABC):
    """A handler the consumer lets write its event's inbox row (``apply_once``): in the
    consumer's transaction, on its connection; False if the row was there already (a
    duplicate: nothing applied). Called as a plain handler, it applies the event as ever."""

    @abstractmethod
    async def apply_once(
        self,
        connection: asyncpg.Connection,
        consumer: str,
        event: CloudEvent,
        payload: Any,
        uow: Any,
    ) -> bool: ...

    @abstractmethod
    async def __call__(self, payload: Any, uow: Any) -> None: ...


class EventHandlers(Generic[UnitOfWorkT]):
    def __init__(self) -> None:
        self._by_payload: dict[type[BaseModel], Handler[Any, UnitOfWorkT]] = {}

    def on(
        self, payload: type[PayloadT]
    ) -> Callable[[Handler[PayloadT, UnitOfWorkT]], Handler[PayloadT, UnitOfWorkT]]:
        def register(handler: Handler[PayloadT, UnitOfWorkT]) -> Handler[PayloadT, UnitOfWorkT]:
            if payload in self._by_payload:
                raise ValueError(f"{payload.__name__} has a handler already")
            self._by_payload[payload] = handler
            return handler

        return register

    def __iter__(self) -> Iterator[tuple[type[BaseModel], Handler[Any, UnitOfWorkT]]]:
        return iter(self._by_payload.items())

    def __len__(self) -> int:
        return len(self._by_payload)

    def __bool__(self) -> bool:
        return bool(self._by_payload)
