"""What a service is made of, declared once in its ``bootstrap.py`` (the composition root).

Every service runs the same ways: ``python -m services.<name> api|worker|migrate`` (see
``shared.process``).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import clock_from
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import CloudEvent
from shared.events.registry import EventRegistry
from shared.messaging.consumer import ConsumerSpec
from shared.messaging.outbox import Outbox
from shared.messaging.tables import messaging_metadata
from shared.settings import ServiceSettings
from shared.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Timer:
    """Work the worker does every ``every_seconds``: sweeping rows whose time has come
    (offer deadlines, webhook retries) through a use case. ``run`` gets a fresh unit of work
    and returns how many rows it handled."""

    name: str
    run: Callable[[Any], Awaitable[int]]
    every_seconds: float = 1.0


Seed = Callable[[AsyncSession], Awaitable[None]]
"""Reference data a service installs right after its migrations (such as the default
ruleset), in the session's transaction; running it again changes nothing."""


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    description: str
    package: str
    settings_class: type[ServiceSettings]
    metadata: MetaData
    unit_of_work: type[UnitOfWork[Any]] = UnitOfWork
    routers: Sequence[APIRouter] = ()
    consumers: Sequence[ConsumerSpec] = ()
    timers: Sequence[Timer] = ()
    seeds: Sequence[Seed] = ()
    registry: EventRegistry = field(default=CATALOGUE)

    @property
    def target_metadata(self) -> list[MetaData]:
        """Everything this service's migrations must create: its tables and the messaging ones."""
        return [messaging_metadata, self.metadata]

    @property
    def migrations_dir(self) -> Path:
        module = importlib.import_module(self.package)
        return Path(str(module.__file__)).parent / "migrations"

    def settings(self) -> ServiceSettings:
        # The fields without defaults (the database URL) come from the environment.
        return self.settings_class.model_validate({})

    def new_unit_of_work(
        self,
        session: AsyncSession,
        outbox: Outbox,
        settings: ServiceSettings,
        event: CloudEvent | None = None,
    ) -> UnitOfWork[Any]:
        return self.unit_of_work(
            session=session,
            outbox=outbox,
            settings=settings,
            event=event,
            clock=clock_from(settings.clock_file),
        )
