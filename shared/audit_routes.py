"""The audit trail's two routes (search and export), the same in every service: a service
names its information-governance principal, its unit of work and its two use cases, and
gets the router. The query parameters, entry body and export format are ``shared/audit_api.py``.

No ``from __future__ import annotations`` here, on purpose: FastAPI reads the endpoints'
annotations, which are the service's own dependency types passed in, so they must be real
objects when the endpoints are defined, not names to look up later."""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shared.audit import AuditEntry as Entry
from shared.audit import Category, TrailQuery, personal_data
from shared.audit_api import (
    EXPORT_RESPONSES,
    EXPORT_SUMMARY,
    SEARCH_SUMMARY,
    AuditEntry,
    ExportQuery,
    Format,
    SearchQuery,
    export_response,
)

UseCase = Callable[[Any, Any, TrailQuery], Awaitable[Sequence[Entry]]]


def audit_router(
    *, service: str, governance: Any, work: Any, trail: UseCase, export: UseCase
) -> APIRouter:
    """``GET /v1/audit`` and ``GET /v1/audit/export`` over ``trail`` and ``export``;
    ``governance`` and ``work`` are the service's annotated dependencies (the principal
    allowed to read the trail, the unit of work)."""
    router = APIRouter(prefix="/v1/audit", tags=["information governance"])

    @router.get(
        "",
        response_model=list[AuditEntry],
        summary=SEARCH_SUMMARY,
        openapi_extra=personal_data(Category.ACCESS_LOG),
    )
    async def audit_trail(principal: governance, uow: work, query: SearchQuery) -> list[AuditEntry]:
        return [AuditEntry.of(e) for e in await trail(uow, principal, query)]

    @router.get(
        "/export",
        response_model=list[AuditEntry],
        responses=EXPORT_RESPONSES,
        summary=EXPORT_SUMMARY,
        openapi_extra=personal_data(Category.ACCESS_LOG),
    )
    async def audit_export(
        principal: governance,
        uow: work,
        query: ExportQuery,
        request: Request,
        format: Format = None,
    ) -> Response:
        return export_response(
            await export(uow, principal, query), request, format, service=service
        )

    return router
