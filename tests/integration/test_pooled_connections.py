"""An API's pool on a real PostgreSQL: a connection idle for a while is pinged as it leaves
the pool, and one lost meanwhile (its server process gone, as after a restart) is replaced
before a request uses it; one back in the pool just now is handed out unpinged."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared import db
from shared.db import create_engine, plain_postgres_url


async def _backend_pid(engine: db.AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(url: str, pid: int) -> None:
    admin = await asyncpg.connect(plain_postgres_url(url))
    try:
        # With a timeout, it waits for the process to have exited.
        assert await admin.fetchval("SELECT pg_terminate_backend($1, 5000)", pid)
    finally:
        await admin.close()


async def test_a_lost_connection_idle_long_enough_is_replaced_unseen(
    postgres_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # every connection idle enough
    engine = create_engine(postgres_admin_url, pool_size=1)
    try:
        lost = await _backend_pid(engine)
        await _terminate(postgres_admin_url, lost)
        replacement = await _backend_pid(engine)  # no error: the ping found it gone
        assert replacement != lost
    finally:
        await engine.dispose()


async def test_a_connection_back_just_now_is_not_pinged(
    postgres_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)  # none idle enough
    engine = create_engine(postgres_admin_url, pool_size=1)
    try:
        lost = await _backend_pid(engine)
        await _terminate(postgres_admin_url, lost)
        # Unpinged, the lost connection is the one handed out: its first statement fails
        # (and the failure invalidates the pool, so the next checkout connects afresh).
        with pytest.raises(DBAPIError):
            await _backend_pid(engine)
        assert await _backend_pid(engine) != lost
    finally:
        await engine.dispose()


async def test_the_pool_hands_out_the_connection_returned_last(postgres_admin_url: str) -> None:
    engine = create_engine(postgres_admin_url, pool_size=2)
    try:
        first = await engine.connect()
        second = await engine.connect()
        pids = [
            (await held.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            for held in (first, second)
        ]
        await first.close()
        await second.close()  # returned last
        assert await _backend_pid(engine) == pids[1]
    finally:
        await engine.dispose()
