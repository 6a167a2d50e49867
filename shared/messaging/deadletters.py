"""Replaying a consumer group's dead letters back onto the topics they came from."""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.messaging.kafka import REQUEST_TIMEOUT_MS, dead_letter_topic

DLQ_HEADER_PREFIX = "dlq-"


async def pending_dead_letters(bootstrap_servers: str, group_id: str) -> int:
    async with _replay_consumer(bootstrap_servers, group_id) as (consumer, partitions, ends):
        return sum([ends[tp] - await consumer.position(tp) for tp in partitions])


async def replay_dead_letters(
    bootstrap_servers: str,
    group_id: str,
    *,
    limit: int | None = None,
    on_replayed: Callable[[int], None] = lambda _: None,
) -> int:
    """Send each dead letter of ``group_id`` back to its original topic (with its original
    key and headers, the error headers removed), once: progress is committed as it goes."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, acks="all", request_timeout_ms=REQUEST_TIMEOUT_MS
    )
    await producer.start()
    replayed = 0
    try:
        async with _replay_consumer(bootstrap_servers, group_id) as (consumer, partitions, ends):
            for tp in partitions:
                while (limit is None or replayed < limit) and await consumer.position(tp) < ends[
                    tp
                ]:
                    batch = await consumer.getmany(tp, timeout_ms=1000, max_records=100)
                    for record in batch.get(tp, []):
                        if record.offset >= ends[tp] or (limit is not None and replayed >= limit):
                            break
                        headers = dict(record.headers or ())
                        original = headers.get("dlq-original-topic", b"").decode()
                        if not original:
                            raise ValueError(
                                f"dead letter at offset {record.offset} names no topic"
                            )
                        await producer.send_and_wait(
                            original,
                            value=record.value,
                            key=record.key,
                            headers=[
                                (k, v)
                                for k, v in (record.headers or ())
                                if not k.startswith(DLQ_HEADER_PREFIX)
                            ],
                        )
                        await consumer.commit({tp: record.offset + 1})
                        replayed += 1
                        on_replayed(1)
    finally:
        await producer.stop()
    return replayed


class _replay_consumer:
    def __init__(self, bootstrap_servers: str, group_id: str) -> None:
        self._topic = dead_letter_topic(group_id)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=f"{group_id}.dlq-replay",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    async def __aenter__(
        self,
    ) -> tuple[AIOKafkaConsumer, list[TopicPartition], dict[TopicPartition, int]]:
        await self._consumer.start()
        await self._consumer.topics()  # fetches the cluster's metadata
        numbers = self._consumer.partitions_for_topic(self._topic) or set()
        partitions = [TopicPartition(self._topic, n) for n in sorted(numbers)]
        self._consumer.assign(partitions)
        ends = await self._consumer.end_offsets(partitions) if partitions else {}
        return self._consumer, partitions, ends

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()
