"""The process dispatcher: ``python -m services.<name> api|worker|migrate|topics``.

``topics`` creates the service's topics and its dead-letter topics if missing (a one-shot
step before the workers start, as ``migrate`` is for the database).

It sits above ``http``, ``worker`` and ``migrations`` (which know the service definition),
so nothing imports back into it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

import uvicorn

from shared.http import create_app
from shared.messaging.kafka import ensure_topics
from shared.migrations import upgrade
from shared.observability import configure_logging
from shared.service import ServiceDefinition
from shared.worker import run_worker_until_signalled, topic_specs

ROLES = ("api", "worker", "migrate", "topics")
USAGE = f"usage: python -m services.<name> {'|'.join(ROLES)}"


def main(definition: ServiceDefinition, argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in ROLES:
        print(USAGE, file=sys.stderr)
        return 2
    settings = definition.settings()
    if args[0] == "api":
        configure_logging(definition.name, settings.log_level)
        uvicorn.run(
            create_app(definition, settings),
            host=settings.http_host,
            port=settings.port,
            log_config=None,
            access_log=False,
        )
    elif args[0] == "worker":
        run_worker_until_signalled(definition, settings)
    elif args[0] == "migrate":
        upgrade(definition, settings.database_url.get_secret_value())
    else:
        specs = topic_specs(definition, settings, dead_letters=True)
        created = asyncio.run(ensure_topics(settings.kafka_bootstrap_servers, specs))
        print(f"{len(specs)} topics; created: {', '.join(created) or 'none (all existed)'}")
    return 0
