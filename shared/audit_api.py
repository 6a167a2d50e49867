"""The audit trail over HTTP, the same in every service: the search's query parameters, the
body of an entry, and the export as CSV or JSON. The routes stay in each service's
``api/audit.py``; the mechanism is ``shared/audit.py``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from shared.audit import AuditEntry as Entry
from shared.audit import TrailQuery, entries_csv
from shared.input_policy import IsoDateTime

CSV = "text/csv"
ExportFormat = Literal["csv", "json"]


class AuditEntry(BaseModel):
    at: datetime
    subject: str
    organisation: str
    organisation_kind: str
    roles: list[str]
    operation: str
    purpose: str
    council: str | None
    resident_ids: list[str]
    case_ids: list[str]
    data_categories: list[str]

    @classmethod
    def of(cls, entry: Entry) -> AuditEntry:
        return cls.model_validate(entry, from_attributes=True)


Resident = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="who was read: the resident's id (risk: the pseudonymous profile, or a "
        "resident key a flag carried)",
    ),
]
Case = Annotated[uuid.UUID | None, Query(description="the case read (every service knows it)")]
Subject = Annotated[
    str | None, Query(min_length=1, max_length=256, description="the user who read")
]
Organisation = Annotated[
    str | None,
    Query(min_length=1, max_length=128, description="the organisation that read"),
]
Since = Annotated[IsoDateTime | None, Query(description="from this time (inclusive)")]
Until = Annotated[IsoDateTime | None, Query(description="before this time")]


def _utc(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _query(
    resident: str | None,
    case: uuid.UUID | None,
    subject: str | None,
    organisation: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> TrailQuery:
    return TrailQuery(
        resident_id=resident,
        case_id=str(case) if case else None,
        subject=subject,
        organisation=organisation,
        since=_utc(since),
        until=_utc(until),
        limit=limit,
    )


def search_query(
    resident: Resident = None,
    case: Case = None,
    subject: Subject = None,
    organisation: Organisation = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> TrailQuery:
    return _query(resident, case, subject, organisation, since, until, limit)


def export_query(
    resident: Resident = None,
    case: Case = None,
    subject: Subject = None,
    organisation: Organisation = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> TrailQuery:
    return _query(resident, case, subject, organisation, since, until, limit)


SearchQuery = Annotated[TrailQuery, Depends(search_query)]
ExportQuery = Annotated[TrailQuery, Depends(export_query)]
Format = Annotated[
    ExportFormat | None,
    Query(description="csv or json; default: from the Accept header (text/csv), else json"),
]

SEARCH_SUMMARY = (
    "Who read a resident's or a case's data, what a user or an organisation read (newest first)"
)
EXPORT_SUMMARY = "The trail as a file: CSV (?format=csv or Accept: text/csv) or JSON"
# The export's answer: the same entries, as JSON or as CSV.
EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the entries, newest first",
        "content": {CSV: {"schema": {"type": "string"}}},
    }
}


def export_response(
    entries: Sequence[Entry], request: Request, fmt: ExportFormat | None, *, service: str
) -> Response:
    """The export in the format asked for, as a download named for the service and day."""
    wants_csv = fmt == "csv" or (fmt is None and CSV in request.headers.get("accept", ""))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{service}-audit-{stamp}.{'csv' if wants_csv else 'json'}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if wants_csv:
        return Response(entries_csv(entries), media_type=f"{CSV}; charset=utf-8", headers=headers)
    body = [AuditEntry.of(e).model_dump(mode="json") for e in entries]
    return JSONResponse(body, headers=headers)
