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
  tighter windows (a date of birth not in the future) say so in their own schemas. A date
  field is written as one (``IsoDate``, ``IsoDateTime``): pydantic would read a number as
  seconds since 1970, so a feed's ``0`` for an unknown date of birth would be 1 January 1970
  and key everyone so written alike.
- **Text that was not UTF-8**: U+FFFD, the character a reader puts where bytes were not
  UTF-8 (a file saved as Windows-1252), is refused: "José" read so is "Jos\ufffd", keyed
  alike with every other name mangled there.

- **Documents**: nested at most ``MAX_DEPTH`` levels (none of the services' reaches ten);
  a JSON document is read with ``read_json``, which says why it cannot read one rather than
  raising ``RecursionError`` (nested past the parser's depth) or a bare ``ValueError`` (a
  number of thousands of digits).

A refusal names the field and why, never the value refused (``validation_reason``: pydantic's
messages never quote the input, a validator's may).

The HTTP side applies it to every request before any route runs (``shared.http``), so no
route checks these by hand; the risk service applies ``problems_in`` to each feed row and to
each ruleset as parsed.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

MAX_TEXT_LENGTH = 20_000
MAX_INTEGER = 2**53 - 1
MAX_DEPTH = 32
EARLIEST = date(1900, 1, 1)
LATEST = date(2100, 12, 31)
_ALLOWED_CONTROLS = {"\t", "\n", "\r"}
NOT_UTF8 = "\ufffd"  # what a decoder puts in place of bytes that are not UTF-8
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
        if char == NOT_UTF8:
            return (
                f"is not UTF-8 at position {position + 1} (U+FFFD stands there for bytes "
                "that were not: save the file as UTF-8)"
            )
    if len(value) > MAX_TEXT_LENGTH:
        return f"is longer than {MAX_TEXT_LENGTH:,} characters"
    if _ISO_DATE.match(value):
        return date_problem(value)
    # (Too many digits are out of range before ``int`` is asked: it refuses 4,300 or more.)
    if numeral and _INTEGER.match(value) and (len(value) > 20 or abs(int(value)) > MAX_INTEGER):
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


class UnreadableJson(ValueError):
    """A JSON document the services do not read, and why (not a syntax error: those are
    ``json.JSONDecodeError``, which says where)."""


def read_json(text: str) -> Any:
    """``json.loads``, refusing (``UnreadableJson``) what the policy refuses anyway and the
    parser cannot say plainly: a document nested past the parser's depth (it raises
    ``RecursionError``) or a number of thousands of digits (a bare ``ValueError``); and an
    object naming a member twice, whose first value the parser would silently drop (RFC 8259
    leaves it to the reader: a resident sent as Amina and then Bola would be Bola)."""
    try:
        return json.loads(text, object_pairs_hook=_each_name_once)
    except (json.JSONDecodeError, UnreadableJson):
        raise
    except RecursionError:
        raise UnreadableJson(f"nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # (the only other: int's limit of 4,300 digits)
        raise UnreadableJson(
            f"holds a number outside the range ±{MAX_INTEGER}"
            if past_the_digit_limit(exc)
            else "is JSON this service cannot read"
        ) from None


def past_the_digit_limit(exc: ValueError) -> bool:
    """Whether a parser refused an integer of 4,300 or more digits (Python's own limit, which
    it says only in its message): what any parser of a document says as "a number outside
    the range", not as the document being unreadable."""
    return "digits" in str(exc)


def _each_name_once(members: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(members)
    if len(document) < len(members):
        seen: set[str] = set()
        for name, _ in members:
            if name in seen:
                raise UnreadableJson(f"names {name[:100]!r} twice in one object")
            seen.add(name)
    return document


def problems_in(value: Any, field: str = "", *, depth: int = 0) -> Iterator[tuple[str, str]]:
    """Every (field, reason) the policy refuses in a JSON value, fields named by their path
    (``resident.contact.phone``, ``needs.2``)."""
    if depth > MAX_DEPTH:
        yield field or "value", f"nests deeper than {MAX_DEPTH} levels"
        return
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
            yield from problems_in(item, name, depth=depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from problems_in(
                item, f"{field}.{index}" if field else str(index), depth=depth + 1
            )


_A_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?")


def _written_as_a_date(value: Any) -> Any:
    """A number (or a text of one) where a date or time belongs is refused, not read as
    seconds since 1970."""
    if (isinstance(value, int | float) and not isinstance(value, bool)) or (
        isinstance(value, str) and _A_NUMBER.fullmatch(value.strip())
    ):
        raise ValueError("must be written as a date (YYYY-MM-DD, ISO 8601), not a number")
    return value


WRITTEN_AS_A_DATE = BeforeValidator(_written_as_a_date)  # for a field's own ``Annotated``
IsoDate = Annotated[date, WRITTEN_AS_A_DATE]
IsoDateTime = Annotated[datetime, WRITTEN_AS_A_DATE]


def validation_reason(error: Mapping[str, Any]) -> str:
    """One validation error's message (an item of ``ValidationError.errors()``), for a
    refusal's body or an import's report. pydantic's own messages never repeat the value
    given; a validator's may (``ValueError(f"{value!r} is not …")``), and the value may be
    a resident's (a postcode, a name). So in a validator's message the value is replaced
    wherever it appears, as given, as ``repr`` writes it, upper-cased or case-folded, in any
    case: no validator written so puts it in front of whoever reads the refusal. (Values of
    two characters or fewer are left: they would match parts of words.)"""
    message = str(error.get("msg", ""))
    given = error.get("input")
    if error.get("type") not in _VALIDATORS_OWN or not isinstance(given, str):
        return message
    forms = {
        form
        for value in (given, given.strip())
        for form in (value, repr(value)[1:-1], value.upper(), value.casefold())
        if len(form) > 2
    }
    if not forms:
        return message
    # One pass, longest first: no form is looked for inside what replaced another.
    anywhere = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    return re.sub(anywhere, "(the value given)", message, flags=re.IGNORECASE)


# The error types whose message a validator wrote (pydantic's own never quote the input).
_VALIDATORS_OWN = frozenset({"value_error", "assertion_error"})
