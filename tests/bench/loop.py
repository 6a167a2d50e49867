"""Referral → offer in the partner's inbox, timed from outside: each referral from its POST
to the moment its offer is in the partners service's database, which is what the partner's
inbox lists (read every 10 ms by a thread of its own). Not the inbox over HTTP: every read
of it writes an audit row for each offer it lists (``shared/audit.py``), so reading it
every 10 ms, hundreds of offers at a time, would load the very system being measured.
Used by the loop benchmarks."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import asyncpg
import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from devtools.stack import Stack
from shared.auth import OrganisationKind, Role, mint_token
from shared.db import plain_postgres_url
from shared.settings import AuthSettings

NEWHAM = "E09000025"


def header(organisation: str, kind: OrganisationKind, role: Role) -> dict[str, str]:
    token = mint_token(
        AuthSettings(), subject="bench", organisation=organisation, kind=kind, roles=[role]
    )
    return {"Authorization": f"Bearer {token}"}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


def _name(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(syllables)).capitalize()


def referral(index: int, label: str = "") -> dict[str, object]:
    """A referral of a resident of its own: names, date of birth and email drawn for this
    label and index, so that no two are taken for one person (or a possible duplicate,
    whose needs would be held back)."""
    rng = random.Random(f"{label}-{index}")
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(60 * 365))
    return {
        "council": NEWHAM,
        "resident": {
            "given_name": _name(rng, 3),
            "family_name": _name(rng, 4),
            "date_of_birth": born.isoformat(),
            "contact": {"email": f"bench.{label}.{index}@example.org", "preferred": "email"},
            "address": {"postcode": "E15 4HT"},
        },
        "needs": ["food"],
        "urgency": "high",
        "sharing": {
            "lawful_basis": "consent",
            "consent": {
                "given_by": "the resident",
                "method": "verbal",
                "given_at": "2026-11-20T10:00:00Z",
                "partner_kinds": ["food"],
            },
        },
    }


@dataclass
class Loop:
    """A stack's referrals and partners APIs (and the partners database, where offers are
    seen), with a food bank that takes Newham's food needs (created by ``open``)."""

    referrals: str
    partners: str
    partners_database: str
    caseworker: dict[str, str] = field(
        default_factory=lambda: header(NEWHAM, OrganisationKind.COUNCIL, Role.CASEWORKER)
    )
    partner: dict[str, str] = field(default_factory=dict)
    warm_ups: int = 0

    @classmethod
    def open(cls, referrals: str, partners: str, partners_database: str) -> Loop:
        loop = cls(referrals, partners, plain_postgres_url(partners_database))
        operator = header("operator", OrganisationKind.OPERATOR, Role.OPERATOR)
        with httpx.Client(timeout=10) as http:
            org = http.post(
                f"{partners}/v1/organizations",
                headers=operator,
                json={
                    "name": "Bench Food Bank",
                    "description": "a food bank",
                    "kind": "food",
                    "agreements": [
                        {
                            "council": NEWHAM,
                            "reference": "BENCH-DSA",
                            "needs": ["food"],
                            "lawful_bases": ["consent"],
                            "starts_on": "2020-01-01",
                        }
                    ],
                },
            ).json()["id"]
            http.post(
                f"{partners}/v1/services",
                headers=operator,
                json={
                    "organization_id": org,
                    "name": "Bench Food Bank",
                    "description": "food parcels",
                    "needs": ["food"],
                    "councils": [NEWHAM],
                    "languages": ["en"],
                    "capacity": 10_000,
                },
            ).raise_for_status()
        loop.partner = header(org, OrganisationKind.VCS, Role.PARTNER)
        loop.warm_up()
        return loop

    def warm_up(self) -> None:
        """One referral through first: the consumer groups settle after a start."""
        self.warm_ups += 1
        latencies = self.measure(1, rate=1.0, label=f"warm{self.warm_ups}", timeout=180)
        assert latencies, "the warm-up referral was never offered"

    def healthz_floor(self, times: int = 50) -> list[float]:
        """The bare floor: a round trip to the referrals API's ``/healthz``."""
        floor = []
        with httpx.Client(timeout=10) as http:
            for _ in range(times):
                started = time.perf_counter()
                http.get(f"{self.referrals}/healthz").raise_for_status()
                floor.append(time.perf_counter() - started)
        return floor

    def measure(
        self,
        count: int,
        *,
        rate: float,
        label: str,
        timeout: float = 60,
        keep_going: Callable[[], bool] | None = None,
    ) -> list[float]:
        """Post ``count`` referrals at ``rate`` a second (or, with ``keep_going``, as long as
        it says so, at most ``count``); each one's seconds from POST to offer in the inbox.
        ``label`` (letters only) tells this run's residents from another's."""
        sent_at: dict[str, float] = {}
        offered_at: dict[str, float] = {}
        done = threading.Event()

        async def watch_offers() -> None:
            db = await asyncpg.connect(self.partners_database)
            try:
                while not done.is_set():
                    seen = time.perf_counter()
                    waiting = [c for c in list(sent_at) if c not in offered_at]
                    if waiting:
                        for row in await db.fetch(
                            "SELECT DISTINCT case_id::text FROM offers "
                            "WHERE case_id = ANY($1::uuid[])",
                            waiting,
                        ):
                            offered_at.setdefault(row[0], seen)
                    await asyncio.sleep(0.01)
            finally:
                await db.close()

        watcher = threading.Thread(target=lambda: asyncio.run(watch_offers()), daemon=True)
        watcher.start()
        try:
            with httpx.Client(timeout=30) as http:
                for index in range(count):
                    if keep_going is not None and not keep_going():
                        break
                    started = time.perf_counter()
                    answer = http.post(
                        f"{self.referrals}/v1/referrals",
                        headers={**self.caseworker, "Idempotency-Key": f"bench-{label}-{index}"},
                        json=referral(index, label),
                    )
                    answer.raise_for_status()
                    sent_at[answer.json()["case_id"]] = started
                    time.sleep(max(0.0, 1 / rate - (time.perf_counter() - started)))
            deadline = time.monotonic() + timeout
            while len(set(sent_at) & set(offered_at)) < len(sent_at):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        finally:
            done.set()
            watcher.join()
        return [offered_at[c] - sent_at[c] for c in sent_at if c in offered_at]


