"""The HTTP side every service shares: app factory, trace middleware, health and metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import CurrentPrincipal, Principal, TokenVerifier
from shared.context import current_trace, new_id, safe_id, traced
from shared.db import create_engine, session_factory
from shared.errors import Refused
from shared.messaging.outbox import Outbox, backlog
from shared.observability import HTTP_LATENCY, HTTP_REQUESTS, OUTBOX_BACKLOG
from shared.service import ServiceDefinition
from shared.settings import ServiceSettings
from shared.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 2.0


class TraceMiddleware:
    """Sets the trace for the request (correlation from ``X-Correlation-ID`` or new; the
    request's own id is the causation of any event it writes) and records request metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        offered = headers.get(b"x-correlation-id", b"").decode("latin-1")
        correlation_id = safe_id(offered) or new_id()
        request_id = new_id()
        status_code = 500
        started = time.perf_counter()

        async def send_with_trace(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-correlation-id", correlation_id.encode()),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        with traced(correlation_id, request_id):
            try:
                await self.app(scope, receive, send_with_trace)
            finally:
                route = getattr(scope.get("route"), "path", "unmatched")
                HTTP_REQUESTS.labels(scope["method"], route, str(status_code)).inc()
                HTTP_LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)


class ApiProblem(Exception):
    """A refusal with a reason, rendered as ``{"detail": reason, ...extra}`` (the same shape
    as a validation error), e.g. a 409 listing the statuses allowed instead."""

    def __init__(self, status_code: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status_code, self.detail, self.extra = status_code, detail, extra


def invalid(field: str, reason: str) -> ApiProblem:
    """A 422 naming the field and the reason, for checks a schema cannot make."""
    return ApiProblem(422, f"{field}: {reason}", errors=[{"field": field, "reason": reason}])


async def _problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail, **exc.extra})


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, rest = parts[0], parts[1:]
        return ".".join(rest) if where == "body" and rest else ".".join([where, *rest])
    return ".".join(parts)


async def _refused(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)
    return JSONResponse(status_code=exc.status_code, content=exc.body())


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field(tuple(err["loc"])), "reason": err["msg"], "type": err["type"]}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{e['field'] or 'request'}: {e['reason']}" for e in errors)
    return JSONResponse(status_code=422, content={"detail": summary, "errors": errors})


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    trace = current_trace()
    return JSONResponse(
        status_code=500,
        content={
            "detail": "internal error; quote the correlation id when reporting it",
            "correlation_id": trace.correlation_id if trace else None,
        },
    )


async def _database_ready(app: FastAPI) -> str:
    try:
        async with app.state.sessions() as session:
            await asyncio.wait_for(session.execute(text("SELECT 1")), CHECK_TIMEOUT_S)
        return "ok"
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"


async def _broker_ready(bootstrap_servers: str) -> str:
    """Reachable means one bootstrap server accepts a connection."""
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host.strip("[]"), int(port)), CHECK_TIMEOUT_S
            )
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        return "ok"
    return "unreachable"


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(db_session)]


async def unit_of_work(request: Request) -> AsyncIterator[UnitOfWork[Any]]:
    """The unit of work a route hands its use case; each service types it as its own, e.g.
    ``ReferralsWork = Annotated[ReferralsUnitOfWork, Depends(unit_of_work)]``."""
    state = request.app.state
    async with state.sessions() as session:
        yield state.definition.new_unit_of_work(session, state.outbox, state.settings)


def create_app(definition: ServiceDefinition, settings: ServiceSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url.get_secret_value())
        app.state.settings = settings
        app.state.definition = definition
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.token_verifier = TokenVerifier(settings)
        app.state.outbox = Outbox(definition.registry, source=settings.source)
        log.info("api started", extra={"port": settings.port})
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title=f"Upstream {definition.name}",
        description=definition.description,
        version="0.1.0",
        lifespan=lifespan,
    )
    app.add_middleware(TraceMiddleware)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ApiProblem, _problem)
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(Exception, _unexpected_error)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": definition.name}

    @app.get("/readyz", tags=["operations"], summary="Database and broker are reachable")
    async def readyz(request: Request) -> JSONResponse:
        database, broker = await asyncio.gather(
            _database_ready(request.app), _broker_ready(settings.kafka_bootstrap_servers)
        )
        ready = database == "ok" and broker == "ok"
        return JSONResponse(
            status_code=200 if ready else 503,
            content={
                "status": "ready" if ready else "not ready",
                "service": definition.name,
                "checks": {"database": database, "broker": broker},
            },
        )

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics(request: Request) -> PlainTextResponse:
        try:
            async with request.app.state.sessions() as session:
                OUTBOX_BACKLOG.set(await asyncio.wait_for(backlog(session), CHECK_TIMEOUT_S))
        except Exception:
            log.warning("outbox backlog unavailable for /metrics", exc_info=True)
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/me", tags=["operations"], summary="The caller, as its bearer token says")
    async def me(principal: CurrentPrincipal) -> Principal:
        return principal

    for router in definition.routers:
        app.include_router(router)
    return app
