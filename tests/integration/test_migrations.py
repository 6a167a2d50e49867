"""Each service's real Alembic revisions build exactly what its models describe."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from devtools.stack import SERVICE_NAMES, load_service
from shared.db import create_engine
from shared.migrations import schema_drift
from tests.conftest import MakeDatabase

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", SERVICE_NAMES)
async def test_models_and_migrations_agree(service: str, service_database: MakeDatabase) -> None:
    engine = create_engine(await service_database(service))
    try:
        assert await schema_drift(engine, load_service(service)) == []
        async with engine.connect() as connection:
            tables = set(
                (
                    await connection.scalars(
                        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                    )
                ).all()
            )
        assert {"outbox", "inbox", "alembic_version"} <= tables
    finally:
        await engine.dispose()
