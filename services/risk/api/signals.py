"""Signals from council data teams: one or a batch as JSON, or a whole file streamed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from services.risk.adapters.tables import imports
from services.risk.assessing import BatchOutcome, ingest
from services.risk.domain.feeds import (
    Row,
    RowError,
    check_parsed,
    lines_of,
    parse_csv,
    parse_ndjson,
)
from services.risk.rulebook import RULEBOOK
from services.risk.settings import RiskSettings
from shared.auth import OrganisationKind, Principal, Role, require
from shared.events.envelope import utc_now
from shared.http import invalid

router = APIRouter(prefix="/v1/signals", tags=["signals"])
DataFeed = Annotated[
    Principal,
    Depends(
        require(
            kinds=[OrganisationKind.COUNCIL, OrganisationKind.OPERATOR],
            roles=[Role.DATA_FEED, Role.OPERATOR],
        )
    ),
]
MAX_REPORTED_ERRORS = 1000


class RowProblem(BaseModel):
    line: int = Field(description="the row's number: its line in a file, its place in a batch")
    field: str
    reason: str


class ImportReport(BaseModel):
    import_id: str
    rows_read: int
    rows_stored: int
    rows_duplicate: int = Field(description="already held: sending a file twice changes nothing")
    rows_rejected: int
    flagged: int
    cases_assessed: int
    errors: list[RowProblem]
    errors_truncated: bool


async def run_import(
    request: Request, principal: Principal, records: AsyncIterator[tuple[int, Any]], fmt: str
) -> ImportReport:
    settings: RiskSettings = request.app.state.settings
    sessions, outbox = request.app.state.sessions, request.app.state.outbox
    total, read, rejected = BatchOutcome(), 0, 0
    errors: list[RowError] = []
    batch: list[Row] = []

    async def flush() -> None:
        async with sessions() as session, session.begin():
            outcome = await ingest(
                session,
                outbox,
                batch,
                secret=settings.resident_key_secret.get_secret_value(),
                ruleset=await RULEBOOK.current(session),
                cooling_off=timedelta(days=settings.flag_cooling_off_days),
                now=utc_now(),
            )
        for name in ("stored", "duplicate", "flagged", "cases_assessed"):
            setattr(total, name, getattr(total, name) + getattr(outcome, name))
        batch.clear()

    async for line, raw in records:
        read += 1
        checked = check_parsed(line, raw)
        if (
            isinstance(checked, Row)
            and principal.kind is OrganisationKind.COUNCIL
            and (checked.signal.council != principal.organisation)
        ):
            checked = [RowError(line, "council", f"{checked.signal.council} is not your council")]
        if isinstance(checked, list):
            rejected += 1
            errors.extend(checked[: max(0, MAX_REPORTED_ERRORS - len(errors))])
            continue
        batch.append(checked)
        if len(batch) >= settings.import_batch_size:
            await flush()
    if batch:
        await flush()
    import_id = str(uuid.uuid4())
    async with sessions() as session, session.begin():
        await session.execute(
            imports.insert().values(
                id=import_id,
                council=principal.organisation,
                submitted_by=principal.subject,
                format=fmt,
                rows_read=read,
                rows_stored=total.stored,
                rows_duplicate=total.duplicate,
                rows_rejected=rejected,
                flagged=total.flagged,
                finished_at=utc_now(),
            )
        )
    return ImportReport(
        import_id=import_id,
        rows_read=read,
        rows_stored=total.stored,
        rows_duplicate=total.duplicate,
        rows_rejected=rejected,
        flagged=total.flagged,
        cases_assessed=total.cases_assessed,
        errors=[RowProblem(line=e.line, field=e.field, reason=e.reason) for e in errors],
        errors_truncated=len(errors) >= MAX_REPORTED_ERRORS and rejected > len(errors),
    )


async def _numbered(values: Iterable[Any]) -> AsyncIterator[tuple[int, Any]]:
    for number, value in enumerate(values, start=1):
        yield number, value


@router.post(
    "",
    response_model=ImportReport,
    summary="Send one signal or a batch (a JSON list of up to 1,000)",
)
async def send_signals(
    body: Annotated[dict[str, Any] | list[dict[str, Any]], Field()],
    principal: DataFeed,
    request: Request,
) -> ImportReport:
    values = body if isinstance(body, list) else [body]
    if len(values) > 1000:
        raise invalid("body", "at most 1,000 signals a request: import larger files")
    return await run_import(request, principal, _numbered(values), "json")


@router.post(
    "/import",
    response_model=ImportReport,
    summary="Import a CSV (with a header row) or NDJSON file, streamed",
)
async def import_file(
    principal: DataFeed,
    request: Request,
    format: Annotated[
        Literal["csv", "ndjson"] | None,
        Query(description="default: from the Content-Type (text/csv or application/x-ndjson)"),
    ] = None,
) -> ImportReport:
    content_type = request.headers.get("content-type", "")
    fmt = format or (
        "csv"
        if "csv" in content_type
        else "ndjson"
        if "ndjson" in content_type or "jsonl" in content_type
        else None
    )
    if fmt is None:
        raise invalid("format", "send text/csv or application/x-ndjson, or say ?format=")
    lines = lines_of(request.stream())
    records = parse_csv(lines) if fmt == "csv" else parse_ndjson(lines)
    return await run_import(request, principal, records, fmt)
