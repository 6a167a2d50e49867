"""One input policy for everything the services accept: every string, number and date in a
request (path, query, JSON body) and every cell of an imported file.

- **Text**: no control characters (tab, line feed and carriage return excepted; PostgreSQL
  cannot store NUL and none belongs in a name or a note) and at most ``MAX_TEXT_LENGTH``
  characters in one value.
- **Integers**: within the interoperable JSON range (±(2**53 - 1), RFC 8259 / I-JSON), so a
  page number or a count never overflows a database column.
- **Dates and times**: an ISO 8601 date or date-time must fall between ``EARLIEST`` and
  ``LATEST`` (after applying its offset), which keeps out the calendar's edges (year 1 with
  an offset, year 9999) and implausible dates such as a consent given in 1800. Fields with
  tighter windows (a date of birth not in the future) say so in their own schemas.

The HTTP side applies it to every request before any route runs (``shared.http``), so no
route checks these by hand; the risk service applies ``problems_in`` to each feed row.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

MAX_TEXT_LENGTH = 20_000
MAX_INTEGER = 2**53 - 1
EARLIEST = date(1900, 1, 1)
LATEST = date(2100, 12, 31)
_ALLOWED_CONTROLS = {"\t", "\n", "\r"}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}.*)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")


def text_problem(value: str, *, numeral: bool = False) -> str | None:
    """Why a string is refused, or None. ``numeral``: the string may stand for a number (a
    path segment or query value), so digits beyond the integer range are refused too."""
    for position, char in enumerate(value):
        if unicodedata.category(char) == "Cc" and char not in _ALLOWED_CONTROLS:
            return f"contains a control character (U+{ord(char):04X}) at position {position + 1}"
        if unicodedata.category(char) == "Cs":
            return f"contains an unpaired surrogate at position {position + 1}"
    if len(value) > MAX_TEXT_LENGTH:
        return f"is longer than {MAX_TEXT_LENGTH:,} characters"
    if _ISO_DATE.match(value):
        return date_problem(value)
    if numeral and _INTEGER.match(value) and abs(int(value)) > MAX_INTEGER:
        return f"is outside the range ±{MAX_INTEGER}"
    return None


def date_problem(value: str) -> str | None:
    """For a string that looks like an ISO date or date-time: why it is refused, or None.
    A string that only looks like one but is not valid is left to the field's own schema."""
    try:
        parsed = (
            datetime.fromisoformat(value.replace("Z", "+00:00"))
            if len(value) > 10
            else datetime.combine(date.fromisoformat(value), datetime.min.time())
        )
        day = parsed.astimezone(UTC).date() if parsed.tzinfo else parsed.date()
    except (ValueError, OverflowError):
        year = value[:4]
        if year.isdigit() and not EARLIEST.year <= int(year) <= LATEST.year:
            return f"is outside the dates this service accepts ({EARLIEST} to {LATEST})"
        return None
    if not EARLIEST <= day <= LATEST:
        return f"is outside the dates this service accepts ({EARLIEST} to {LATEST})"
    return None


def problems_in(value: Any, field: str = "") -> Iterator[tuple[str, str]]:
    """Every (field, reason) the policy refuses in a JSON value, fields named by their path
    (``resident.contact.phone``, ``needs.2``)."""
    if isinstance(value, str):
        if (reason := text_problem(value)) is not None:
            yield field or "value", reason
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > MAX_INTEGER:
            yield field or "value", f"is outside the range ±{MAX_INTEGER}"
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            yield field or "value", "is not a finite number"
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{field}.{key}" if field else str(key)
            if (reason := text_problem(str(key))) is not None:
                yield name, f"its name {reason}"
            yield from problems_in(item, name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from problems_in(item, f"{field}.{index}" if field else str(index))
