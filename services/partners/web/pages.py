"""Rendering the inbox's pages (Jinja2, autoescaped), its session and form cookies.

Every form carries a CSRF token: a signed-in page the session's own; a page before sign-in
a random value also set in a short-lived cookie (double submit). Forms are read, and tokens
compared, as every service's pages do (``shared/web.py``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.partners.service_layer.notifications import when
from services.partners.settings import PartnersSettings
from shared.web import delete_cookie, render, set_cookie
from shared.web import form_token as shared_form_token

HERE = Path(__file__).parent
SESSION_COOKIE = "upstream_inbox"
FORM_COOKIE = "upstream_form"

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _words(value: Any) -> str:
    return str(getattr(value, "value", value) or "").replace("_", " ")


def _when(value: datetime | None) -> str:
    return when(value) if value is not None else ""


templates.filters["words"] = _words
templates.filters["when"] = _when


def page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return render(templates, name, status_code, **context)


def form_token(request: Request) -> str:
    return shared_form_token(request, FORM_COOKIE)


def with_form_cookie(response: Response, token: str, settings: PartnersSettings) -> Response:
    return set_cookie(
        response, FORM_COOKIE, token, path="/inbox", secure=settings.web_cookie_secure, max_age=3600
    )


def with_session_cookie(response: Response, token: str, settings: PartnersSettings) -> Response:
    # Lax: an emailed link opens the inbox signed in; forms need the CSRF token.
    return set_cookie(
        response,
        SESSION_COOKIE,
        token,
        path="/inbox",
        secure=settings.web_cookie_secure,
        max_age=int(settings.web_session_hours * 3600),
        samesite="lax",
    )


def without_session_cookie(response: Response, settings: PartnersSettings) -> Response:
    return delete_cookie(
        response, SESSION_COOKIE, path="/inbox", secure=settings.web_cookie_secure, samesite="lax"
    )
