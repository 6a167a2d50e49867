"""Fixtures shared by every tier. Unit tests use none of the infrastructure ones."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from devtools.embedded import drop_database, ensure_database, with_database
from devtools.stack import load_service
from shared.migrations import upgrade
from tests.support.infrastructure import Broker, kafka_broker, postgres_server, standards_dir

REPO = Path(__file__).resolve().parents[1]
_SHARED_POSTGRES: contextlib.ExitStack | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs several workers: the suite mostly waits on
    brokers and processes), the controller starts one PostgreSQL server for every worker
    before they start, and hands it on through ``UPSTREAM_TEST_DATABASE_URL``. Each
    worker still starts its own broker, so no worker's events reach another's consumers."""
    global _SHARED_POSTGRES
    is_controller = not hasattr(config, "workerinput")
    parallel = bool(getattr(config.option, "numprocesses", None))
    if not (is_controller and parallel) or os.environ.get("UPSTREAM_TEST_DATABASE_URL"):
        return
    _SHARED_POSTGRES = contextlib.ExitStack()
    work_dir = Path(tempfile.mkdtemp(prefix="upstream-tests-"))
    _SHARED_POSTGRES.callback(shutil.rmtree, work_dir, ignore_errors=True)
    url = _SHARED_POSTGRES.enter_context(postgres_server(work_dir))
    os.environ["UPSTREAM_TEST_DATABASE_URL"] = url


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SHARED_POSTGRES is not None:
        os.environ.pop("UPSTREAM_TEST_DATABASE_URL", None)
        _SHARED_POSTGRES.close()


@pytest.fixture(scope="session")
def standards() -> Path:
    """The public standards beside the repository. Absent, a conformance test skips on a
    developer's machine and fails in CI, where the folder is always laid out."""
    path = standards_dir()
    if not path.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{path} is absent: the conformance tests cannot run")
        pytest.skip(f"{path} is absent")
    return path


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
