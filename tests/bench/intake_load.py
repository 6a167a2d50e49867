"""The load client of the intake benchmark (``test_intake.py``), a process of its own: a
fixed number of keep-alive HTTP/1.1 connections, each posting one new resident's referral
after another (written on the socket by hand: the client must cost far less than the
server it loads, on a machine of two cores). It posts from the moment it starts; what
completed between ``start_at`` and ``end_at`` (wall clock) is the measurement, what came
before it the warm-up.

``python -m tests.bench.intake_load`` with a JSON document of ``Load``'s fields on stdin;
it prints a JSON ``Outcome`` on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

from tests.bench.loop import referral


@dataclass(frozen=True)
class Load:
    host: str
    port: int
    path: str
    headers: dict[str, str]
    label: str  # letters only: this process's residents differ from every other's
    connections: int
    start_at: float  # time.time() at which the measurement starts (the warm-up ends)
    end_at: float
    idempotency_keys: bool = True


@dataclass
class Outcome:
    statuses: dict[str, int] = field(default_factory=dict)  # every answer, warm-up included
    measured: int = 0  # answers that completed inside the measurement
    latencies: list[float] = field(default_factory=list)  # seconds, of those measured


def request_bytes(load: Load, index: int) -> bytes:
    body = json.dumps(referral(index, load.label), separators=(",", ":")).encode()
    headers = {
        **load.headers,
        "Host": f"{load.host}:{load.port}",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
    }
    if load.idempotency_keys:
        headers["Idempotency-Key"] = f"bench-{load.label}-{index}"
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST {load.path} HTTP/1.1\r\n{head}\r\n".encode() + body


async def read_answer(reader: asyncio.StreamReader) -> int:
    """One answer's status; its body read and dropped (the server sends a length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
    )
    await reader.readexactly(length)
    return status


async def post_until_the_end(load: Load, first: int, step: int, outcome: Outcome) -> None:
    statuses: Counter[int] = Counter()
    reader, writer = await asyncio.open_connection(load.host, load.port)
    index = first
    try:
        while True:
            request = request_bytes(load, index)
            index += step
            sent_at = time.time()
            if sent_at >= load.end_at:
                return
            writer.write(request)
            status = await read_answer(reader)
            answered_at = time.time()
            statuses[status] += 1
            if sent_at >= load.start_at and answered_at <= load.end_at:
                outcome.measured += 1
                outcome.latencies.append(answered_at - sent_at)
    finally:
        writer.close()
        for status, count in statuses.items():
            outcome.statuses[str(status)] = outcome.statuses.get(str(status), 0) + count


async def run(load: Load) -> Outcome:
    outcome = Outcome()
    await asyncio.gather(
        *(
            post_until_the_end(load, number, load.connections, outcome)
            for number in range(load.connections)
        )
    )
    return outcome


if __name__ == "__main__":
    load = Load(**json.load(sys.stdin))
    json.dump(asdict(asyncio.run(run(load))), sys.stdout)
