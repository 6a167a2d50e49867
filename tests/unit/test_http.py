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


def test_a_refusal_never_repeats_the_value_refused(api) -> None:
    """A validator's own message may quote what it refused (a resident's name, say): the
    refusal names the field and the reason, never the value, whatever its case."""
    response = api.post(
        "/v1/parcels", json={"postcode": "E15 4HT", "households": 1, "recipient": " Amina Okafor"}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "recipient",
            "reason": "Value error, '(the value given)' is not on the round",
            "type": "value_error",
        }
    ]
    assert "amina" not in response.text.lower()


def test_malformed_json_is_422_not_500(api) -> None:
    response = api.post(
        "/v1/parcels", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_a_lost_database_connection_is_503_try_again_not_500(api) -> None:
    response = api.get("/v1/database-lost")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "try again" in response.json()["detail"]
    assert api.get("/v1/boom").status_code == 500  # a bug is still a bug
    assert api.get("/v1/database-misused").status_code == 500  # on a live connection too


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


def refused_fields(response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {e["field"]: e["reason"] for e in response.json()["errors"]}


def test_a_control_character_is_refused_wherever_it_comes(api) -> None:
    in_body = api.post("/v1/notes", json={"text": "ok", "tags": ["fine", "bad\x00tag"]})
    assert "control character (U+0000)" in refused_fields(in_body)["tags.1"]
    in_key = api.post("/v1/notes", json={"text": "ok", "bad\x07key": 1})
    assert "bad\x07key" in refused_fields(in_key)
    in_query = api.get("/v1/pages/home", params={"page": "1", "q": "a\x00b"})
    assert "control character" in refused_fields(in_query)["query.q"]
    in_path = api.get("/v1/pages/ho%00me")
    assert "control character" in refused_fields(in_path)["path"]
    in_yaml = api.post(
        "/v1/rules",
        content=b"rules:\n  - id: x\x00\n",
        headers={"content-type": "application/yaml"},
    )
    assert "line 2" in refused_fields(in_yaml)["body"]
    in_header = api.post(
        "/v1/notes", json={"text": "ok"}, headers={"Idempotency-Key": "key\x01one"}
    )
    assert "control character (U+0001)" in refused_fields(in_header)["header.idempotency-key"]
    # Tabs and line breaks belong in notes.
    assert api.post("/v1/notes", json={"text": "line one\n\tline two"}).status_code == 200


def test_the_policy_holds_whatever_the_case_of_the_media_type(api) -> None:
    for media_type in ("Application/JSON", "APPLICATION/JSON; charset=utf-8"):
        sent = api.post(
            "/v1/notes",
            content=b'{"text": "stock\\u0000out"}',
            headers={"content-type": media_type},
        )
        assert "control character (U+0000)" in refused_fields(sent)["text"]


def test_documents_the_parser_cannot_read_plainly_are_refused_naming_why(api) -> None:
    json_body = {"content-type": "application/json"}
    too_deep = api.post("/v1/notes", content=b"[" * 3000 + b"]" * 3000, headers=json_body)
    assert refused_fields(too_deep) == {"body": "nests deeper than 32 levels"}
    deep = {"text": "ok", "tags": [], "when": None}
    for _ in range(40):  # read, but deeper than any document of the services
        deep = {"inner": deep}
    assert (
        "nests deeper than 32 levels"
        in refused_fields(api.post("/v1/notes", json=deep))[".".join(["inner"] * 33)]
    )
    twice = api.post("/v1/notes", content=b'{"text": "a", "text": "b"}', headers=json_body)
    assert refused_fields(twice) == {"body": "names 'text' twice in one object"}
    digits = api.post("/v1/notes", content=b'{"text": ' + b"9" * 5000 + b"}", headers=json_body)
    assert refused_fields(digits) == {"body": f"holds a number outside the range ±{2**53 - 1}"}
    in_path = api.get("/v1/pages/" + "9" * 5000)
    assert "outside the range" in refused_fields(in_path)["path"]


def test_numbers_beyond_the_json_range_and_dates_off_the_calendar_are_refused(api) -> None:
    huge = api.get("/v1/pages/home", params={"page": str(10**30)})
    assert "outside the range" in refused_fields(huge)["query.page"]
    assert (
        "outside the range"
        in refused_fields(api.post("/v1/notes", json={"text": "x", "tags": [], "count": 2**64}))[
            "count"
        ]
    )
    for when in ("0001-01-01T00:00:00+05:00", "9999-12-31", "1800-06-01", "2200-01-01T00:00Z"):
        fields = refused_fields(api.post("/v1/notes", json={"text": "x", "when": when}))
        assert "outside the dates" in fields["when"], when
    assert api.post("/v1/notes", json={"text": "x", "when": "2026-11-20T10:00:00Z"}).json()


def test_a_long_value_is_refused_and_a_huge_body_is_413(api) -> None:
    long_text = api.post("/v1/notes", json={"text": "x" * 20_001})
    assert "longer than 20,000" in refused_fields(long_text)["text"]
    big = b'{"text": "' + b"x" * (9 * 2**20) + b'"}'
    response = api.post("/v1/notes", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_an_integrity_error_is_a_4xx_naming_the_constraint_never_the_values(api) -> None:
    unique = api.post("/v1/database-refusals/23505")
    assert unique.status_code == 409
    assert unique.json() == {
        "detail": "the request conflicts with what is already stored (uq_parcels_name)"
    }
    missing = api.post("/v1/database-refusals/23503")
    assert missing.status_code == 422 and "does not exist" in missing.json()["detail"]
    assert "Okafor" not in unique.text + missing.text
    # Whichever wrapper SQLAlchemy chose: a character not in the encoding (22021), and a
    # parameter asyncpg refuses itself (its DataError, 22000), come as a bare DBAPIError.
    for refused in (
        api.post("/v1/database-refusals/22021/unmapped"),
        api.post("/v1/driver-refusal"),
    ):
        assert refused.status_code == 422, refused.text
        assert refused.json() == {"detail": "the request holds a value the database cannot store"}
    assert api.post("/v1/database-refusals/XX000/unmapped").status_code == 500  # not the caller's
