"""Intake beside a bare endpoint (issue 13, goal 2; ``make bench``): how many new residents'
referrals a second one referrals API process takes, against a bare FastAPI endpoint that
stores each body with one asyncpg ``INSERT``, on the same PostgreSQL, loaded by the same
client, in the same run.

The referrals API runs as in production: ``python -m services.referrals api`` (uvicorn, one
process) on a database migrated to head; no worker runs, so nothing else of Upstream's
competes for the two cores. The bare app (``intake_bare.py``) is served by uvicorn in the
same way. The client (``intake_load.py``) is a few processes, each holding keep-alive
connections that post one new resident after another (each with an ``Idempotency-Key``,
as a referrer's system sends), for a warm-up and then the measured seconds: the referrals
API first, then the bare endpoint, then both again. Each pair is shown; the goal's row
sets the best referrals/s of the run against the best bare/s. Also shown: latency, and the
CPU each request cost the server and PostgreSQL, the figure least moved by other work on
a shared machine.

Checked, not timed: no answer is a 5xx, and every accepted referral (and every bare POST)
is a row in the database afterwards.

``UPSTREAM_BENCH_INTAKE_SECONDS`` (default 20), ``UPSTREAM_BENCH_INTAKE_CONNECTIONS``
(default 16), ``UPSTREAM_BENCH_INTAKE_CLIENTS`` (processes; default 2) and
``UPSTREAM_BENCH_INTAKE_PAIRS`` (default 2) set the load; ``UPSTREAM_BENCH_INTAKE_PROFILE``
names a file for a py-spy profile (raw) of the API under the first referrals load.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg
import pytest

from devtools.embedded import free_port
from shared.auth import OrganisationKind, Role
from shared.db import plain_postgres_url
from tests.bench.goals import Measured, show
from tests.bench.intake_bare import CREATE_TABLE, TABLE
from tests.bench.intake_load import Load, Outcome
from tests.bench.loop import NEWHAM, header, percentile
from tests.bench.test_signal_import import (
    children_of,
    cpu_seconds,
    cpu_since,
    parent_of,
    wait_until_healthy,
)
from tests.conftest import MakeDatabase

SECONDS = float(os.environ.get("UPSTREAM_BENCH_INTAKE_SECONDS", "20"))
CONNECTIONS = int(os.environ.get("UPSTREAM_BENCH_INTAKE_CONNECTIONS", "16"))
CLIENTS = int(os.environ.get("UPSTREAM_BENCH_INTAKE_CLIENTS", "2"))
PAIRS = int(os.environ.get("UPSTREAM_BENCH_INTAKE_PAIRS", "2"))
WARM_UP_SECONDS = 5.0
GOAL_SHARE = 0.5
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Run:
    """One load on one endpoint: what the client saw, and the CPU the server and
    PostgreSQL used while it was measured."""

    statuses: Counter[int]
    measured: int
    latencies: list[float]
    server_cpu: float  # seconds
    database_cpu: float

    @property
    def per_second(self) -> float:
        return self.measured / SECONDS

    @property
    def server_ms(self) -> float:
        """The server's CPU for each request answered, in milliseconds."""
        return 1000 * self.server_cpu / max(1, self.measured)

    @property
    def database_ms(self) -> float:
        return 1000 * self.database_cpu / max(1, self.measured)

    def latency_ms(self, share: float) -> float:
        return 1000 * percentile(self.latencies, share)


def drive(port: int, path: str, headers: dict[str, str], label: str, server: int, pg: int) -> Run:
    """Load one endpoint with ``CLIENTS`` processes of ``CONNECTIONS`` connections in all."""
    start_at = time.time() + WARM_UP_SECONDS + 1.0  # a second for the clients to start
    end_at = start_at + SECONDS
    clients = []
    for number in range(CLIENTS):
        load = Load(
            host="127.0.0.1",
            port=port,
            path=path,
            headers=headers,
            label=f"{label}x{chr(ord('a') + number)}",
            connections=CONNECTIONS // CLIENTS,
            start_at=start_at,
            end_at=end_at,
        )
        client = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.intake_load"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert client.stdin is not None
        client.stdin.write(json.dumps(asdict(load)).encode())
        client.stdin.close()
        clients.append(client)
    time.sleep(max(0.0, start_at - time.time()))
    database = [pg, *children_of(pg)]
    server_before, database_before = cpu_seconds([server]), cpu_seconds(database)
    time.sleep(max(0.0, end_at - time.time()))
    server_cpu = cpu_since(server_before, [server])
    database_cpu = cpu_since(database_before, [pg, *children_of(pg)])
    outcomes = []
    for client in clients:
        assert client.stdout is not None
        output = client.stdout.read()
        assert client.wait(timeout=60) == 0
        outcomes.append(Outcome(**json.loads(output)))
    statuses: Counter[int] = Counter()
    for outcome in outcomes:
        statuses.update({int(code): count for code, count in outcome.statuses.items()})
    return Run(
        statuses,
        sum(o.measured for o in outcomes),
        [latency for o in outcomes for latency in o.latencies],
        server_cpu,
        database_cpu,
    )


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            command, cwd=REPO, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT
        )


