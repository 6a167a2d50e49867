"""Each service's OpenAPI document tells the truth: it is valid OpenAPI, documents the
project's one error body and the refusals each operation can give, declares the bearer
scheme, and the docs page loads Swagger UI from the service itself, not a CDN."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from devtools.stack import SERVICE_NAMES, load_service
from shared.http import create_app
from tests.unit.app_under_test import settings


@pytest.fixture(scope="module", params=SERVICE_NAMES)
def service(request: pytest.FixtureRequest) -> TestClient:
    definition = load_service(request.param)
    app = create_app(definition, settings())
    return TestClient(app)


def operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_the_document_is_valid_openapi_with_the_projects_error_body(service) -> None:
    document = service.get("/openapi.json").json()
    validate(document)
    assert "HTTPValidationError" not in json.dumps(document)
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    problem = "#/components/schemas/Problem"
    for path, method, operation in operations(document):
        responses = operation["responses"]
        if operation.get("parameters") or operation.get("requestBody"):
            assert responses["422"]["content"]["application/json"]["schema"]["$ref"] == problem
        if operation.get("security"):
            assert {"401", "403"} <= set(responses), (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)


def test_media_types_and_streamed_bodies_are_declared(service) -> None:
    document = service.get("/openapi.json").json()
    assert "text/plain" in document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    if "/v1/transparency" in document["paths"]:
        content = document["paths"]["/v1/transparency"]["get"]["responses"]["200"]["content"]
        assert set(content) == {"text/markdown"}
        body = document["paths"]["/v1/signals/import"]["post"]["requestBody"]["content"]
        assert {"text/csv", "application/x-ndjson"} <= set(body)


def test_the_docs_page_is_served_without_a_cdn(service) -> None:
    page = service.get("/docs")
    assert page.status_code == 200
    assert "https://" not in page.text and "cdn" not in page.text.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert service.get(f"/docs/assets/{asset}").status_code == 200


def test_a_refusal_a_route_declares_is_documented_in_the_projects_body() -> None:
    """A 404 on a path without an id (the partner's webhook, before one is registered) is
    declared by its route and documented like every other refusal."""
    from services.partners.bootstrap import SERVICE
    from services.partners.settings import PartnersSettings
    from shared.http import create_app

    app = create_app(SERVICE, PartnersSettings(database_url="postgresql+asyncpg://u@h/d"))
    refusal = app.openapi()["paths"]["/v1/inbox/webhook/rotate"]["post"]["responses"]["404"]
    assert refusal["description"] == "no webhook registered"
    assert refusal["content"]["application/json"]["schema"]["$ref"] == (
        "#/components/schemas/Problem"
    )
