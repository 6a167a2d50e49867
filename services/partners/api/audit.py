"""The audit trail of reads, for a council's information-governance team: a search and an
export. Use cases: ``service_layer/audit.py``; the shared part: ``shared/audit_api.py``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.partners.api.deps import InformationGovernance, PartnersWork
from services.partners.service_layer import audit
from shared.audit import Category, personal_data
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

router = APIRouter(prefix="/v1/audit", tags=["information governance"])


@router.get(
    "",
    response_model=list[AuditEntry],
    summary=SEARCH_SUMMARY,
    openapi_extra=personal_data(Category.ACCESS_LOG),
)
async def audit_trail(
    principal: InformationGovernance, uow: PartnersWork, query: SearchQuery
) -> list[AuditEntry]:
    return [AuditEntry.of(e) for e in await audit.audit_trail(uow, principal, query)]


@router.get(
    "/export",
    response_model=list[AuditEntry],
    responses=EXPORT_RESPONSES,
    summary=EXPORT_SUMMARY,
    openapi_extra=personal_data(Category.ACCESS_LOG),
)
async def audit_export(
    principal: InformationGovernance,
    uow: PartnersWork,
    query: ExportQuery,
    request: Request,
    format: Format = None,
) -> Response:
    entries = await audit.audit_export(uow, principal, query)
    return export_response(entries, request, format, service="partners")
