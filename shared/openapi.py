"""The OpenAPI document each service publishes, telling the truth about its errors: the
project's one error body (not FastAPI's default ``HTTPValidationError``), the refusals an
operation can answer with, and the bearer scheme, so Swagger's Authorize button works."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

_PROBLEM = {
    "title": "Problem",
    "type": "object",
    "description": "Why a request was refused; for a 422, each field at fault and why.",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "the reason, for a person to read"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {
                    "field": {
                        "type": "string",
                        "description": "the field's path: resident.date_of_birth, needs.2, "
                        "query.limit, path",
                    },
                    "reason": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
        "current_status": {"type": ["string", "null"], "description": "409: the state now"},
        "allowed": {
            "type": "array",
            "items": {"type": "string"},
            "description": "409: the statuses the state allows instead",
        },
        "correlation_id": {"type": ["string", "null"], "description": "500: quote it"},
    },
}
_REFUSALS = {
    "401": "no valid bearer token",
    "403": "the caller's organisation or role may not do this",
    "404": "not there, or not the caller's to see",
    "409": "the current state does not allow it (current_status, allowed)",
    "413": "the body is too large",
    "422": "a field breaks the input policy or the operation's schema (errors names each)",
}
_WRITES = {"post", "put", "patch", "delete"}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def truthful_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["Problem"] = _PROBLEM
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                codes = set()
                if operation.get("parameters") or operation.get("requestBody"):
                    codes.add("422")
                if operation.get("requestBody"):
                    codes.add("413")
                if operation.get("security"):
                    codes |= {"401", "403"}
                    if method in _WRITES:
                        codes.add("409")
                if "{" in path:
                    codes.add("404")
                # A refusal a route declares itself (``responses={404: {"description": ...}}``,
                # e.g. a 404 on a path without an id) keeps its description, in the same body.
                codes |= {code for code in responses if code in _REFUSALS}
                for code in sorted(codes):
                    declared = responses.get(code, {}).get("description")
                    responses[code] = _problem(declared or _REFUSALS[code])
        app.openapi_schema = document
        return document

    return openapi
