"""Rendering the inbox's pages (Jinja2, autoescaped), the session cookie, CSRF and forms.

Every form carries a CSRF token: a signed-in page the session's own; a page before sign-in
a random value also set in a short-lived cookie (double submit). Form bodies are held here
to the same input policy as JSON bodies (``shared.input_policy``), which the shared
middleware applies to JSON and text only."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.partners.service_layer.notifications import when
from services.partners.settings import PartnersSettings
from shared.input_policy import text_problem

HERE = Path(__file__).parent
SESSION_COOKIE = "upstream_inbox"
FORM_COOKIE = "upstream_form"
MAX_FORM_BYTES = 16 * 1024

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

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    response = HTMLResponse(templates.get_template(name).render(**context), status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def see_other(path: str) -> RedirectResponse:
    response = RedirectResponse(path, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


class FormRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def form_of(request: Request) -> dict[str, str]:
    """A urlencoded form, each value held to the input policy; a refusal names the field."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/x-www-form-urlencoded":
        raise FormRefused("the form was not sent as a form")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormRefused("the form is too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormRefused("the form is not UTF-8") from None
    fields: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        if (reason := text_problem(name) or text_problem(value)) is not None:
            raise FormRefused(f"{name or 'a field'} {reason}")
        fields.setdefault(name, value)
    return fields


def same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


def form_token(request: Request) -> str:
    """The CSRF token of a page shown before sign-in: the cookie's, or a new one."""
    return request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(24)


def with_form_cookie(response: Response, token: str, settings: PartnersSettings) -> Response:
    response.set_cookie(
        FORM_COOKIE,
        token,
        max_age=3600,
        path="/inbox",
        secure=settings.web_cookie_secure,
        httponly=True,
        samesite="strict",
    )
    return response


def with_session_cookie(response: Response, token: str, settings: PartnersSettings) -> Response:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.web_session_hours * 3600),
        path="/inbox",
        secure=settings.web_cookie_secure,
        httponly=True,
        samesite="lax",  # an emailed link opens the inbox signed in; forms need the CSRF token
    )
    return response


def without_session_cookie(response: Response, settings: PartnersSettings) -> Response:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/inbox",
        secure=settings.web_cookie_secure,
        httponly=True,
        samesite="lax",
    )
    return response