def load_both(url: str, postmaster: int, logs: Path) -> list[tuple[Run, Run]]:
    """Start the referrals API and the bare app, and load each in turn, ``PAIRS`` times."""
    api_port, bare_port = free_port(), free_port()
    api = start(
        [sys.executable, "-m", "services.referrals", "api"],
        {
            "UPSTREAM_ENVIRONMENT": "development",
            "UPSTREAM_DATABASE_URL": url,
            "UPSTREAM_HTTP_HOST": "127.0.0.1",
            "UPSTREAM_HTTP_PORT": str(api_port),
            "UPSTREAM_LOG_LEVEL": "INFO",  # as the stack runs it
        },
        logs / "referrals-api.log",
    )
    bare = start(
        [sys.executable, "-m", "tests.bench.intake_bare", plain_postgres_url(url), str(bare_port)],
        {},
        logs / "bare.log",
    )
    caseworker = header(NEWHAM, OrganisationKind.COUNCIL, Role.CASEWORKER)
    pairs = []
    profiler: subprocess.Popen[bytes] | None = None
    try:
        wait_until_healthy(f"http://127.0.0.1:{api_port}", api)
        wait_until_healthy(f"http://127.0.0.1:{bare_port}", bare)
        if profile := os.environ.get("UPSTREAM_BENCH_INTAKE_PROFILE"):
            # py-spy attached to the API for the whole of the first referrals load
            profiler = subprocess.Popen(
                [
                    str(REPO / ".venv/bin/py-spy"),
                    "record",
                    "-p",
                    str(api.pid),
                    "-o",
                    profile,
                    "--format",
                    "raw",
                    "-d",
                    str(int(WARM_UP_SECONDS + SECONDS)),
                ]
            )
        for number in range(PAIRS):
            label = f"pair{chr(ord('a') + number)}"
            referrals = drive(api_port, "/v1/referrals", caseworker, label, api.pid, postmaster)
            plain = drive(bare_port, "/bare", {}, label, bare.pid, postmaster)
            pairs.append((referrals, plain))
    finally:
        for process in (api, bare):
            process.terminate()
            process.wait(timeout=30)
        if profiler is not None:
            profiler.wait(timeout=60)
    return pairs


async def test_intake_beside_a_bare_endpoint(
    service_database: MakeDatabase, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = await service_database("referrals")
    db = await asyncpg.connect(plain_postgres_url(url))
    try:
        await db.execute(CREATE_TABLE)
        postmaster = parent_of(await db.fetchval("SELECT pg_backend_pid()"))
    finally:
        await db.close()

    pairs = await asyncio.to_thread(load_both, url, postmaster, tmp_path)

    db = await asyncpg.connect(plain_postgres_url(url))
    try:
        referral_rows = await db.fetchval("SELECT count(*) FROM referrals")
        bare_rows = await db.fetchval(f"SELECT count(*) FROM {TABLE}")
        await db.execute(f"DROP TABLE {TABLE}")
    finally:
        await db.close()

    # Each at its best (the run least disturbed by other work on the machine): the best
    # ratio of a pair would favour a pair whose bare run was the one disturbed.
    best_referrals = max(referrals.per_second for referrals, _ in pairs)
    best_bare = max(plain.per_second for _, plain in pairs)
    ratio = best_referrals / best_bare
    rows = [
        Measured(
            "intake: referrals/s of one API process (bare INSERT/s)",
            f"{best_referrals:,.0f}",
            f"{best_bare:,.0f}",
            f"{ratio:.0%}",
            f">= {GOAL_SHARE:.0%}",
            ratio >= GOAL_SHARE,
            goal_of_issue_13=2,
        )
    ]
    for number, (referrals, plain) in enumerate(pairs, start=1):
        rows += [
            Measured(
                f"pair {number}: a second",
                f"{referrals.per_second:,.0f}",
                f"{plain.per_second:,.0f}",
                f"{referrals.per_second / plain.per_second:.0%}",
                "",
                None,
            ),
            Measured(
                f"pair {number}: latency p50 / p99, ms",
                f"{referrals.latency_ms(0.5):.1f} / {referrals.latency_ms(0.99):.1f}",
                f"{plain.latency_ms(0.5):.1f} / {plain.latency_ms(0.99):.1f}",
                "",
                "",
                None,
            ),
            Measured(
                f"pair {number}: CPU a request, ms (server / PostgreSQL)",
                f"{referrals.server_ms:.2f} / {referrals.database_ms:.2f}",
                f"{plain.server_ms:.2f} / {plain.database_ms:.2f}",
                f"{referrals.server_ms / plain.server_ms:.0f}x",
                "",
                None,
            ),
            Measured(
                f"pair {number}: the server's share of one core",
                f"{referrals.server_cpu / SECONDS:.0%}",
                f"{plain.server_cpu / SECONDS:.0%}",
                "",
                "",
                None,
            ),
        ]
    show(
        request,
        f"Intake: new residents posted for {SECONDS:.0f} s after a {WARM_UP_SECONDS:.0f} s "
        f"warm-up over {CONNECTIONS} keep-alive connections from {CLIENTS} client processes; "
        "one referrals API process (no workers) beside a bare FastAPI endpoint with one "
        "asyncpg INSERT, on the same PostgreSQL",
        rows,
    )

    # Every answer was an acceptance (no 5xx, no refusal), and each one is a row.
    statuses = Counter[int]()
    for referrals, _ in pairs:
        statuses.update(referrals.statuses)
    bare_statuses = Counter[int]()
    for _, plain in pairs:
        bare_statuses.update(plain.statuses)
    assert set(statuses) <= {201, 202}, statuses
    assert set(bare_statuses) == {201}, bare_statuses
    assert referral_rows == statuses[201] + statuses[202]
    assert bare_rows == bare_statuses[201]
