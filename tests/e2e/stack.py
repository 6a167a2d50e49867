"""The whole stack as separate processes (``upstream up``), for the end-to-end modules: one
stack per module, started with the settings the module needs, driven through the services'
HTTP APIs only; waits are on conditions with a timeout, never on a sleep.

``Stack.set_clock`` moves every process's clock at once (``UPSTREAM_CLOCK_FILE``, development
only: ``shared/clock.py``, docs/testing.md)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from devtools.embedded import free_port
from shared.auth import OrganisationKind, Role, mint_token
from shared.settings import AuthSettings
from tests.conftest import REPO
from tests.support.ports import stack_ports_held

NEWHAM = "E09000025"


class Stack:
    def __init__(self, ports: dict[str, int], state: Path, broker: str) -> None:
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        self.http = httpx.Client(timeout=30)
        self.auth = AuthSettings()
        self.state = state
        self.broker = broker  # the bootstrap servers, host:port
        self.clock_file = state / "clock"
        self.services: dict[str, str] = {}  # partner name -> its service's id

    def token(self, organisation: str, kind: OrganisationKind, *roles: Role) -> dict[str, str]:
        token = mint_token(
            self.auth,
            subject=f"e2e-{organisation}",
            organisation=organisation,
            kind=kind,
            roles=roles,
        )
        return {"Authorization": f"Bearer {token}"}

    @property
    def caseworker(self) -> dict[str, str]:
        return self.token(NEWHAM, OrganisationKind.COUNCIL, Role.CASEWORKER, Role.REFERRER)

    @property
    def operator(self) -> dict[str, str]:
        return self.token("operator", OrganisationKind.OPERATOR, Role.OPERATOR)

    @property
    def data_feed(self) -> dict[str, str]:
        return self.token(NEWHAM, OrganisationKind.COUNCIL, Role.DATA_FEED)

    def partner(self, organisation_id: str) -> dict[str, str]:
        return self.token(organisation_id, OrganisationKind.VCS, Role.PARTNER, Role.REFERRER)

    def call(
        self,
        method: str,
        service: str,
        path: str,
        headers: dict[str, str],
        expect: int = 200,
        **kwargs: Any,
    ) -> Any:
        response = self.http.request(method, self.urls[service] + path, headers=headers, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    def until(self, condition: Callable[[], Any], what: str, timeout: float = 90) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}")

    # -- referrals ---------------------------------------------------------------------

    def refer(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.call(
            "POST", "referrals", "/v1/referrals", self.caseworker, expect=201, json=body
        )

    def case(self, case_id: str) -> dict[str, Any]:
        return self.call("GET", "referrals", f"/v1/cases/{case_id}", self.caseworker)

    def until_status(self, case_id: str, status: str) -> dict[str, Any]:
        return self.until(
            lambda: (c := self.case(case_id))["status"] == status and c, f"case to be {status}"
        )

    def need_status(self, case_id: str, need: str) -> str | None:
        progress = {n["need"]: n for n in self.case(case_id)["need_progress"]}
        return progress[need]["status"] if need in progress else None

    def until_need(self, case_id: str, need: str, status: str) -> dict[str, Any]:
        """The case once its ``need`` has ``status``."""
        return self.until(
            lambda: (
                (c := self.case(case_id))
                and any(n["need"] == need and n["status"] == status for n in c["need_progress"])
                and c
            ),
            f"the case's {need} to be {status}",
        )

    # -- partners ----------------------------------------------------------------------

    def add_partner(
        self, name: str, needs: list[str], kind: str = "advice", capacity: int = 5
    ) -> str:
        """A partner with a data-sharing agreement with Newham and one service; its id (the
        service's id is in ``services[name]``)."""
        org = self.call(
            "POST",
            "partners",
            "/v1/organizations",
            self.operator,
            expect=201,
            json={
                "name": name,
                "description": f"{name} (e2e)",
                "kind": kind,
                "agreements": [
                    {
                        "council": NEWHAM,
                        "reference": f"DSA {NEWHAM} {name}",
                        "needs": needs,
                        "lawful_bases": ["consent", "public_task"],
                        "starts_on": "2020-01-01",
                    }
                ],
            },
        )["id"]
        self.services[name] = self.call(
            "POST",
            "partners",
            "/v1/services",
            self.operator,
            expect=201,
            json=self.service_details(org, name, needs, capacity),
        )["id"]
        return org

    @staticmethod
    def service_details(org: str, name: str, needs: list[str], capacity: int) -> dict[str, Any]:
        return {
            "organization_id": org,
            "name": f"{name} service",
            "description": "e2e",
            "needs": needs,
            "councils": [NEWHAM],
            "capacity": capacity,
        }

    def inbox(self, organisation_id: str) -> list[dict[str, Any]]:
        return self.call("GET", "partners", "/v1/inbox/offers", self.partner(organisation_id))

    def offered_to(self, organisation_id: str, case_id: str | None = None) -> dict[str, Any]:
        """The partner's first open offer (of ``case_id``, when given), once there is one."""
        return self.until(
            lambda: next(
                (
                    o
                    for o in self.inbox(organisation_id)
                    if o["status"] == "offered" and case_id in (None, o["case_id"])
                ),
                None,
            ),
            f"an offer to {organisation_id}",
        )

    def accept(self, organisation_id: str, offer_id: str) -> None:
        self.call(
            "POST", "partners", f"/v1/inbox/offers/{offer_id}/accept", self.partner(organisation_id)
        )

    def record_outcome(
        self, organisation_id: str, offer_id: str, outcome: str = "support_provided"
    ) -> None:
        self.call(
            "POST",
            "partners",
            f"/v1/inbox/offers/{offer_id}/outcome",
            self.partner(organisation_id),
            json={"outcome": outcome},
        )

    # -- risk --------------------------------------------------------------------------

    def import_signals(self, feed: str) -> dict[str, Any]:
        return self.call(
            "POST",
            "risk",
            "/v1/signals/import",
            {**self.data_feed, "content-type": "text/csv"},
            content=feed.encode(),
        )

    # -- the broker and the clock ----------------------------------------------------------

    def outbox_backlog(self, service: str) -> int:
        """The service's outbox rows not yet published (its API's ``/metrics``)."""
        metrics = self.http.get(self.urls[service] + "/metrics").text
        (line,) = [m for m in metrics.splitlines() if m.startswith("upstream_outbox_backlog ")]
        return int(float(line.split()[1]))

    def until_consumed(self, group: str, topic: str, producer: str) -> None:
        """Until ``producer`` has published all it has written and consumer group ``group``
        has committed everything on ``topic``: what it consumes from there has reached its
        database (offsets commit after the database does)."""
        self.until(lambda: self.outbox_backlog(producer) == 0, f"{producer} to publish")

        def behind() -> int:
            return asyncio.run(_records_behind(self.broker, group, topic))

        self.until(lambda: behind() == 0, f"{group} to consume {topic}")

    def set_clock(self, instant: datetime | None) -> None:
        """Every process's clock reads ``instant`` now and runs on from it; None: the real
        clock again."""
        if instant is None:
            self.clock_file.unlink(missing_ok=True)
        else:
            assert instant.tzinfo is not None
            # Written whole and then moved into place: a process never reads half an instant.
            staged = self.clock_file.with_suffix(".next")
            staged.write_text(instant.isoformat())
            os.replace(staged, self.clock_file)


async def _records_behind(bootstrap: str, group: str, topic: str) -> int:
    # Partitions assigned by hand: the group's committed offsets are read (OffsetFetch)
    # without joining the group, so its members keep their partitions.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()  # the cluster's metadata, fresh
        numbers = consumer.partitions_for_topic(topic) or set()
        partitions = [TopicPartition(topic, p) for p in sorted(numbers)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        behind = 0
        for tp, end in ends.items():
            done = await consumer.committed(tp)
            behind += max(0, end - (done or 0))
        return behind
    finally:
        await consumer.stop()


@contextlib.contextmanager
def running_stack(
    tmp_path_factory: Any,
    name: str,
    settings: dict[str, str] | None = None,
    *,
    settable_clock: bool = False,
) -> Iterator[Stack]:
    """``upstream up`` with its own ports, state and ``settings`` (environment variables);
    with ``settable_clock``, a clock the test moves (``Stack.set_clock``). On the way out,
    the services' logs must hold no error."""
    picking = contextlib.ExitStack()  # no other stack picks ports until ours are bound
    picking.enter_context(stack_ports_held())
    ports = {service: free_port() for service in ("referrals", "risk", "partners")}
    broker_port = free_port()
    state = tmp_path_factory.mktemp(name)
    env = {
        **os.environ,
        "UPSTREAM_STATE_DIR": str(state / "state"),
        "UPSTREAM_REFERRALS_PORT": str(ports["referrals"]),
        "UPSTREAM_RISK_PORT": str(ports["risk"]),
        "UPSTREAM_PARTNERS_PORT": str(ports["partners"]),
        "UPSTREAM_BROKER_PORT": str(broker_port),
        "UPSTREAM_WORKER_METRICS_PORT_OFFSET": "1",
        **(settings or {}),
    }
    if settable_clock:
        env["UPSTREAM_CLOCK_FILE"] = str(state / "clock")  # no file yet: the real clock
    log = state / "stack.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "devtools.cli", "up"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while "Upstream is running." not in log.read_text():
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        picking.close()
        yield Stack(ports, state, f"127.0.0.1:{broker_port}")
    finally:
        picking.close()
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    # Checked once every test of the module has used the stack, whatever order they ran in:
    # a failure here reports as an error in the last test's teardown.
    logs = list((state / "state" / "logs").glob("*.log"))
    assert logs, "the stack wrote no service logs"
    errors = [line for p in logs for line in p.read_text().splitlines() if '"ERROR"' in line]
    assert errors == [], "the services logged errors"


def referral(
    given: str,
    needs: list[str],
    urgency: str = "high",
    *,
    family: str = "Adeyemi",
    consent_given_at: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A council referral with the resident's consent (given an hour ago, unless said)."""
    given_at = consent_given_at or datetime.now(UTC) - timedelta(hours=1)
    return {
        "resident": {
            "given_name": given,
            "family_name": family,
            "date_of_birth": "1979-05-14",
            "contact": {"phone": "07700 900456", "preferred": "phone"},
            "address": {"line": "4 Barking Road", "postcode": "E13 8HL"},
        },
        "needs": needs,
        "urgency": urgency,
        "sharing": {
            "lawful_basis": "consent",
            "consent": {
                "given_by": "the resident",
                "method": "verbal",
                "given_at": given_at.isoformat(),
                "partner_kinds": ["any_voluntary"],
            },
        },
        **extra,
    }
