"""The worker process of a service: the outbox relay and its consumer groups.

Timers (offer deadlines, consent expiry) will live here too, as rows with due times swept
by the worker, never as sleeping tasks.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from functools import partial

from prometheus_client import start_http_server

from shared.db import create_engine, session_factory
from shared.messaging.backoff import sleep_unless_stopped
from shared.messaging.consumer import EventConsumer
from shared.messaging.kafka import TopicSpec, new_producer, spec_of
from shared.messaging.outbox import Outbox, OutboxRelay
from shared.observability import configure_logging
from shared.service import ServiceDefinition, Timer, TimerContext
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


def topic_specs(definition: ServiceDefinition, settings: ServiceSettings) -> list[TopicSpec]:
    return [
        spec_of(
            topic,
            partitions=settings.kafka_topic_partitions,
            replication_factor=settings.kafka_replication_factor,
        )
        for topic in definition.registry.topics
    ]


async def run_worker(
    definition: ServiceDefinition, settings: ServiceSettings, stop: asyncio.Event
) -> None:
    engine = create_engine(settings.database_url.get_secret_value())
    sessions = session_factory(engine)
    producer_factory = partial(
        new_producer,
        settings.kafka_bootstrap_servers,
        enable_idempotence=settings.kafka_enable_idempotence,
    )
    outbox = Outbox(definition.registry, source=settings.source)
    relay = OutboxRelay(
        sessions,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topics=topic_specs(definition, settings),
        producer_factory=producer_factory,
        batch_size=settings.outbox_batch_size,
        poll_interval=settings.outbox_poll_interval_ms / 1000,
        retention=timedelta(days=settings.outbox_retention_days),
    )
    consumers = [
        EventConsumer(
            spec,
            registry=definition.registry,
            sessions=sessions,
            outbox=outbox,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            producer_factory=producer_factory,
            partitions=settings.kafka_topic_partitions,
            replication_factor=settings.kafka_replication_factor,
            max_attempts=settings.consumer_max_attempts,
            retry_backoff=settings.consumer_retry_backoff_ms / 1000,
            settings=settings,
        )
        for spec in definition.consumers
        if spec.handlers  # a service that consumes nothing yet runs no consumer
    ]
    log.info(
        "worker started",
        extra={
            "consumers": [c.spec.group_id for c in consumers],
            "metrics_port": settings.worker_metrics_port,
        },
    )
    context = TimerContext(sessions, outbox, settings)
    try:
        await asyncio.gather(
            relay.run(stop),
            *(consumer.run(stop) for consumer in consumers),
            *(run_timer(timer, context, stop) for timer in definition.timers),
        )
    finally:
        await engine.dispose()
        log.info("worker stopped")


async def run_timer(timer: Timer, context: TimerContext, stop: asyncio.Event) -> None:
    """Sweep until stopped; a failing sweep is logged and tried again next time."""
    while not stop.is_set():
        try:
            handled = await timer.run(context)
        except Exception:
            log.exception("timer failed", extra={"timer": timer.name})
            handled = 0
        if handled == 0:
            await sleep_unless_stopped(stop, timer.every_seconds)


def run_worker_until_signalled(definition: ServiceDefinition, settings: ServiceSettings) -> None:
    configure_logging(f"{definition.name}-worker", settings.log_level)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.http_host)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_worker(definition, settings, stop)

    asyncio.run(main())
