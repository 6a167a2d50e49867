"""The probe consumer as a process of its own (the tests start, kill and restart it).

Environment: PROBE_DATABASE_URL, PROBE_BOOTSTRAP, PROBE_TOPIC, PROBE_GROUP, and optionally
PROBE_STALL_AT=N: the N-th event applied by this process hangs inside its transaction
(printing STALLED), so a test can kill the process mid-batch at a known point.
On SIGTERM it stops gracefully and prints its stats as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from functools import partial

from shared.db import create_engine, session_factory
from shared.messaging.consumer import Delivery, EventConsumer
from shared.messaging.kafka import new_producer
from shared.messaging.outbox import Outbox
from tests.support import probe


async def main() -> None:
    stall_at = int(os.environ.get("PROBE_STALL_AT", "0"))
    applied = 0

    async def record(delivery: Delivery) -> None:
        nonlocal applied
        applied += 1
        if applied == stall_at:
            print("STALLED", flush=True)
            await asyncio.Event().wait()  # hold the transaction open until killed
        await probe.record(delivery)

    registry = probe.probe_registry(os.environ["PROBE_TOPIC"])
    spec = probe.probe_consumer_spec(os.environ["PROBE_GROUP"])
    spec = type(spec)(spec.group_id, {**spec.handlers, "uk.upstream.probe.recorded.v1": record})
    engine = create_engine(os.environ["PROBE_DATABASE_URL"])
    bootstrap = os.environ["PROBE_BOOTSTRAP"]
    consumer = EventConsumer(
        spec,
        registry=registry,
        sessions=session_factory(engine),
        outbox=Outbox(registry, source="/upstream/probe"),
        bootstrap_servers=bootstrap,
        producer_factory=partial(new_producer, bootstrap, enable_idempotence=False),
        partitions=1,
        batch_size=50,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("STARTED", flush=True)
    await consumer.run(stop)
    await engine.dispose()
    print(json.dumps(consumer.stats), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
