"""Subject access requests (UK GDPR Article 15), for a council's information-governance
team (or an operator): open one for a resident, follow it, extend its deadline (once, for a
complex request), and read its export as JSON or as a page. Use cases:
``service_layer/subject_access.py``."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field

from services.referrals.api.deps import ReferralsWork
from services.referrals.domain.subject_access import MAX_EXTENSION_REASON
from services.referrals.service_layer import subject_access
from services.referrals.service_layer.subject_access import RequestStatus
from shared.audit import Category, personal_data
from shared.auth import InformationGovernance
from shared.input_policy import IsoDate

router = APIRouter(prefix="/v1/subject-access-requests", tags=["information governance"])

HTML = "text/html"
templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _words(value: Any) -> str:
    return str(getattr(value, "value", value) or "").replace("_", " ")


def _when(value: datetime | str | None) -> str:
    if isinstance(value, datetime):
        return value.strftime("%d %B %Y %H:%M UTC")
    return value or ""


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


templates.filters |= {"words": _words, "when": _when, "shown": _shown}
# The page has no script, no image and no form: its own inline style only.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class SubjectAccessRequestCreate(BaseModel):
    resident_id: uuid.UUID = Field(description="the resident (referrals service id)")


class DeadlineExtension(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reason: str = Field(
        min_length=1,
        max_length=MAX_EXTENSION_REASON,
        description="why the request is complex enough to need two further months",
    )
    resident_told_on: IsoDate = Field(
        description="the day the resident was told of the extension and why (Article 12(3))"
    )


class ExtensionPublic(BaseModel):
    due_by: date = Field(description="the extended deadline: three calendar months after receipt")
    reason: str
    resident_told_on: date
    extended_by: str
    extended_by_org: str
    extended_at: datetime


class SubjectAccessRequestPublic(BaseModel):
    id: str
    council: str
    resident_id: str
    requested_by: str
    requested_by_org: str
    requested_at: datetime
    due_by: date = Field(
        description="the deadline in force: one calendar month after receipt (Article 12(3)), "
        "or the extended deadline once extended"
    )
    original_due_by: date = Field(description="one calendar month after receipt")
    extension: ExtensionPublic | None = Field(
        description="the extension by two further months, if the deadline was extended"
    )
    completed_at: datetime | None
    status: RequestStatus
    contributed: list[str] = Field(description="the services that have answered")
    pending: list[str] = Field(description="the services still to answer")

    @classmethod
    def of(cls, request: subject_access.SubjectAccessRequest) -> SubjectAccessRequestPublic:
        return cls.model_validate(request, from_attributes=True)


class ContributionPublic(BaseModel):
    service: str
    contributed_at: datetime
    sections: dict[str, list[dict[str, Any]]] = Field(
        description="kind of record -> the records, each as the service holds it"
    )
    reads: list[dict[str, Any]] = Field(description="the service's audit trail of these reads")


class SubjectAccessExportPublic(BaseModel):
    request: SubjectAccessRequestPublic
    contributions: list[ContributionPublic]


Format = Annotated[
    Literal["json", "html"] | None,
    Query(description="json or html; default: from the Accept header (text/html), else json"),
]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubjectAccessRequestPublic,
    responses={404: {"description": "no such resident in the caller's council"}},
    summary="Ask every service for what it holds about a resident (subject access)",
    openapi_extra=personal_data(Category.PROGRESS),
)
async def request_subject_access(
    body: SubjectAccessRequestCreate, principal: InformationGovernance, uow: ReferralsWork
) -> SubjectAccessRequestPublic:
    request = await subject_access.request_subject_access(uow, principal, str(body.resident_id))
    return SubjectAccessRequestPublic.of(request)


@router.get(
    "/{request_id}",
    response_model=SubjectAccessRequestPublic,
    summary="How far a subject access request has got: who has answered, who is pending",
    openapi_extra=personal_data(Category.PROGRESS),
)
async def subject_access_status(
    request_id: uuid.UUID, principal: InformationGovernance, uow: ReferralsWork
) -> SubjectAccessRequestPublic:
    request = await subject_access.request_status(uow, principal, str(request_id))
    return SubjectAccessRequestPublic.of(request)


@router.post(
    "/{request_id}/extension",
    response_model=SubjectAccessRequestPublic,
    responses={
        404: {"description": "no such request in the caller's council"},
        409: {"description": "extended already, complete, or past its original deadline"},
    },
    summary="Extend a complex request's deadline by two further months (Article 12(3))",
    openapi_extra=personal_data(Category.PROGRESS),
)
async def extend_subject_access_deadline(
    request_id: uuid.UUID,
    body: DeadlineExtension,
    principal: InformationGovernance,
    uow: ReferralsWork,
) -> SubjectAccessRequestPublic:
    request = await subject_access.extend_deadline(
        uow,
        principal,
        str(request_id),
        reason=body.reason,
        resident_told_on=body.resident_told_on,
    )
    return SubjectAccessRequestPublic.of(request)


@router.get(
    "/{request_id}/export",
    response_model=SubjectAccessExportPublic,
    responses={
        200: {
            "description": "the export: JSON, or a readable page (?format=html)",
            "content": {HTML: {"schema": {"type": "string"}}},
        }
    },
    summary="The export: everything each service contributed, as JSON or a page",
    openapi_extra=personal_data(*Category),
)
async def subject_access_export(
    request_id: uuid.UUID,
    principal: InformationGovernance,
    uow: ReferralsWork,
    request: Request,
    format: Format = None,
) -> Any:
    export = await subject_access.subject_access_export(uow, principal, str(request_id))
    body = SubjectAccessExportPublic(
        request=SubjectAccessRequestPublic.of(export.request),
        contributions=[
            ContributionPublic.model_validate(c, from_attributes=True) for c in export.contributions
        ],
    )
    wants_html = format == "html" or (format is None and HTML in request.headers.get("accept", ""))
    if not wants_html:
        return body
    page = templates.get_template("subject_access.html").render(
        request=body.request, contributions=body.contributions
    )
    return HTMLResponse(page, headers=PAGE_HEADERS)
