"""A real HTTP server: after a server error the client's keep-alive connection stays open
and answers the next request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from devtools.embedded import free_port
from shared.http import create_app
from tests.unit.app_under_test import definition, settings


@pytest.fixture
def server() -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(definition(), settings()), host="127.0.0.1", port=port, log_config=None
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


def test_a_server_error_leaves_the_connection_usable(server: str) -> None:
    connections: list[object] = []

    def remember(request: httpx.Request) -> None:
        del request

    with httpx.Client(base_url=server, event_hooks={"request": [remember]}) as client:
        failed = client.get("/v1/boom")
        assert failed.status_code == 500
        assert failed.json()["detail"].startswith("internal error")
        assert failed.headers.get("connection") != "close"
        connections.append(failed.extensions["network_stream"])
        after = client.get("/healthz")
        assert after.status_code == 200
        connections.append(after.extensions["network_stream"])
    assert connections[0] is connections[1], "the server closed the connection after the 500"
