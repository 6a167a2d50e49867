"""Refusals a use case raises; the routes answer them (see ``api/deps.py``)."""

from __future__ import annotations


class Refusal(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(Refusal):
    """There is no such thing (or not one the caller may see)."""


class Invalid(Refusal):
    """The request cannot be used; ``errors`` name each field at fault and why."""

    def __init__(self, detail: str, errors: list[tuple[str, str]]) -> None:
        super().__init__(detail)
        self.errors = errors

    @classmethod
    def field(cls, field: str, reason: str) -> Invalid:
        return cls(f"{field}: {reason}", [(field, reason)])