HOPS = {
    "upstream_event_publish_delay_seconds": "written -> published (relays)",
    "upstream_event_fetch_delay_seconds": "published -> in a consumer's hands",
    "upstream_event_handling_seconds": "in hand -> applied and committed",
}


@dataclass(frozen=True)
class Hop:
    """One of an event's hops, over every event of a run in every worker scraped."""

    name: str
    count: int
    mean: float
    p50: float  # upper bound of the bucket holding the median
    p99: float


def hops(metrics_urls: list[str]) -> list[Hop]:
    """Each hop's histogram from the workers' ``/metrics``, summed over every label."""
    buckets: dict[str, dict[float, float]] = {name: {} for name in HOPS}
    sums = dict.fromkeys(HOPS, 0.0)
    with httpx.Client(timeout=10) as http:
        for url in metrics_urls:
            for family in text_string_to_metric_families(http.get(url).text):
                if (name := family.name) in HOPS:
                    for sample in family.samples:
                        if sample.name.endswith("_bucket"):
                            bound = float(sample.labels["le"])
                            buckets[name][bound] = buckets[name].get(bound, 0) + sample.value
                        elif sample.name.endswith("_sum"):
                            sums[name] += sample.value
    found = []
    for name, cumulative in buckets.items():
        ordered = sorted(cumulative.items())
        total = cumulative.get(float("inf"), 0)
        if total:
            p50, p99 = (next(b for b, seen in ordered if seen >= q * total) for q in (0.5, 0.99))
            found.append(Hop(HOPS[name], int(total), sums[name] / total, p50, p99))
    return found


def stack_cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds each of the stack's processes has used so far: its services, the broker,
    and PostgreSQL (the server, its live backends and the ones that have ended)."""
    used: dict[str, float] = {}
    for name, process in stack.processes.items():
        times = psutil.Process(process.pid).cpu_times()
        used[name] = times.user + times.system
    broker = getattr(stack.broker, "_process", None)
    if broker is not None:
        times = psutil.Process(broker.pid).cpu_times()
        used["broker"] = times.user + times.system
    pid_file = stack.state / "postgres" / "postmaster.pid"
    if pid_file.exists():
        server = psutil.Process(int(pid_file.read_text().split()[0]))
        times = server.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in server.children(recursive=True):
            try:
                child_times = child.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += child_times.user + child_times.system
        used["postgres"] = total
    return used
