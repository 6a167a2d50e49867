"""What a service is made of, declared once in its ``bootstrap.py`` (the composition root).

Every service runs the same three ways: ``python -m services.<name> api|worker|migrate``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter
from sqlalchemy import MetaData

from shared.db import SessionFactory
from shared.events.catalogue import CATALOGUE
from shared.events.registry import EventRegistry
from shared.messaging.consumer import ConsumerSpec
from shared.messaging.outbox import Outbox
from shared.messaging.tables import messaging_metadata
from shared.settings import ServiceSettings


@dataclass(frozen=True)
class Timer:
    """Work the worker does every ``every_seconds``: sweeping rows whose time has come
    (offer deadlines, webhook retries). ``run`` returns how many it handled."""

    name: str
    run: Callable[[TimerContext], Awaitable[int]]
    every_seconds: float = 1.0


@dataclass(frozen=True)
class TimerContext:
    sessions: SessionFactory
    outbox: Outbox
    settings: ServiceSettings


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    description: str
    package: str
    settings_class: type[ServiceSettings]
    metadata: MetaData
    routers: Sequence[APIRouter] = ()
    consumers: Sequence[ConsumerSpec] = ()
    timers: Sequence[Timer] = ()
    registry: EventRegistry = field(default=CATALOGUE)

    @property
    def target_metadata(self) -> list[MetaData]:
        """Everything this service's migrations must create: its tables and the messaging ones."""
        return [messaging_metadata, self.metadata]

    @property
    def migrations_dir(self) -> Path:
        module = importlib.import_module(self.package)
        return Path(module.__file__).parent / "migrations"  # type: ignore[arg-type]

    def settings(self) -> ServiceSettings:
        return self.settings_class()  # type: ignore[call-arg]


USAGE = "usage: python -m services.<name> api|worker|migrate"


def main(definition: ServiceDefinition, argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in ("api", "worker", "migrate"):
        print(USAGE, file=sys.stderr)
        return 2
    settings = definition.settings()
    if args[0] == "api":
        import uvicorn

        from shared.http import create_app
        from shared.observability import configure_logging

        configure_logging(definition.name, settings.log_level)
        uvicorn.run(
            create_app(definition, settings),
            host=settings.http_host,
            port=settings.port,
            log_config=None,
            access_log=False,
        )
    elif args[0] == "worker":
        from shared.worker import run_worker_until_signalled

        run_worker_until_signalled(definition, settings)
    else:
        from shared.migrations import upgrade

        upgrade(definition, settings.database_url.get_secret_value())
    return 0
