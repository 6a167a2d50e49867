"""The bare endpoint intake is measured beside (``test_intake.py``): a FastAPI app whose one
route parses the JSON body and stores it with one asyncpg ``INSERT``, nothing else, served
by uvicorn as the referrals API is (``shared.process``).

``python -m tests.bench.intake_bare DATABASE_URL PORT`` (a plain ``postgresql://`` URL).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvicorn
from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

TABLE = "bench_bare_intake"
CREATE_TABLE = f"CREATE TABLE IF NOT EXISTS {TABLE} (id uuid PRIMARY KEY, body jsonb NOT NULL)"
POOL_SIZE = 10  # as the referrals API's engine (shared.db.create_engine)


def bare_app(database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(
            database_url, min_size=POOL_SIZE, max_size=2 * POOL_SIZE
        )
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/bare", status_code=status.HTTP_201_CREATED)
    async def receive(body: dict[str, Any], request: Request) -> JSONResponse:
        row_id = uuid.uuid4()
        await request.app.state.pool.execute(
            f"INSERT INTO {TABLE} (id, body) VALUES ($1, $2::jsonb)",
            row_id,
            (await request.body()).decode(),  # as sent; FastAPI has parsed it already
        )
        return JSONResponse({"id": str(row_id)}, status_code=status.HTTP_201_CREATED)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


if __name__ == "__main__":
    url, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(bare_app(url), host="127.0.0.1", port=port, log_config=None, access_log=False)
