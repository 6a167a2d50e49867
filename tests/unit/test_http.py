from __future__ import annotations

import pytest

from tests.unit.app_under_test import client


@pytest.fixture(scope="module")
def api():
    with client() as test_client:
        yield test_client


def test_invalid_body_names_each_field_and_reason(api) -> None:
    response = api.post("/v1/parcels", json={"postcode": "not a postcode", "households": 0})
    assert response.status_code == 422
    errors = {e["field"]: e["reason"] for e in response.json()["errors"]}
    assert set(errors) == {"postcode", "households"}
    assert "pattern" in errors["postcode"]
    assert "greater than or equal to 1" in errors["households"]
    assert "postcode:" in response.json()["detail"]


def test_malformed_json_is_422_not_500(api) -> None:
    response = api.post(
        "/v1/parcels", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_correlation_id_is_taken_from_the_caller_or_made(api) -> None:
    given = api.get("/healthz", headers={"X-Correlation-ID": "case-123.step-4"})
    assert given.headers["x-correlation-id"] == "case-123.step-4"
    unsafe = api.get("/healthz", headers={"X-Correlation-ID": "<script>"})
    assert unsafe.headers["x-correlation-id"] != "<script>"
    assert len(unsafe.headers["x-correlation-id"]) == 36


def test_readyz_reports_an_unreachable_database_and_broker(api) -> None:
    response = api.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"].startswith("unreachable")
    assert checks["broker"] == "unreachable"


def test_metrics_count_requests_by_route_template(api) -> None:
    api.get("/healthz")
    body = api.get("/metrics").text
    assert 'upstream_http_requests_total{method="GET",route="/healthz",status="200"}' in body


def test_use_case_refusals_have_one_body_in_every_service(api) -> None:
    missing = api.post("/v1/refusals/missing")
    assert (missing.status_code, missing.json()) == (404, {"detail": "parcel not found"})
    assert api.post("/v1/refusals/forbidden").status_code == 403
    conflict = api.post("/v1/refusals/conflict")
    assert conflict.status_code == 409
    assert conflict.json() == {
        "detail": "a delivered parcel cannot be cancelled",
        "current_status": "delivered",
        "allowed": ["returned"],
    }
    invalid = api.post("/v1/refusals/invalid")
    assert invalid.status_code == 422
    assert invalid.json() == {
        "detail": "households: too many; postcode: not served",
        "errors": [
            {"field": "households", "reason": "too many"},
            {"field": "postcode", "reason": "not served"},
        ],
    }
