"""A council's transparency record as a page: server-rendered (Jinja2, autoescaped), plain
and accessible (landmarks, one heading per section, a description list per attribute), with
no script and no resource from elsewhere."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.risk.domain.atrs import SECTIONS, section_key

HERE = Path(__file__).parent

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

STYLE = (
    "body{font-family:system-ui,sans-serif;line-height:1.5;margin:0 auto;max-width:60rem;"
    "padding:1rem;color:#0b0c0c}dt{font-weight:700;margin-top:.75rem}dd{margin-left:0}"
    "table{border-collapse:collapse}th,td{border:1px solid #b1b4b6;padding:.25rem .5rem;"
    "text-align:left;vertical-align:top}a{color:#1d70b8}a:focus{outline:3px solid #fd0}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()

HEADERS = {
    "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _label(attribute: str) -> str:
    return attribute.replace("_", " ").capitalize()


def record_page(record: dict[str, Any]) -> HTMLResponse:
    """The record's sections in the standard's order, each attribute under its own name."""
    sections = [
        (title, [(name, _label(name), value) for name, value in record[section_key(title)].items()])
        for title in SECTIONS
    ]
    html = templates.get_template("transparency.html").render(
        record=record, sections=sections, style=STYLE
    )
    response = HTMLResponse(html)
    response.headers.update(HEADERS)
    return response
