"""What every service's server-rendered pages share: their security headers, answering with
a page or a redirect, reading a form under the input policy, CSRF tokens compared in
constant time, and the cookies that carry them. Each service keeps its own templates,
paths, cookie names and sessions (the partner inbox's emailed links, the reporting pages'
access token)."""

from __future__ import annotations

import hmac
import secrets
from typing import Any, Literal
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment

from shared.input_policy import text_problem

MAX_FORM_BYTES = 16 * 1024

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def render(
    templates: Environment, name: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
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
    """A urlencoded form, each value held to the input policy (the shared middleware checks
    JSON and text bodies only); a refusal names the field."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
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
    """Two tokens equal, compared in constant time; a missing one equals nothing."""
    # As bytes: ``compare_digest`` refuses text that is not ASCII (a forged "é" was a 500).
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


def form_token(request: Request, cookie: str) -> str:
    """The CSRF token of a page shown before sign-in: the form cookie's, or a new one
    (double submit: the page's form and the cookie carry the same value)."""
    return request.cookies.get(cookie) or secrets.token_urlsafe(24)


def set_cookie(
    response: Response,
    name: str,
    value: str,
    *,
    path: str,
    secure: bool,
    max_age: int | None = None,
    samesite: Literal["strict", "lax"] = "strict",
) -> Response:
    """An HttpOnly cookie of these pages (``path``), Secure outside development."""
    response.set_cookie(
        name, value, max_age=max_age, path=path, secure=secure, httponly=True, samesite=samesite
    )
    return response


def delete_cookie(
    response: Response,
    name: str,
    *,
    path: str,
    secure: bool,
    samesite: Literal["strict", "lax"] = "strict",
) -> Response:
    response.delete_cookie(name, path=path, secure=secure, httponly=True, samesite=samesite)
    return response
