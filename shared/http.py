"""The HTTP side every service shares: app factory, trace middleware, health and metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import parse_qsl

import asyncpg
import swagger_ui_bundle
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.audit import personal_data
from shared.auth import CurrentPrincipal, Principal, TokenVerifier
from shared.clock import clock_from
from shared.context import current_trace, new_id, safe_id, traced
from shared.db import RETRY_SQLSTATES, create_engine, session_factory
from shared.errors import Refused
from shared.input_policy import (
    UnreadableJson,
    problems_in,
    read_json,
    text_problem,
    validation_reason,
)
from shared.messaging.outbox import Outbox, backlog
from shared.observability import HTTP_LATENCY, HTTP_REQUESTS, OUTBOX_BACKLOG
from shared.openapi import truthful_openapi
from shared.redaction import safe_reason
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


MAX_JSON_BODY = 8 * 1024 * 1024
# Bodies read as whole text and held to the policy here; CSV and NDJSON feeds are streamed
# and held to it row by row (a bad row is rejected, the rest of the file is read).
_CHECKED_TEXT_BODIES = ("application/yaml", "application/x-yaml", "text/yaml", "text/plain")


async def _send_json(
    send: Send, status_code: int, content: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    response = JSONResponse(status_code=status_code, content=content, headers=headers)
    await send(
        {"type": "http.response.start", "status": status_code, "headers": response.raw_headers}
    )
    await send({"type": "http.response.body", "body": response.body})


def _refusal(problems: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "detail": "; ".join(f"{field}: {reason}" for field, reason in problems),
        "errors": [
            {"field": field, "reason": reason, "type": "input_policy"} for field, reason in problems
        ],
    }


class InputPolicyMiddleware:
    """Holds every request to ``shared.input_policy`` before any route runs: the path, the
    query and the body (JSON, or a text body such as a YAML ruleset). A refusal is a 422
    naming each field and why, in the same shape as any other validation error."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problems = [
            ("path", reason)
            for segment in str(scope.get("path", "")).split("/")
            if (reason := text_problem(segment, numeral=True)) is not None
        ]
        query = scope.get("query_string", b"").decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
            if (reason := text_problem(name)) is not None:
                problems.append(("query", f"a parameter name {reason}"))
            elif (reason := text_problem(value, numeral=True)) is not None:
                problems.append((f"query.{name}", reason))
        for raw_name, raw_value in scope.get("headers") or []:
            if (reason := text_problem(raw_value.decode("latin-1"))) is not None:
                problems.append((f"header.{raw_name.decode('latin-1')}", reason))
        headers = dict(scope.get("headers") or [])
        # A media type is case-insensitive (RFC 9110), and the framework reads the body as
        # JSON whatever its case: so must the policy.
        content_type = (
            headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        )
        is_json = content_type == "application/json" or content_type.endswith("+json")
        if not (is_json or content_type in _CHECKED_TEXT_BODIES):
            if problems:
                await _send_json(send, 422, _refusal(problems))
                return
            await self.app(scope, receive, send)
            return
        body, too_large = await _read_body(receive, MAX_JSON_BODY)
        if too_large:
            await _send_json(
                send, 413, {"detail": f"the body is larger than {MAX_JSON_BODY // 2**20} MiB"}
            )
            return
        problems += _body_problems(body, is_json)
        if problems:
            await _send_json(send, 422, _refusal(problems))
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), False


