"""The council's reporting pages: outcomes, rule evaluation and reach, for its service
managers and its information-governance team (or an operator). Routes only: who is asking
and the filters in, the same use cases the API calls (``service_layer/reporting.py``), a
page, a CSV or a redirect out. Not in the OpenAPI document: these are pages, not an API
(as the partner web inbox's); aggregates only, like the API's reports.

A browser comes either with ``Authorization: Bearer`` (a council's SSO proxy sends it) or
with the session cookie set by ``/reports/sign-in`` (pasting an access token)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from services.referrals.api import reporting as reporting_api
from services.referrals.api.deps import ReferralsWork
from services.referrals.service_layer import reporting
from services.referrals.service_layer.reporting import ReportQuery
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from services.referrals.web.pages import (
    FILTER_LABELS,
    FORM_COOKIE,
    HERE,
    PREFIX,
    SESSION_COOKIE,
    FilterForm,
    filter_form,
    form_token,
    never_reached,
    outcome_headlines,
    outcome_tables,
    page,
    reach_tables,
    rules_tables,
    safe_next,
    session_csrf,
    with_form_cookie,
    with_session,
    without_session,
)
from shared.auth import InvalidToken, OrganisationKind, Principal, Role, TokenVerifier
from shared.errors import Invalid, NotFound
from shared.settings import ServiceSettings
from shared.vocabulary import Need
from shared.web import SECURITY_HEADERS, FormRefused, form_of, same, see_other

router = APIRouter(prefix=PREFIX, include_in_schema=False)

COUNCIL = re.compile(r"^[ENSWK][0-9]{8}$")
READER_ROLES = frozenset({Role.MANAGER, Role.INFORMATION_GOVERNANCE})
NOT_A_READER = (
    "This access token does not allow reading reports: it needs a council's manager or "
    "information governance role, or an operator's."
)
REPORTS = {
    "outcomes": ("Outcomes", reporting.outcomes),
    "rules": ("Rule evaluation", reporting.rules),
    "reach": ("Reach", reporting.reach),
}


@dataclass(frozen=True)
class Visitor:
    principal: Principal
    csrf: str | None  # the sign-out form's; none when a bearer header (no session) brought them


def _settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


def may_read_reports(principal: Principal) -> bool:
    """The API's readers (``api/reporting.ReportReader``): a council's managers or its
    information governance, or an operator. Which council: the use case's check."""
    if principal.kind is OrganisationKind.OPERATOR:
        return Role.OPERATOR in principal.roles
    return principal.kind is OrganisationKind.COUNCIL and bool(principal.roles & READER_ROLES)


async def _verify(request: Request, token: str) -> Principal:
    verifier: TokenVerifier = request.app.state.token_verifier
    # Blocking when a JWKS must be fetched, as the API's authenticate runs it.
    return await run_in_threadpool(verifier.verify, token)


def _message(status_code: int, title: str, message: str, **context: Any) -> Response:
    return page("message.html", status_code, title=title, message=message, **context)


def _not_found(visitor: Visitor | None) -> Response:
    return _message(
        404,
        "Page not found",
        "There are no reports for this council that you may read.",
        visitor=visitor,
    )


async def _visitor(request: Request) -> Visitor | Response:
    """Who is asking, or the page to answer instead: no session, the sign-in page; a bad
    bearer header, a page saying why; a token without a reader's role, a refusal."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _message(
                401, "Not signed in", "The authorization header must be 'Bearer <token>'."
            )
        try:
            principal = await _verify(request, token.strip())
        except InvalidToken as exc:
            return _message(401, "Not signed in", f"The access token was refused: {exc}.")
        visitor = Visitor(principal, None)
    else:
        token = request.cookies.get(SESSION_COOKIE, "")
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        to_sign_in = f"{PREFIX}/sign-in?next={quote(wanted, safe='/')}"
        if not token:
            return see_other(to_sign_in)
        try:
            principal = await _verify(request, token)
        except InvalidToken:
            return without_session(see_other(to_sign_in + "&ended=1"), _settings(request))
        visitor = Visitor(principal, session_csrf(token))
    if not may_read_reports(visitor.principal):
        return _message(403, "Not allowed", NOT_A_READER, visitor=visitor)
    return visitor


def _home(principal: Principal) -> str:
    if principal.kind is OrganisationKind.COUNCIL:
        return f"{PREFIX}/{principal.organisation}"
    return PREFIX


# -- assets and signing in -------------------------------------------------------------------


@router.get("/assets/reports.css")
async def stylesheet() -> FileResponse:
    return FileResponse(
        HERE / "static" / "reports.css",
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )


def _sign_in_page(
    request: Request,
    status_code: int = 200,
    *,
    next_path: str | None = None,
    error: str | None = None,
    notice: str | None = None,
) -> Response:
    csrf = form_token(request)
    response = page(
        "sign_in.html",
        status_code,
        csrf=csrf,
        next=next_path or "",
        error=error,
        notice=notice,
        visitor=None,
    )
    return with_form_cookie(response, csrf, _settings(request))


@router.get("/sign-in")
async def sign_in_page(
    request: Request, next: str | None = None, ended: str | None = None, done: str | None = None
) -> Response:
    notice = None
    if done == "signed-out":
        notice = "You have signed out."
    elif ended:
        notice = "Your session has ended (the access token expired or is no longer valid)."
    return _sign_in_page(request, next_path=safe_next(next), notice=notice)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    try:
        form = await form_of(request)
    except FormRefused as exc:
        return _sign_in_page(request, 422, error=f"The form was refused: {exc.reason}")
    next_path = safe_next(form.get("next"))
    if not same(form.get("csrf"), request.cookies.get(FORM_COOKIE)):
        return _sign_in_page(
            request,
            403,
            next_path=next_path,
            error="The form had expired or did not come from this page: paste the token again",
        )
    token = form.get("token", "").strip()
    if not token:
        return _sign_in_page(request, 422, next_path=next_path, error="Enter your access token")
    try:
        principal = await _verify(request, token)
    except InvalidToken as exc:
        return _sign_in_page(
            request, 422, next_path=next_path, error=f"The access token was refused: {exc}"
        )
    if not may_read_reports(principal):
        return _sign_in_page(request, 403, next_path=next_path, error=NOT_A_READER)
    return with_session(see_other(next_path or _home(principal)), token, _settings(request))


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        try:
            form = await form_of(request)
        except FormRefused as exc:
            return _message(422, "The form was refused", exc.reason)
        if not same(form.get("csrf"), session_csrf(session)):
            return _message(
                403, "Please try again", "The form did not come from these pages. Nothing changed."
            )
    return without_session(see_other(f"{PREFIX}/sign-in?done=signed-out"), _settings(request))


# -- the reports -----------------------------------------------------------------------------


@router.get("")
async def home(request: Request) -> Response:
    """A council's readers go to its page; an operator chooses one of the councils served."""
    visitor = await _visitor(request)
    if isinstance(visitor, Response):
        return visitor
    if visitor.principal.kind is OrganisationKind.COUNCIL:
        return see_other(_home(visitor.principal))
    councils = list(getattr(_settings(request), "councils", []))
    return page("councils.html", councils=councils, visitor=visitor)


