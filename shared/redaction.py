"""What an error may say where personal data must not go: dead-letter headers and logs.

An exception's text often carries the data it failed on: SQLAlchemy appends the statement's
parameters (a resident's name, date of birth, postcode), pydantic quotes the input value,
PostgreSQL's DETAIL repeats a conflicting key. ``safe_reason`` keeps what an operator needs
to find the cause (the error's class, the database's SQLSTATE and constraint, the fields at
fault and why, where it was raised) and drops every value. (What a caller is told of one
field's error is ``shared.input_policy.validation_reason``.)
"""

from __future__ import annotations

import traceback
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import exc as sa_exc

from shared.events.envelope import EnvelopeError

_PROJECT = Path(__file__).resolve().parents[1]


def _database_reason(exc: sa_exc.DBAPIError) -> str:
    # asyncpg's own error lies under the adapter's; without either, the wrapper says enough.
    driver_error: BaseException = (exc.orig.__cause__ or exc.orig) if exc.orig else exc
    parts = [type(driver_error).__name__]
    for attribute in ("sqlstate", "table_name", "column_name", "constraint_name"):
        value = getattr(driver_error, attribute, None)
        if value:
            parts.append(f"{attribute}={value}")
    return " ".join(parts)


def _raised_at(exc: BaseException) -> str:
    """The innermost frame in the project's own code: file, function and line."""
    place = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(_PROJECT) and ".venv" not in path.parts:
            place = f"{path.relative_to(_PROJECT)}:{frame.lineno} in {frame.name}"
    return place


def safe_reason(exc: BaseException) -> str:
    """The error's class and shape, never the values it was about."""
    if isinstance(exc, ValidationError):
        fields = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'value'}: {error['type']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        return f"ValidationError: {fields}"
    if isinstance(exc, EnvelopeError):
        return str(exc)  # built from field names and pydantic's messages, never values
    if isinstance(exc, sa_exc.DBAPIError):
        reason = f"{type(exc).__name__}: {_database_reason(exc)}"
    else:
        reason = type(exc).__name__
    where = _raised_at(exc)
    return f"{reason} (at {where})" if where else reason


def safe_traceback(exc: BaseException) -> str:
    """A traceback with every message replaced by its safe reason, causes included."""
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        lines[:0] = [
            *traceback.format_list(traceback.extract_tb(current.__traceback__)),
            f"{safe_reason(current)}\n",
        ]
        current = current.__cause__ or current.__context__
        if current is not None:
            lines[:0] = ["The above caused:\n"]
    return "Traceback (most recent call last):\n" + "".join(lines)
