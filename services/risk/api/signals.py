"""Signals from council data teams: one or a batch as JSON, or a whole file streamed."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field

from services.risk.api.deps import DataFeed, RiskWork
from services.risk.api.schemas import ImportReport
from services.risk.service_layer import signals
from shared.audit import personal_data
from shared.auth import OrganisationKind, Principal
from shared.http import invalid

router = APIRouter(prefix="/v1/signals", tags=["signals"])


def submitter(principal: Principal) -> signals.Submitter:
    return signals.Submitter(
        organisation=principal.organisation,
        subject=principal.subject,
        own_council_only=principal.kind is OrganisationKind.COUNCIL,
    )


@router.post(
    "",
    response_model=ImportReport,
    summary="Send one signal or a batch (a JSON list of up to 1,000)",
    openapi_extra=personal_data(),
)
async def send_signals(
    body: Annotated[dict[str, Any] | list[dict[str, Any]], Field()],
    principal: DataFeed,
    uow: RiskWork,
) -> ImportReport:
    values = body if isinstance(body, list) else [body]
    outcome = await signals.record_signals(uow, submitter(principal), values)
    return ImportReport.of(outcome)


@router.post(
    "/import",
    response_model=ImportReport,
    summary="Import a CSV (with a header row) or NDJSON file, streamed",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The feed, read as it arrives: one record a line (a quoted CSV "
            "cell may hold line breaks). Each line is checked on its own.",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        },
        **personal_data(),
    },
)
async def import_file(
    principal: DataFeed,
    request: Request,
    uow: RiskWork,
    format: Annotated[
        Literal["csv", "ndjson"] | None,
        Query(description="default: from the Content-Type (text/csv or application/x-ndjson)"),
    ] = None,
) -> ImportReport:
    content_type = request.headers.get("content-type", "").lower()  # (any case: RFC 9110)
    fmt = format or (
        "csv"
        if "csv" in content_type
        else "ndjson"
        if "ndjson" in content_type or "jsonl" in content_type
        else None
    )
    if fmt is None:
        raise invalid("format", "send text/csv or application/x-ndjson, or say ?format=")
    outcome = await signals.import_file(uow, submitter(principal), request.stream(), fmt)
    return ImportReport.of(outcome)