ReportCall = Callable[[ReferralsUnitOfWork, Principal, str, ReportQuery], Awaitable[Any]]


async def _report(
    request: Request, uow: ReferralsUnitOfWork, council: str, name: str
) -> tuple[Visitor, FilterForm, Any] | Response:
    """The visitor, the filters and the report, or the page to answer instead; a bad filter
    comes back as the filters' errors with no report."""
    visitor = await _visitor(request)
    if isinstance(visitor, Response):
        return visitor
    if not COUNCIL.match(council):
        return _not_found(visitor)
    filters = filter_form(request)
    if filters.errors:
        return visitor, filters, None
    call: ReportCall = REPORTS[name][1]
    try:
        return visitor, filters, await call(uow, visitor.principal, council, filters.query)
    except NotFound:
        return _not_found(visitor)
    except Invalid as exc:
        label = FILTER_LABELS.get(exc.field, exc.field)
        filters.errors[exc.field] = f"{label}: {exc.reason}"
        return visitor, filters, None


async def _report_page(
    request: Request, uow: ReferralsUnitOfWork, council: str, name: str
) -> Response:
    found = await _report(request, uow, council, name)
    if isinstance(found, Response):
        return found
    visitor, filters, report = found
    context: dict[str, Any] = {
        "visitor": visitor,
        "council": council,
        "current": name,
        "heading": REPORTS[name][0],
        "filters": filters,
        "needs": [n.value for n in Need],
        "report": report,
        "path": request.url.path,
        "shown": filters.shown(
            getattr(report, "period_from", None), getattr(report, "period_to", None)
        ),
        "headlines": [],
        "tables": [],
        "never_reached": None,
    }
    if report is None:
        return page("report.html", 422, **context)
    if name == "outcomes":
        context["headlines"] = outcome_headlines(report)
        context["tables"] = outcome_tables(report, filters)
    elif name == "rules":
        context["tables"] = rules_tables(report, filters)
    else:
        context["tables"] = reach_tables(report, filters)
        context["never_reached"] = never_reached(report)
    return page("report.html", **context)


@router.get("/{council}")
async def outcomes_page(request: Request, council: str, uow: ReferralsWork) -> Response:
    return await _report_page(request, uow, council, "outcomes")


@router.get("/{council}/rules")
async def rules_page(request: Request, council: str, uow: ReferralsWork) -> Response:
    return await _report_page(request, uow, council, "rules")


@router.get("/{council}/reach")
async def reach_page(request: Request, council: str, uow: ReferralsWork) -> Response:
    return await _report_page(request, uow, council, "reach")


@router.get("/{council}/{name}/{table}.csv")
async def table_csv(
    request: Request, council: str, name: str, table: str, uow: ReferralsWork
) -> Response:
    """One table as CSV: the API's own CSV of the same report (``api/reporting.py``)."""
    if name not in REPORTS:
        visitor = await _visitor(request)
        return visitor if isinstance(visitor, Response) else _not_found(visitor)
    found = await _report(request, uow, council, name)
    if isinstance(found, Response):
        return found
    visitor, filters, report = found
    if report is None:
        problems = "; ".join(filters.errors.values())
        return _message(422, "The filters were refused", problems, visitor=visitor)
    try:
        response: Response = reporting_api.respond(report, "csv", table, name)
    except Invalid:
        return _not_found(visitor)
    response.headers.update({"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
    return response


__all__ = ["SECURITY_HEADERS", "router"]
