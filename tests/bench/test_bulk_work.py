"""Bulk work beside interactive work, on one stack of the three services as processes
(``make bench``), in the same run:

- **Idle cost** (issue 13, goal 5): the CPU each of the six processes uses over
  ``IDLE_SECONDS`` with nothing to do, beside a bare Python process asleep.
- **Interactive before bulk** (goal 4): referral → offer in the partner's inbox while a
  feed's flags go through the system (``upstream signals import`` of ``ROWS`` rows; every
  flag becomes an outreach case in the referrals service, and risk records each case
  opened), beside the same loop on the same stack with nothing else to do.
- **Scale out** (goal 6): one worker of each service is started in place of the stack's
  (and settled: a referral through), a feed of ``SCALE_ROWS`` rows imported, and the clock
  stopped when its backlog has gone through (every flag handled by the referrals service,
  its outbox published, every case opened recorded by risk). The same again with a fresh
  feed and two workers of each service. The measure is flags a second; beside it, the CPU
  the workers, PostgreSQL and the broker used for it, which says how much of the machine
  was left to scale into. With ``UPSTREAM_BENCH_SCALE_ROUNDS=2`` the phases run as one,
  two, two, one (workers restarted only where their number changes) and each side's flags
  and seconds are summed, so that a drift in a shared machine's load falls on both alike.

Each stack's outboxes first get ``HISTORY_ROWS`` published events each, as a month of use
leaves them (the outbox keeps what it sent for 30 days, so a fresh refill of a broker is
possible): a query that reads that history on every pass is slow only there, never on a
fresh database (the relay's pass once was, about a second a pass behind a bulk backlog).

Printed, not asserted. ``UPSTREAM_BENCH_BULK_ROWS``, ``UPSTREAM_BENCH_SCALE_ROWS``,
``UPSTREAM_BENCH_BULK_RATE`` and ``UPSTREAM_BENCH_HISTORY_ROWS`` change the sizes and the
referral rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from devtools.embedded import free_port
from devtools.stack import SERVICE_NAMES, Stack
from shared.db import plain_postgres_url
from shared.settings import ServiceSettings
from tests.bench.goals import Measured, show
from tests.bench.loop import NEWHAM, Loop, percentile
from tests.bench.test_loop_latency import stack_settings
from tests.bench.test_signal_import import REPO, children_of, cpu_seconds, cpu_since, parent_of
from tests.support.signal_feed import write_feed

ROWS = int(os.environ.get("UPSTREAM_BENCH_BULK_ROWS", "10000"))
SCALE_ROWS = int(os.environ.get("UPSTREAM_BENCH_SCALE_ROWS", "5000"))
ROUNDS = int(os.environ.get("UPSTREAM_BENCH_SCALE_ROUNDS", "1"))  # phases of each kind
RATE = float(os.environ.get("UPSTREAM_BENCH_BULK_RATE", "5"))  # referrals a second
HISTORY_ROWS = int(os.environ.get("UPSTREAM_BENCH_HISTORY_ROWS", "100000"))  # each outbox
QUIET_REFERRALS = 100
IDLE_SECONDS = 20.0
GOAL_BULK_P99 = 1.0
GOAL_IDLE = 0.01  # of a core, each process
GOAL_SCALE = 1.6

FLAGGED = "uk.upstream.risk.resident.flagged.v1"
OPENED = "uk.upstream.referrals.case.opened.v1"
REPORT = re.compile(r"flagged (?P<flagged>\d+)")


# -- the stack's databases, read from a thread of their own --------------------------------


@dataclass
class Progress:
    """How far the flags have gone through: read from the three databases."""

    flags_written: int = 0  # the risk service's outbox
    flags_handled: int = 0  # the referrals service's inbox
    outreach_cases: int = 0
    referrals_unpublished: int = 0
    opened_published: int = 0  # cases opened, in the referrals service's outbox
    opened_recorded: int = 0  # the risk service's inbox

    @property
    def drained(self) -> bool:
        return (
            self.flags_handled >= self.flags_written
            and self.referrals_unpublished == 0
            and self.opened_recorded >= self.opened_published
        )


class Watch:
    """Reads ``Progress`` every 200 ms on a thread of its own, until closed."""

    def __init__(self, urls: dict[str, str], history: dict[str, int]) -> None:
        self._urls = {name: plain_postgres_url(url) for name, url in urls.items()}
        # Each outbox's rows up to here are the month before: counted by id from after it
        # (the primary key), not by reading every one of them five times a second.
        self._after = history
        self.now = Progress()
        self.postmaster = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        self._ready.wait(30)

    async def _run(self) -> None:
        db = {name: await asyncpg.connect(url) for name, url in self._urls.items()}
        self.postmaster = parent_of(await db["risk"].fetchval("SELECT pg_backend_pid()"))
        try:
            while not self._stop.is_set():
                self.now = await self._read(db)
                self._ready.set()
                await asyncio.sleep(0.2)
        finally:
            for connection in db.values():
                await connection.close()

    async def _read(self, db: dict[str, asyncpg.Connection]) -> Progress:
        risk, referrals = db["risk"], db["referrals"]
        return Progress(
            flags_written=await risk.fetchval(
                "SELECT count(*) FROM outbox WHERE id > $2 AND event_type = $1",
                FLAGGED,
                self._after["risk"],
            ),
            # The referrals service's own group: its reporting model's group handles flags
            # too (cheaply), and counting both would call the backlog through too soon.
            flags_handled=await referrals.fetchval(
                "SELECT count(*) FROM inbox WHERE consumer = 'referrals' AND event_type = $1",
                FLAGGED,
            ),
            outreach_cases=await referrals.fetchval(
                "SELECT count(*) FROM cases WHERE origin = 'flag'"
            ),
            referrals_unpublished=await referrals.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            ),
            opened_published=await referrals.fetchval(
                "SELECT count(*) FROM outbox WHERE id > $2 AND event_type = $1",
                OPENED,
                self._after["referrals"],
            ),
            opened_recorded=await risk.fetchval(
                "SELECT count(*) FROM inbox WHERE event_type = $1", OPENED
            ),
        )

    def wait(self, condition: Callable[[Progress], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition(self.now):
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


# Events sent over the last 29 days, of a type no one handles, across every lane (the
# interactive and the bulk ones), each with an envelope of about a kilobyte.
_HISTORY = """
    INSERT INTO outbox (event_id, topic, message_key, lane, event_type, envelope, created_at,
        published_at)
    SELECT 'history-' || g, 'uk.upstream.bench.history.v1', md5(g::text), (g % 64)::smallint,
        'uk.upstream.bench.history.v1', jsonb_build_object('data', repeat('x', 1000)), at, at
    FROM generate_series(1, $1::int) AS g,
        LATERAL (SELECT now() - interval '29 days' * (1 - g::float / $1::int) AS at) AS sent
