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

from tests.support import probe


async def main() -> None:
    stall_at = int(os.environ.get("PROBE_STALL_AT", "0"))
    applied = 0

    async def record(payload: probe.ProbeRecorded, uow: probe.ProbeWork) -> None:
        nonlocal applied
        applied += 1
        if applied == stall_at:
            print("STALLED", flush=True)
            await asyncio.Event().wait()  # hold the transaction open until killed
        await probe.record(payload, uow)

    consumer = probe.probe_consumer(
        probe.probe_registry(os.environ["PROBE_TOPIC"]),
        os.environ["PROBE_GROUP"],
        os.environ["PROBE_DATABASE_URL"],
        os.environ["PROBE_BOOTSTRAP"],
        record_handler=record,
        partitions=1,
        batch_size=50,
        run_size=int(os.environ.get("PROBE_RUN_SIZE", "10")),  # runs of one transaction
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("STARTED", flush=True)
    await consumer.run(stop)
    print(json.dumps(consumer.stats), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
