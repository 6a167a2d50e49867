"""The trace of the work in hand: which story (correlation) and which cause (causation).

An HTTP request or a consumed event sets it; every event written while it is set carries it,
so one resident's case can be followed across services.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


@dataclass(frozen=True)
class Trace:
    correlation_id: str
    causation_id: str


_current: ContextVar[Trace | None] = ContextVar("upstream_trace", default=None)


def new_id() -> str:
    return str(uuid.uuid4())


def safe_id(candidate: str | None) -> str | None:
    """An id taken from outside (a header) only if it is short and plain; otherwise None."""
    return candidate if candidate and _SAFE_ID.match(candidate) else None


def current_trace() -> Trace | None:
    return _current.get()


@contextmanager
def traced(correlation_id: str, causation_id: str) -> Iterator[Trace]:
    trace = Trace(correlation_id=correlation_id, causation_id=causation_id)
    token = _current.set(trace)
    try:
        yield trace
    finally:
        _current.reset(token)