"""


def fill_history(urls: dict[str, str], rows: int = HISTORY_ROWS) -> dict[str, int]:
    """Each service's outbox with ``rows`` published events, analysed, as in production;
    the last outbox id of each afterwards (the watch counts only the rows after it)."""

    async def fill() -> dict[str, int]:
        last: dict[str, int] = {}
        for name, url in urls.items():
            db = await asyncpg.connect(plain_postgres_url(url))
            try:
                if rows:
                    await db.execute(_HISTORY, rows)
                    await db.execute("VACUUM ANALYZE outbox")
                    # Written out now, not by the checkpointer during the measurements.
                    with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
                        await db.execute("CHECKPOINT")
                last[name] = await db.fetchval("SELECT coalesce(max(id), 0) FROM outbox")
            finally:
                await db.close()
        return last

    return asyncio.run(fill())


# -- processes ------------------------------------------------------------------------------


def import_feed(feed: Path, risk: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "devtools.cli", "signals", "import", str(feed), "--url", risk],
        cwd=REPO,
        env={**os.environ, "COLUMNS": "100"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def flagged_by(cli: subprocess.Popen[bytes]) -> int:
    output = (cli.communicate()[0] or b"").decode()
    assert cli.returncode == 0, output
    report = REPORT.search(output)
    assert report is not None, output
    return int(report["flagged"])


def workers(stack: Stack) -> dict[str, subprocess.Popen[bytes]]:
    return {key: p for key, p in stack.processes.items() if "-worker" in key}


def stop_workers(stack: Stack) -> None:
    running = [p for p in workers(stack).values() if p.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    for process in running:
        process.wait(30)


def start_workers(stack: Stack, replicas: int, phase: str) -> None:
    """``replicas`` workers of each service, each with its own metrics port."""
    for name in SERVICE_NAMES:
        for replica in range(replicas):
            stack.settings.worker_metrics_port_offset = free_port() - stack.settings.api_port(name)
            stack._spawn(name, "worker")
            stack.processes[f"{name}-worker-{phase}-{replica}"] = stack.processes.pop(
                f"{name}-worker"
            )


# -- the scenarios --------------------------------------------------------------------------


def idle_cost(stack: Stack) -> tuple[dict[str, float], float]:
    """Each process's share of a core over ``IDLE_SECONDS``, and a bare sleeping Python's:
    idle as a quiet worker is, once its consumers rest (``consumer_rest_after_s`` after
    their last event: shared/messaging/consumer.py, Resting)."""
    bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        time.sleep(ServiceSettings.model_fields["consumer_rest_after_s"].default + 2)
        pids = {key: p.pid for key, p in stack.processes.items()} | {"bare": bare.pid}
        before = cpu_seconds(pids.values())
        time.sleep(IDLE_SECONDS)
        after = cpu_seconds(pids.values())
    finally:
        bare.kill()
        bare.wait()
    share = {key: (after[pid] - before[pid]) / IDLE_SECONDS for key, pid in pids.items()}
    return {k: v for k, v in share.items() if k != "bare"}, share["bare"]


@dataclass
class UnderBulk:
    latencies: list[float]
    sent_while_draining: int
    flagged: int
    import_seconds: float
    drained_after: float | None  # seconds from the import's start, if it drained


def interactive_under_bulk(stack: Stack, loop: Loop, watch: Watch, feed: Path) -> UnderBulk:
    risk = f"http://127.0.0.1:{stack.settings.api_port('risk')}"
    before = watch.now
    started = time.perf_counter()
    cli = import_feed(feed, risk)
    flagged: dict[str, int] = {}

    def finish_import() -> None:
        flagged["n"] = flagged_by(cli)
        flagged["at"] = int(time.perf_counter() - started)

    importer = threading.Thread(target=finish_import, daemon=True)
    importer.start()
    # Measure once the flags are on their way: the first outreach case is open.
    watch.wait(lambda p: p.outreach_cases > before.outreach_cases, timeout=600)

    def draining() -> bool:
        return importer.is_alive() or not watch.now.drained

    sent = {"n": 0}

    def keep_going() -> bool:
        if draining():
            sent["n"] += 1
            return True
        return False

    latencies = loop.measure(10_000, rate=RATE, label="bulk", keep_going=keep_going)
    importer.join()
    drained = watch.wait(lambda p: p.drained, timeout=900)
    return UnderBulk(
        latencies,
        sent["n"],
        flagged["n"],
        float(flagged["at"]),
        time.perf_counter() - started if drained else None,
    )


@dataclass
class Drained:
    flagged: int
    seconds: float  # from the import's start to the backlog drained
    cpu: float  # seconds of CPU the workers, PostgreSQL and the broker used meanwhile

    @property
    def rate(self) -> float:
        return self.flagged / self.seconds

    def __add__(self, other: Drained) -> Drained:
        return Drained(
            self.flagged + other.flagged, self.seconds + other.seconds, self.cpu + other.cpu
        )

    @property
    def cores(self) -> float:
        return self.cpu / self.seconds


def backlog_through(
    stack: Stack, watch: Watch, loop: Loop, feed: Path, replicas: int, *, restart: bool = True
) -> Drained:
    """``replicas`` workers of each service in place of the running ones (unless they are
    running already); once they are settled, import the feed and time its backlog through."""
    if restart:
        stop_workers(stack)
        start_workers(stack, replicas, phase=f"x{replicas}-{len(stack.processes)}")
        loop.warm_up()
        time.sleep(5)  # the groups' last rebalance done

    def pids() -> list[int]:
        assert stack.broker is not None and stack.broker._process is not None
        running = [p.pid for p in workers(stack).values() if p.poll() is None]
        return [
            *running,
            watch.postmaster,
            *children_of(watch.postmaster),
            stack.broker._process.pid,
        ]

    before, cpu_before = watch.now, cpu_seconds(pids())
    started = time.perf_counter()
    flagged = flagged_by(import_feed(feed, f"http://127.0.0.1:{stack.settings.api_port('risk')}"))
    assert watch.wait(
        lambda p: p.flags_written >= before.flags_written + flagged and p.drained, timeout=1800
    ), watch.now
    done = time.perf_counter()
    return Drained(flagged, done - started, cpu_since(cpu_before, pids()))


def test_bulk_work_beside_interactive_work(request: pytest.FixtureRequest) -> None:
    with tempfile.TemporaryDirectory(prefix="upstream-bench-bulk-") as state:
        feeds = Path(state) / "feeds"
        feeds.mkdir()
        write_feed(feeds / "bulk.csv", ROWS, council=NEWHAM, seed=101)
        order = ([1, 2, 2, 1] * ROUNDS)[: 2 * ROUNDS]
        for phase in range(len(order)):
            write_feed(feeds / f"scale{phase}.csv", SCALE_ROWS, council=NEWHAM, seed=202 + phase)
        settings = stack_settings(state)
        stack = Stack(settings, echo=lambda _: None)
        stack.start()
        watch = Watch(stack.database_urls, fill_history(stack.database_urls))
        try:
            loop = Loop.open(
                f"http://127.0.0.1:{settings.api_port('referrals')}",
                f"http://127.0.0.1:{settings.api_port('partners')}",
                stack.database_urls["partners"],
            )
            idle, bare_idle = idle_cost(stack)
            quiet = loop.measure(QUIET_REFERRALS, rate=RATE, label="quiet")
            bulk = interactive_under_bulk(stack, loop, watch, feeds / "bulk.csv")
            through = {1: Drained(0, 0.0, 0.0), 2: Drained(0, 0.0, 0.0)}
            running = 0
            for phase, replicas in enumerate(order):
                feed = feeds / f"scale{phase}.csv"
                through[replicas] += backlog_through(
                    stack, watch, loop, feed, replicas, restart=replicas != running
                )
                running = replicas
            one, two = through[1], through[2]
        finally:
            watch.close()
            stack.stop()

    busiest = max(idle, key=lambda k: idle[k])
    q50, q99 = percentile(quiet, 0.5), percentile(quiet, 0.99)
    b50, b99 = percentile(bulk.latencies, 0.5), percentile(bulk.latencies, 0.99)
    all_offered = len(bulk.latencies) == bulk.sent_while_draining
    speedup = two.rate / one.rate
    drained = f"{bulk.drained_after:.0f} s" if bulk.drained_after else "not within 15 min"
    show(
        request,
        f"Bulk work beside interactive work, each outbox holding {HISTORY_ROWS:,} events sent "
        f"before: a feed of {ROWS:,} rows ({bulk.flagged:,} flagged, "
        f"imported in {bulk.import_seconds:.0f} s, every flag through in {drained}); "
        f"{bulk.sent_while_draining} referrals at {RATE:g}/s while its flags went through, "
        f"{len(bulk.latencies)} offered; baseline: {len(quiet)} referrals on the same stack "
        f"with nothing else to do. Scale out: {len(order)} feeds of {SCALE_ROWS:,} rows "
        f"({' '.join(map(str, order))} workers of each service), {one.flagged:,} and "
        f"{two.flagged:,} flagged in all, on {os.cpu_count()} cores",
        [
            Measured(
                "idle: CPU of the busiest process (% of a core)",
                f"{idle[busiest]:.1%} ({busiest})",
                f"{bare_idle:.1%} (python, asleep)",
                "",
                f"<= {GOAL_IDLE:.0%} each",
                all(share <= GOAL_IDLE for share in idle.values()),
                goal_of_issue_13=5,
            ),
            Measured(
                "idle: CPU of every process (% of a core)",
                " ".join(f"{k.replace('-', ' ')} {v:.1%}" for k, v in sorted(idle.items())),
                "",
                "",
                "",
                None,
            ),
            Measured(
                "referral -> offer p50 (ms), while flags are processed",
                f"{b50 * 1000:.0f}",
                f"{q50 * 1000:.0f} (quiet)",
                f"{b50 / q50:.1f}x",
                "",
                None,
                goal_of_issue_13=4,
            ),
            Measured(
                f"referral -> offer p99 (ms), while a {ROWS:,}-row feed's flags go through",
                f"{b99 * 1000:.0f}",
                f"{q99 * 1000:.0f} (quiet)",
                f"{b99 / q99:.1f}x",
                f"<= {GOAL_BULK_P99 * 1000:.0f} ms",
                b99 <= GOAL_BULK_P99 and all_offered and bulk.sent_while_draining >= 50,
                goal_of_issue_13=4,
            ),
            Measured(
                "referral -> offer max (ms), while flags are processed",
                f"{max(bulk.latencies) * 1000:.0f}",
                f"{max(quiet) * 1000:.0f} (quiet)",
                "",
                "",
                None,
            ),
            Measured(
                "backlog through, flags/s: 2 workers of each service vs 1",
                f"{two.rate:.0f} ({two.seconds:.0f} s)",
                f"{one.rate:.0f} ({one.seconds:.0f} s)",
                f"{speedup:.2f}x",
                f">= {GOAL_SCALE}x",
                speedup >= GOAL_SCALE,
                goal_of_issue_13=6,
            ),
            Measured(
                "the same: cores busy (workers, PostgreSQL, broker)",
                f"{two.cores:.2f}",
                f"{one.cores:.2f}",
                f"{two.cores / one.cores:.2f}x",
                f"of {os.cpu_count()}",
                None,
            ),
            Measured(
                "the same: CPU a flag (ms)",
                f"{two.cpu / two.flagged * 1000:.0f}",
                f"{one.cpu / one.flagged * 1000:.0f}",
                f"{(two.cpu / two.flagged) / (one.cpu / one.flagged):.2f}x",
                "",
                None,
            ),
        ],
    )
    assert quiet and bulk.latencies


# With the bulk lanes switched off in every process of a stack (the registry knows of no
# bulk lane, so every event is written, relayed and consumed as interactive): the system as
# it was before them, measured in the same run for comparison.
_WITHOUT_BULK_LANES = """\
from shared.events.registry import EventRegistry

