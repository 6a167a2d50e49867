"""The README's quick start, exactly: `make run` brings the whole stack up on a fresh state
folder, every service's /readyz answers 200, Ctrl-C stops everything, and a second start
reuses the state. Ports and the state folder are moved aside so a developer's own stack
is left alone; everything else is what a newcomer runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devtools.embedded import free_port, port_open
from tests.conftest import REPO
from tests.support.ports import stack_ports_held

pytestmark = pytest.mark.e2e

SERVICES = ("referrals", "risk", "partners")


def start_make_run(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            ["make", "run"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(ports: dict[str, int], process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    waiting = dict(ports)
    while waiting:
        assert process.poll() is None, f"make run exited early:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"not ready: {waiting}\n{log.read_text()[-4000:]}"
        for name, port in list(waiting.items()):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    del waiting[name]
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    # The banner comes once everything is ready.
    while "Upstream is running." not in log.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.2)


def press_ctrl_c(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGINT)  # what a terminal does: the whole foreground group
    process.wait(timeout=60)


def test_make_run_brings_every_service_up_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    # Both starts bind the same ports: no other stack may pick them in between.
    with stack_ports_held():
        quick_start_twice(tmp_path)


def quick_start_twice(tmp_path: Path) -> None:
    ports = {name: free_port() for name in SERVICES}
    broker_port = free_port()
    env = {
        **os.environ,
        "UPSTREAM_STATE_DIR": str(tmp_path / "state"),
        "UPSTREAM_REFERRALS_PORT": str(ports["referrals"]),
        "UPSTREAM_RISK_PORT": str(ports["risk"]),
        "UPSTREAM_PARTNERS_PORT": str(ports["partners"]),
        "UPSTREAM_BROKER_PORT": str(broker_port),
        "UPSTREAM_WORKER_METRICS_PORT_OFFSET": "1",
    }
    every_port = [*ports.values(), broker_port, *(p + 1 for p in ports.values())]
    if any(port_open("127.0.0.1", p) for p in every_port):
        pytest.skip("a chosen port was taken meanwhile")

    first_log = tmp_path / "first.log"
    process = start_make_run(env, first_log)
    try:
        wait_ready(ports, process, first_log)
        output = first_log.read_text()
        assert "(new)" in output
        # The printed tokens work: the partner's token names the partner.
        tokens = re.findall(r"^\s+(eyJ[\w-]+\.[\w-]+\.[\w-]+)\s*$", output, re.MULTILINE)
        assert len(tokens) == 4
        me = httpx.get(
            f"http://127.0.0.1:{ports['partners']}/v1/me",
            headers={"Authorization": f"Bearer {tokens[2]}"},
        )
        assert me.status_code == 200 and me.json()["kind"] == "vcs"
        for name, port in ports.items():
            assert f"http://127.0.0.1:{port}/docs" in output
            assert httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 200
            worker_metrics = httpx.get(f"http://127.0.0.1:{port + 1}/metrics")
            assert worker_metrics.status_code == 200, name
        # The demo councils' transparency records are served complete, to anyone.
        record = httpx.get(f"http://127.0.0.1:{ports['risk']}/v1/transparency/E09000025")
        assert record.status_code == 200, record.text
        assert record.json()["owner_and_responsibility"]["senior_responsible_owner"]
        # One step into the partner web inbox: a sign-in link, through the real email.
        signed = subprocess.run(
            [sys.executable, "-m", "devtools.cli", "inbox-link"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert signed.returncode == 0, signed.stdout + signed.stderr
        link = signed.stdout.strip().splitlines()[-1]
        assert link.startswith(f"http://127.0.0.1:{ports['partners']}/inbox/sign-in/")
        assert "Sign in" in httpx.get(link).text
    finally:
        press_ctrl_c(process)
    assert "stopped." in first_log.read_text()
    assert not [p for p in every_port if port_open("127.0.0.1", p)], "something still listens"

    second_log = tmp_path / "second.log"
    process = start_make_run(env, second_log)
    try:
        wait_ready(ports, process, second_log)
        assert "(reused)" in second_log.read_text()
    finally:
        press_ctrl_c(process)
    assert not [p for p in every_port if port_open("127.0.0.1", p)]
