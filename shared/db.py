"""Async SQLAlchemy 2: one engine and one session factory per process, per service database."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import asyncpg
from sqlalchemy import (
    CursorResult,
    Executable,
    Table,
    TextClause,
    bindparam,
    event,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import RowMapping, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SessionFactory = async_sessionmaker[AsyncSession]


def async_url(url: str) -> str:
    """Accept ``postgresql://`` as operators write it; use the asyncpg driver underneath."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def plain_postgres_url(url: str) -> str:
    """The URL as libpq and asyncpg's own ``connect`` read it (no SQLAlchemy driver name)."""
    parsed = make_url(async_url(url)).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


# A connection back in the pool for less than this is taken to be alive: pinging it on every
# checkout cost an API three round trips a request (the dialect pings inside a transaction of
# its own: BEGIN, an empty statement, ROLLBACK), an eighth of intake's.
PING_AFTER_IDLE_SECONDS = 1.0


def create_engine(url: str, *, pool_size: int = 10, pre_ping: bool = True) -> AsyncEngine:
    """``pre_ping``: test a connection as it leaves the pool if it has been idle for a
    second or more, so that a request after a database restart finds a live one (a restart
    longer than that leaves every pooled connection idle for longer; a failure under load
    invalidates the whole pool). Off where every user of the engine retries a lost
    connection itself (a worker's consumers, relay and timers). The pool hands out the
    connection used last (LIFO), so that under light load one stays warm and unpinged."""
    engine = create_async_engine(
        async_url(url), pool_size=pool_size, max_overflow=pool_size, pool_use_lifo=True
    )
    if pre_ping:
        _ping_after_idle(engine)
    return engine


