"""The worker process of a service: the outbox relay, its consumer groups and its timers.

Timers (offer deadlines, consent expiry) are rows with due times swept by a use case, never
sleeping tasks.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from prometheus_client import start_http_server
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import clock_from
from shared.db import SessionFactory, create_engine, session_factory
from shared.events.envelope import CloudEvent
from shared.events.registry import Topic
from shared.messaging.backoff import sleep_unless_stopped
from shared.messaging.consumer import EventConsumer, Resting
from shared.messaging.kafka import TopicSpec, new_producer, spec_of
from shared.messaging.outbox import Outbox, OutboxRelay
from shared.messaging.sealing import Keystore
from shared.observability import configure_logging
from shared.service import ServiceDefinition, Timer
from shared.settings import ServiceSettings
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


def topic_specs(
    definition: ServiceDefinition, settings: ServiceSettings, *, dead_letters: bool = False
) -> list[TopicSpec]:
    """The topics of the service's registry, and with ``dead_letters`` its groups' too."""
    topics: list[Topic | str] = list(definition.registry.topics)
    if dead_letters:
        topics += [consumer.dead_letter_topic for consumer in definition.consumers]
    return [
        spec_of(
            topic,
            partitions=settings.kafka_topic_partitions,
            replication_factor=settings.kafka_replication_factor,
        )
        for topic in topics
    ]


async def run_worker(
    definition: ServiceDefinition, settings: ServiceSettings, stop: asyncio.Event
) -> None:
    engine = create_engine(settings.database_url.get_secret_value(), pre_ping=False)
    sessions = session_factory(engine)
    producer_factory = partial(
        new_producer, settings.kafka_bootstrap_servers, settings.kafka_broker_profile
    )
    keystore = Keystore(settings.keystore_database_url())
    outbox = Outbox(
        definition.registry, source=settings.source, clock=clock_from(settings.clock_file)
    )
    relay = OutboxRelay(
        sessions,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topics=topic_specs(definition, settings),
        producer_factory=producer_factory,
        verify_topics=settings.kafka_broker_profile.verify_topics_before_publishing,
        batch_size=settings.outbox_batch_size,
        poll_interval=settings.outbox_poll_interval_ms / 1000,
        wake_on_commit_from=settings.database_url.get_secret_value(),
        retention=timedelta(days=settings.outbox_retention_days),
        keystore=keystore,
    )
    profile = settings.kafka_broker_profile
    resting = (
        Resting(settings.consumer_rest_after_s, settings.consumer_rest_ms / 1000)
        if profile.rests_when_quiet and settings.consumer_rest_after_s > 0
        else None
    )
    consumers = [
        EventConsumer(
            spec,
            registry=definition.registry,
            sessions=sessions,
            unit_of_work=partial(unit_of_work_for_event, definition, outbox, settings),
            bootstrap_servers=settings.kafka_bootstrap_servers,
            producer_factory=producer_factory,
            partitions=settings.kafka_topic_partitions,
            replication_factor=settings.kafka_replication_factor,
            max_attempts=settings.consumer_max_attempts,
            retry_backoff=settings.consumer_retry_backoff_ms / 1000,
            keystore=keystore,
            fetch_max_wait_ms=settings.kafka_broker_profile.fetch_max_wait_ms,
            resting=resting,
            remembers_for=settings.inbox_remembers_for,
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

    def unit_of_work(session: AsyncSession) -> UnitOfWork[Any]:
        return definition.new_unit_of_work(session, outbox, settings)

    try:
        await asyncio.gather(
            relay.run(stop),
            *(consumer.run(stop) for consumer in consumers),
            *(run_timer(timer, sessions, unit_of_work, stop) for timer in definition.timers),
        )
    finally:
        await engine.dispose()
        await keystore.close()
        log.info("worker stopped")


def unit_of_work_for_event(
    definition: ServiceDefinition,
    outbox: Outbox,
    settings: ServiceSettings,
    session: AsyncSession,
    event: CloudEvent,
) -> UnitOfWork[Any]:
    return definition.new_unit_of_work(session, outbox, settings, event)


async def run_timer(
    timer: Timer,
    sessions: SessionFactory,
    unit_of_work: Callable[[AsyncSession], UnitOfWork[Any]],
    stop: asyncio.Event,
) -> None:
    """Sweep until stopped, each sweep with a fresh unit of work; a failing sweep is logged
    and tried again next time."""
    while not stop.is_set():
        try:
            async with sessions() as session:
                handled = await timer.run(unit_of_work(session))
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