EventRegistry.bulk_lane_of = lambda self, topic: None
"""


def test_the_same_without_bulk_lanes(request: pytest.FixtureRequest) -> None:
    if os.environ.get("UPSTREAM_BENCH_WITHOUT_LANES", "1") == "0":
        pytest.skip("UPSTREAM_BENCH_WITHOUT_LANES=0")
    with tempfile.TemporaryDirectory(prefix="upstream-bench-nolanes-") as state:
        patch = Path(state) / "patch"
        patch.mkdir()
        (patch / "sitecustomize.py").write_text(_WITHOUT_BULK_LANES)
        feed = Path(state) / "bulk.csv"
        write_feed(feed, ROWS, council=NEWHAM, seed=101)
        settings = stack_settings(state)
        stack = Stack(settings, echo=lambda _: None)
        path = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join([str(patch), str(REPO), *filter(None, [path])])
        try:
            stack.start()  # its processes start with the patch
        finally:
            if path is None:
                os.environ.pop("PYTHONPATH")
            else:
                os.environ["PYTHONPATH"] = path
        watch = Watch(stack.database_urls, fill_history(stack.database_urls))
        try:
            loop = Loop.open(
                f"http://127.0.0.1:{settings.api_port('referrals')}",
                f"http://127.0.0.1:{settings.api_port('partners')}",
                stack.database_urls["partners"],
            )
            quiet = loop.measure(QUIET_REFERRALS, rate=RATE, label="quiet")
            bulk = interactive_under_bulk(stack, loop, watch, feed)
            bulk_topics = asyncio.run(_rows_on_bulk_topics(stack.database_urls))
        finally:
            watch.close()
            stack.stop()
    assert bulk_topics == 0, "the patch did not switch the bulk lanes off"

    q50, q99 = percentile(quiet, 0.5), percentile(quiet, 0.99)
    b50, b99 = percentile(bulk.latencies, 0.5), percentile(bulk.latencies, 0.99)
    drained = f"{bulk.drained_after:.0f} s" if bulk.drained_after else "not within 15 min"
    show(
        request,
        f"The same without bulk lanes (as before them): a feed of {ROWS:,} rows "
        f"({bulk.flagged:,} flagged, every flag through in {drained}); "
        f"{bulk.sent_while_draining} referrals at {RATE:g}/s while its flags went through, "
        f"{len(bulk.latencies)} offered",
        [
            Measured(
                "without bulk lanes: referral -> offer p50 (ms), flags processed",
                f"{b50 * 1000:.0f}",
                f"{q50 * 1000:.0f} (quiet)",
                f"{b50 / q50:.1f}x",
                "",
                None,
                goal_of_issue_13=4,
            ),
            Measured(
                "without bulk lanes: referral -> offer p99 (ms), flags processed",
                f"{b99 * 1000:.0f}",
                f"{q99 * 1000:.0f} (quiet)",
                f"{b99 / q99:.1f}x",
                "",
                None,
                goal_of_issue_13=4,
            ),
            Measured(
                "without bulk lanes: referral -> offer max (ms)",
                f"{max(bulk.latencies) * 1000:.0f}",
                f"{max(quiet) * 1000:.0f} (quiet)",
                "",
                "",
                None,
            ),
        ],
    )


async def _rows_on_bulk_topics(urls: dict[str, str]) -> int:
    total = 0
    for url in urls.values():
        db = await asyncpg.connect(plain_postgres_url(url))
        try:
            total += await db.fetchval("SELECT count(*) FROM outbox WHERE topic LIKE '%.bulk.%'")
        finally:
            await db.close()
    return total