def _ping_after_idle(engine: AsyncEngine) -> None:
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _idle_from(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _alive(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")  # none: connected just now
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            # As SQLAlchemy's own pre-ping: the server went away, so every connection pooled
            # before now is stale; the pool reconnects this one and renews the others.
            raise sa_exc.InvalidatePoolError("a pooled connection was lost") from exc


def session_factory(engine: AsyncEngine) -> SessionFactory:
    # No lazy loads in async code: objects stay usable after commit, loads are explicit.
    return async_sessionmaker(engine, expire_on_commit=False)


async def driver(session: AsyncSession) -> asyncpg.Connection:
    """The session's asyncpg connection, inside the session's transaction: for the statements
    run for every event or request (the inbox, the erasure guard, the outbox), where
    SQLAlchemy's work a statement costs more than asyncpg's and PostgreSQL's together (a
    one-row select: about 0.18 ms of CPU against 0.07), and for whole batches at once
    (``COPY``, arrays). The dialect's
    codecs apply: a ``jsonb`` parameter is JSON text, a ``jsonb`` result is decoded. What it
    runs commits or rolls back with the rest of the session's work."""
    held = await session.connection()
    raw = await held.get_raw_connection()
    adapted, connection = raw.dbapi_connection, raw.driver_connection
    assert adapted is not None and connection is not None, "the session's connection is open"
    if not connection.is_in_transaction():
        # The dialect begins its transaction on its first statement; begun here instead
        # when asyncpg's is first (one BEGIN either way, and no statement only to start it),
        # through the dialect's own adapter, so that its COMMIT or ROLLBACK ends it.
        try:
            await adapted._start_transaction()
        except Exception as exc:
            # As SQLAlchemy reports a statement's failure: this connection is done with.
            await held.invalidate()
            raise sa_exc.OperationalError("BEGIN", None, exc, connection_invalidated=True) from exc
    return connection


# The database (or the connection to it) out of reach: the statement may be retried once it
# is back. SQLAlchemy's wrapped errors and asyncpg's own, for the statements run on its
# connection (``driver``).
DATABASE_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.CannotConnectNowError,
)


async def fetch_one(
    session: AsyncSession, statement: Executable, params: Mapping[str, Any] | None = None
) -> RowMapping | None:
    """The first row of a query as a mapping, or None."""
    return (await session.execute(statement, params)).mappings().first()


async def fetch_all(
    session: AsyncSession, statement: Executable, params: Mapping[str, Any] | None = None
) -> Sequence[RowMapping]:
    """Every row of a query as mappings."""
    return (await session.execute(statement, params)).mappings().all()


async def rows_affected(
    session: AsyncSession, statement: Executable, params: Mapping[str, Any] | None = None
) -> int:
    """Run an INSERT, UPDATE or DELETE; how many rows it touched."""
    result = cast(CursorResult[Any], await session.execute(statement, params))
    return result.rowcount or 0


def oldest_first_deletion(table: Table, column: str, where: str | None = None) -> TextClause:
    """``DELETE`` of up to ``:limit`` rows of ``table`` whose ``column`` is before
    ``:before`` (and which meet ``where``, SQL written as the condition of the index on
    ``column``), oldest first: for retention sweeps of tables that keep months of rows. The
    rows are found through an index on ``column`` and deleted by their addresses (a TID
    scan), so the statement reads the batch due, not the table: ``IN (subquery)`` is
    planned as a scan of the whole table joined to the batch, and the condition written
    again outside as a scan of every row due. For rows no longer updated once due (an
    update gives a row a new address)."""
    return text(
        f"""
        DELETE FROM {table.name}
        WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM {table.name}
            WHERE {table.c[column].name} < :before{f" AND {where}" if where else ""}
            ORDER BY {table.c[column].name}
            LIMIT :limit
        ))
        """
    )


async def update_returning(
    session: AsyncSession, table: Table, where: Mapping[str, Any], values: Mapping[str, Any]
) -> RowMapping | None:
    """``UPDATE table SET values WHERE`` each of ``where`` equals its value, ``RETURNING`` the
    row (None: no such row). For the updates of every event or request: the statement is
    built once for each table and set of columns, its values bound (built anew for each
    call, it cost more than PostgreSQL's work on it)."""
    statement = _updating(table, tuple(where), tuple(values), returning=True)
    return await fetch_one(session, statement, _bound(where, values))


async def update_where(
    session: AsyncSession, table: Table, where: Mapping[str, Any], values: Mapping[str, Any]
) -> int:
    """As ``update_returning``, without the row: how many rows it touched."""
    statement = _updating(table, tuple(where), tuple(values), returning=False)
    return await rows_affected(session, statement, _bound(where, values))


@functools.cache
def _updating(
    table: Table, keys: tuple[str, ...], names: tuple[str, ...], *, returning: bool
) -> Executable:
    statement = (
        update(table)
        .where(*(table.c[key] == bindparam(f"k_{key}") for key in keys))
        .values(bound_columns(table, names))
    )
    return statement.returning(table) if returning else statement


def _bound(where: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    return {**{f"k_{key}": value for key, value in where.items()}, **bound(values)}


def bound_columns(table: Table, names: Iterable[str]) -> dict[str, Any]:
    """Each column's value as a parameter (``v_`` and its name: a bound value may not share
    its column's name in VALUES or SET), for a statement built once and run with ``bound``
    values: one built for each call cost more than PostgreSQL's work on it."""
    return {name: bindparam(f"v_{name}", type_=table.c[name].type) for name in names}


def bound(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values for a statement built with ``bound_columns``."""
    return {f"v_{name}": value for name, value in values.items()}


async def advisory_lock(session: AsyncSession, name: str) -> None:
    """Hold the lock called ``name`` until the transaction ends: one holder at a time of
    whatever it names (a new resident's family, a council's profiles, an address's sign-in
    requests), queued behind a holder's commit. Names are hashed to PostgreSQL's lock keys:
    two names sharing a hash only wait for each other needlessly."""
    await (await driver(session)).execute("SELECT pg_advisory_xact_lock(hashtext($1))", name)


# PostgreSQL's "try again" answers: a serialization failure, a deadlock.
RETRY_SQLSTATES = frozenset({"40001", "40P01"})


async def lock_by_id(
    session: AsyncSession, table: Table, ids: Iterable[Any]
) -> dict[Any, RowMapping]:
    """These rows of ``table`` (by its ``id``), locked until the transaction ends, taken in
    one order (by id) so two transactions locking overlapping sets wait for each other and
    never in a circle. A missing id is left out."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await fetch_all(
        session,
        select(table).where(table.c.id.in_(wanted)).order_by(table.c.id).with_for_update(),
    )
    return {row["id"]: row for row in rows}
