"""Fixtures shared by every tier. Unit tests use none of the infrastructure ones."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from devtools.embedded import drop_database, ensure_database, with_database
from devtools.stack import load_service
from shared.migrations import upgrade
from tests.support.infrastructure import Broker, kafka_broker, postgres_server

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def postgres_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with postgres_server(tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with kafka_broker(tmp_path_factory.mktemp("kafka")) as broker:
        yield broker


MakeDatabase = Callable[[str], Awaitable[str]]


@pytest.fixture
async def service_database(postgres_admin_url: str) -> AsyncIterator[MakeDatabase]:
    """``await service_database("referrals")``: a new database migrated to head with the
    service's real Alembic revisions; dropped after the test."""
    created: list[str] = []

    async def make(service: str) -> str:
        name = f"test_{service}_{uuid.uuid4().hex[:10]}"
        await ensure_database(postgres_admin_url, name)
        created.append(name)
        url = with_database(postgres_admin_url, name)
        upgrade(load_service(service), url)
        return url

    yield make
    for name in created:
        await drop_database(postgres_admin_url, name)
