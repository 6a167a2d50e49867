"""Refusals a use case raises, free of any web framework; ``shared.http`` answers each the
same way in every service: ``{"detail": …}``, plus the fields at fault (422) or the current
status and the statuses allowed instead (409)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Refused(Exception):
    """Anything a use case declines to do, with the reason a person can read."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail}


class NotFound(Refused):
    """Not there, or not the caller's to see: tenancy never says which (404)."""

    status_code = 404


class Forbidden(Refused):
    """The caller may see it but not do this (403)."""

    status_code = 403


class Conflict(Refused):
    """The current state does not allow it: what the state is, and what it allows (409)."""

    status_code = 409

    def __init__(
        self, detail: str, current_status: str | None = None, allowed: Iterable[str] = ()
    ) -> None:
        super().__init__(detail)
        self.current_status = current_status
        self.allowed = list(allowed)

    def body(self) -> dict[str, Any]:
        return {
            "detail": self.detail,
            "current_status": self.current_status,
            "allowed": self.allowed,
        }


class Invalid(Refused):
    """Fields hold something a schema could not rule out but the service cannot accept (422),
    each named with its reason."""

    status_code = 422

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.errors = [(field, reason)]

    @property
    def field(self) -> str:
        """The first field at fault."""
        return self.errors[0][0]

    @property
    def reason(self) -> str:
        return self.errors[0][1]

    @classmethod
    def of(cls, errors: Iterable[tuple[str, str]], detail: str | None = None) -> Invalid:
        errors = list(errors)
        if not errors:
            raise ValueError("an Invalid names at least one field")
        refusal = cls(*errors[0])
        refusal.errors = errors
        refusal.detail = detail or "; ".join(f"{field}: {reason}" for field, reason in errors)
        refusal.args = (refusal.detail,)
        return refusal

    def body(self) -> dict[str, Any]:
        return {
            "detail": self.detail,
            "errors": [{"field": field, "reason": reason} for field, reason in self.errors],
        }