def _body_problems(body: bytes, is_json: bool) -> list[tuple[str, str]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [("body", f"is not UTF-8 (byte {exc.start + 1})")]
    if not is_json:
        for number, line in enumerate(text.splitlines(), start=1):
            if (reason := text_problem(line)) is not None and "control" in reason:
                return [("body", f"line {number} {reason}")]
        return []
    try:
        document = read_json(text)
    except json.JSONDecodeError:
        return []  # not JSON: the route's own validation says so, naming where
    except UnreadableJson as exc:
        return [("body", str(exc))]
    return list(problems_in(document))


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read once for the policy, handed on to the app as if it came from the
    client; anything after it (a disconnect) comes from the client again."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class ErrorMiddleware:
    """Answers any unhandled exception with the project's 500 body and keeps the connection
    usable: the error never reaches the server, which would drop a keep-alive connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            if started:
                raise  # half a response went out: only closing the connection is honest
            lost = _database_lost(exc)
            if lost or _conflicted(exc):
                # Not the request's fault nor a bug: the same request succeeds once the
                # database is back (the failure has renewed the connection pool), or once
                # the other request touching the same records has gone through.
                log.warning("database unreachable or busy", extra={"error": safe_reason(exc)})
                await _send_json(
                    send,
                    503,
                    {
                        "detail": "the database is unavailable for a moment: try again"
                        if lost
                        else "another change to the same records was made at the same moment: "
                        "try again"
                    },
                    {"Retry-After": "1"},
                )
                return
            if (refused := _refused_by_the_database(exc)) is not None:
                await _send_json(send, *refused)  # (a wrapper no handler is registered for)
                return
            log.error("unhandled error", exc_info=exc)
            await _send_json(send, 500, _internal_error_body())


# A connection lost or refused, not a bug that SQLAlchemy wraps as an interface error (a
# bad parameter, a session used twice at once) nor a timeout: those stay a 500.
_CONNECTION_LOST = (ConnectionError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError)


def _conflicted(exc: BaseException) -> bool:
    """PostgreSQL's "try again": a deadlock or a serialization failure with a request that
    touched the same rows at the same moment. Nothing was written; the same request goes
    through once the other has (an Idempotency-Key makes the retry safe)."""
    if not isinstance(exc, sa_exc.DBAPIError) or exc.orig is None:
        return False
    return getattr(exc.orig.__cause__, "sqlstate", None) in RETRY_SQLSTATES


def _database_lost(exc: BaseException | None) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    while exc is not None:
        if isinstance(exc, _CONNECTION_LOST):
            return True
        exc = exc.__cause__
    return False


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
        {"field": _field(tuple(err["loc"])), "reason": validation_reason(err), "type": err["type"]}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{e['field'] or 'request'}: {e['reason']}" for e in errors)
    return JSONResponse(status_code=422, content={"detail": summary, "errors": errors})


def _internal_error_body() -> dict[str, Any]:
    trace = current_trace()
    return {
        "detail": "internal error; quote the correlation id when reporting it",
        "correlation_id": trace.correlation_id if trace else None,
    }


# What an integrity or data error from PostgreSQL means for the caller (by SQLSTATE class).
_DATABASE_REFUSALS = {
    "23505": (409, "conflicts with what is already stored"),
    "23503": (422, "refers to something that does not exist"),
    "23502": (422, "leaves out something that is required"),
    "23514": (422, "breaks a rule on what may be stored"),
    "22": (422, "holds a value the database cannot store"),
}


async def _database_refusal(_: Request, exc: Exception) -> JSONResponse:
    """A constraint or data error is the request's fault, not the server's: a 4xx naming
    the constraint or column, never the values (``shared.redaction``)."""
    assert isinstance(exc, sa_exc.DBAPIError)
    refused = _refused_by_the_database(exc)
    if refused is None:
        log.error("unhandled database error", exc_info=exc)
        return JSONResponse(status_code=500, content=_internal_error_body())
    return JSONResponse(status_code=refused[0], content=refused[1])


def _refused_by_the_database(exc: BaseException) -> tuple[int, dict[str, str]] | None:
    """The status and body for an error that is the request's fault (a constraint, a value
    the database cannot store: SQLSTATE classes 23 and 22, asyncpg's own refusal of a
    parameter before the server sees it among them, as 22000), whichever wrapper SQLAlchemy
    chose for it (one it does not map, such as a character not in the database's encoding
    or asyncpg's refusal, is a bare ``DBAPIError``); None for any other error."""
    if not isinstance(exc, sa_exc.DBAPIError) or exc.orig is None:
        return None
    driver_error = exc.orig.__cause__
    sqlstate = str(getattr(driver_error, "sqlstate", "") or "")
    status_code, reason = _DATABASE_REFUSALS.get(
        sqlstate, _DATABASE_REFUSALS.get(sqlstate[:2], (0, ""))
    )
    if not status_code:
        return None
    what = getattr(driver_error, "constraint_name", None) or getattr(
        driver_error, "column_name", None
    )
    log.warning("request refused by the database", extra={"error": safe_reason(exc)})
    return status_code, {"detail": f"the request {reason}" + (f" ({what})" if what else "")}


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


class MarkdownResponse(PlainTextResponse):
    media_type = "text/markdown"


def serve_api_docs(app: FastAPI) -> None:
    """``/docs`` with Swagger UI served by the service itself: council networks (and this
    project's machines) block CDNs, where FastAPI's default page loads it from."""
    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path))

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )


def create_app(definition: ServiceDefinition, settings: ServiceSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url.get_secret_value())
        app.state.settings = settings
        app.state.definition = definition
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.token_verifier = TokenVerifier(settings)
        app.state.outbox = Outbox(
            definition.registry, source=settings.source, clock=clock_from(settings.clock_file)
        )
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
        docs_url=None,  # served below from the service's own copy of Swagger UI
        redoc_url=None,
    )
    app.openapi = truthful_openapi(app)  # type: ignore[method-assign]  # FastAPI's documented hook
    serve_api_docs(app)
    # Outermost last: the trace wraps everything, errors are caught inside it, and the input
    # policy runs before any route.
    app.add_middleware(InputPolicyMiddleware)
    app.add_middleware(ErrorMiddleware)
    app.add_middleware(TraceMiddleware)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ApiProblem, _problem)
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(sa_exc.IntegrityError, _database_refusal)
    app.add_exception_handler(sa_exc.DataError, _database_refusal)

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="The process is alive",
        openapi_extra=personal_data(),
    )
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": definition.name}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Database and broker are reachable",
        openapi_extra=personal_data(),
    )
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

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
        openapi_extra=personal_data(),
    )
    async def metrics(request: Request) -> PlainTextResponse:
        try:
            async with request.app.state.sessions() as session:
                OUTBOX_BACKLOG.set(await asyncio.wait_for(backlog(session), CHECK_TIMEOUT_S))
        except Exception:
            log.warning("outbox backlog unavailable for /metrics", exc_info=True)
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/v1/me",
        tags=["operations"],
        summary="The caller, as its bearer token says",
        openapi_extra=personal_data(),  # the caller's own token, no resident's data
    )
    async def me(principal: CurrentPrincipal) -> Principal:
        return principal

    for router in definition.routers:
        app.include_router(router)
    return app
