"""Alembic per service: each service owns its migrations and its database.

Migrations run as a start-up step (``python -m services.<name> migrate``, or the stack and
the tests through ``upgrade``), never with ``create_all``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, NamedTuple

import sqlalchemy as sa
from alembic import command, context
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from shared.db import async_url
from shared.service import ServiceDefinition

FILE_TEMPLATE = "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s"


def alembic_config(definition: ServiceDefinition, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(definition.migrations_dir))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.set_main_option("sqlalchemy.url", async_url(database_url).replace("%", "%%"))
    config.attributes["definition"] = definition
    return config


def upgrade(definition: ServiceDefinition, database_url: str, revision: str = "head") -> None:
    """Run the service's migrations up to ``revision``, then its seeds (at head); safe to
    call from inside an event loop."""
    config = alembic_config(definition, database_url)

    def migrate_and_seed() -> None:
        command.upgrade(config, revision)
        if revision == "head" and definition.seeds:
            asyncio.run(run_seeds(definition, database_url))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        migrate_and_seed()
        return
    # Alembic's async env calls asyncio.run(), which cannot nest: use a thread of its own.
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate_and_seed()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"migrate-{definition.name}")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


async def run_seeds(definition: ServiceDefinition, database_url: str) -> None:
    engine = create_async_engine(async_url(database_url), poolclass=pool.NullPool)
    try:
        async with AsyncSession(engine) as session, session.begin():
            for seed in definition.seeds:
                await seed(session)
    finally:
        await engine.dispose()


def run_env() -> None:
    """The body of every service's ``migrations/env.py``."""
    config = context.config
    definition: ServiceDefinition = config.attributes["definition"]
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is set by alembic_config()"
    options: dict[str, Any] = {
        "target_metadata": definition.target_metadata,
        "compare_type": True,
        "compare_server_default": True,
    }
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return

    def migrate(connection: Connection) -> None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        try:
            async with engine.connect() as connection:
                await connection.run_sync(migrate)
        finally:
            await engine.dispose()

    asyncio.run(run_async())


async def schema_drift(engine: AsyncEngine, definition: ServiceDefinition) -> list[Any]:
    """Differences between the service's models and its migrated database (empty: in step)."""

    def compare(connection: Connection) -> list[Any]:
        migration_context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        # Alembic compares a list of MetaData too (documented), though its hint names one.
        metadata: Any = definition.target_metadata
        return list(compare_metadata(migration_context, metadata))

    async with engine.connect() as connection:
        return await connection.run_sync(compare)


# -- frozen operations for the services' revisions (a later change gets ``_v2``) ----------


class IndexSpec(NamedTuple):
    """An index a revision adds: its name, table, columns (or expressions) and, for a
    partial index, its condition."""

    name: str
    table: str
    columns: list[str | sa.TextClause]
    where: str | None = None


def create_indexes_concurrently_v1(indexes: list[IndexSpec]) -> None:
    """Build each index CONCURRENTLY, outside the revision's transaction: on a database of
    years a build takes a while, and a plain CREATE INDEX would stop every write to its
    table meanwhile. A build that fails (a deadlock, a cancel) leaves an invalid index
    behind: drop it, then migrate again."""
    from alembic import op

    with op.get_context().autocommit_block():
        for index in indexes:
            op.create_index(
                index.name,
                index.table,
                index.columns,
                postgresql_where=sa.text(index.where) if index.where else None,
                postgresql_concurrently=True,
            )


def drop_indexes_concurrently_v1(indexes: list[IndexSpec]) -> None:
    """The downgrade of ``create_indexes_concurrently_v1``: each index dropped, last first."""
    from alembic import op

    with op.get_context().autocommit_block():
        for index in reversed(indexes):
            op.drop_index(index.name, table_name=index.table, postgresql_concurrently=True)
