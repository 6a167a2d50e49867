"""aiokafka clients configured for at-least-once delivery, and topic administration."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.events.registry import Topic

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int = 1
    retention_ms: int | None = None  # None: the broker's default


# A dead letter waits for a fix and a replay: four weeks, long enough to see it through a
# holiday, and then it goes (its records are sealed like every event: an erasure shreds
# them sooner). Not the broker's default, which may be a week or forever.
DEAD_LETTER_RETENTION_MS = 28 * 24 * 60 * 60 * 1000


def dead_letter_topic(group_id: str) -> str:
    return f"{group_id}.dlq"


def spec_of(topic: Topic | str, *, partitions: int, replication_factor: int) -> TopicSpec:
    """How a topic is created: its own partition count if it declares one, else the
    deployment's; always the deployment's replication factor; its own retention, if any. A
    topic named by a string is a consumer group's dead-letter topic."""
    if isinstance(topic, str):
        return TopicSpec(topic, partitions, replication_factor, DEAD_LETTER_RETENTION_MS)
    return TopicSpec(
        topic.name, topic.partitions or partitions, replication_factor, topic.retention_ms
    )


class BrokerProfile(StrEnum):
    """Which broker the deployment talks to, and so which of its quirks to work around."""

    KAFKA = "kafka"  # Apache Kafka (production, compose): the safe default
    TANSU = "tansu"  # the embedded dev/test broker

    @property
    def idempotent_producer(self) -> bool:
        # Tansu refuses InitProducerId; the consumers' inboxes absorb duplicates either way.
        return self is BrokerProfile.KAFKA

    @property
    def verify_topics_before_publishing(self) -> bool:
        # Tansu keeps topics in memory and, after a restart, acknowledges records sent to a
        # topic it no longer has: they would vanish. Kafka's topics outlive its restarts.
        return self is BrokerProfile.TANSU

    @property
    def fetch_max_wait_ms(self) -> int:
        # Kafka answers a fetch as a record arrives: a long wait costs no latency. Tansu holds
        # it for the whole wait (measured: a record waited ~12 ms at 100 ms, ~120 at 500).
        return 500 if self is BrokerProfile.KAFKA else 100

    @property
    def rests_when_quiet(self) -> bool:
        # Its short fetches, ten a second, are most of an idle worker's CPU (Resting).
        return self is BrokerProfile.TANSU


def new_producer(bootstrap_servers: str, profile: BrokerProfile) -> AIOKafkaProducer:
    # acks=all: a publish counts only once every in-sync replica has it. aiokafka keeps one
    # in-flight batch per partition, so records of one key keep their order.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=profile.idempotent_producer,
        linger_ms=5,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        retry_backoff_ms=200,
    )


def _configs(topic: TopicSpec) -> dict[str, str]:
    return {} if topic.retention_ms is None else {"retention.ms": str(topic.retention_ms)}


async def ensure_topics(bootstrap_servers: str, topics: Iterable[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    wanted = {topic.name: topic for topic in topics}
    if not wanted:
        return []
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=REQUEST_TIMEOUT_MS
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                t.name,
                num_partitions=t.partitions,
                replication_factor=t.replication_factor,
                topic_configs=_configs(t),
            )
            for name, t in wanted.items()
            if name not in existing
        ]
        if not missing:
            return []
        try:
            response = await admin.create_topics(missing)
        except TopicAlreadyExistsError:
            return []
        created = []
        for name, code, message in (e[:3] for e in response.topic_errors):
            if code == 0:
                created.append(name)
            elif code != TopicAlreadyExistsError.errno:
                raise RuntimeError(f"could not create topic {name}: error {code} {message}")
        if created:
            log.info("created topics", extra={"topics": created})
        return created
    finally:
        await admin.close()
