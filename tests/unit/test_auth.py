from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from shared.auth import OrganisationKind, Role, mint_token
from tests.unit.app_under_test import client, settings


def token(**overrides: object) -> str:
    claims = {
        "subject": "kemi",
        "organisation": "E09000025",
        "kind": OrganisationKind.COUNCIL,
        "roles": [Role.CASEWORKER],
    }
    claims.update(overrides)
    return mint_token(settings(), **claims)  # type: ignore[arg-type]


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture(scope="module")
def api():
    with client() as test_client:
        yield test_client


def test_no_token_is_401(api) -> None:
    response = api.get("/v1/me")
    assert response.status_code == 401
    assert response.json()["detail"] == "missing bearer token"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_valid_token_names_the_principal(api) -> None:
    response = api.get("/v1/me", headers=bearer(token(name="Kemi A.")))
    assert response.status_code == 200
    assert response.json() == {
        "subject": "kemi",
        "organisation": "E09000025",
        "kind": "council",
        "roles": ["caseworker"],
        "name": "Kemi A.",
    }


def test_bad_signature_is_401(api) -> None:
    forged = jwt.encode(
        {
            "sub": "x",
            "org": "E09000025",
            "org_kind": "council",
            "roles": ["operator"],
            "iss": "upstream",
            "aud": "upstream",
            "iat": datetime.now(UTC),
            "exp": datetime.now(UTC) + timedelta(hours=1),
        },
        "a-key-that-is-not-the-deployment-key-at-all-0123456789",
        algorithm="HS256",
    )
    response = api.get("/v1/me", headers=bearer(forged))
    assert response.status_code == 401
    assert response.json()["detail"] == "token signature is not valid"


def test_expired_token_is_401(api) -> None:
    stale = token(now=datetime.now(UTC) - timedelta(hours=3), ttl=timedelta(hours=1))
    response = api.get("/v1/me", headers=bearer(stale))
    assert response.status_code == 401
    assert response.json()["detail"] == "token has expired"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "Bearer not-a-jwt"])
def test_malformed_authorization_is_401(api, header: str) -> None:
    response = api.get("/v1/me", headers={"Authorization": header})
    assert response.status_code == 401


def test_token_for_another_audience_is_401(api) -> None:
    other = mint_token(
        settings(jwt_audience="someone-else"),
        subject="x",
        organisation="E09000025",
        kind=OrganisationKind.COUNCIL,
        roles=[Role.CASEWORKER],
    )
    assert api.get("/v1/me", headers=bearer(other)).status_code == 401


def test_council_claim_must_be_a_gss_code(api) -> None:
    claims = {
        "sub": "x",
        "org": "Newham",
        "org_kind": "council",
        "roles": ["caseworker"],
        "iss": "upstream",
        "aud": "upstream",
        "iat": datetime.now(UTC),
        "exp": datetime.now(UTC) + timedelta(hours=1),
    }
    signed = jwt.encode(claims, settings().jwt_signing_key.get_secret_value(), algorithm="HS256")
    response = api.get("/v1/me", headers=bearer(signed))
    assert response.status_code == 401
    assert "GSS code" in response.json()["detail"]


def test_wrong_role_is_403(api) -> None:
    response = api.get("/v1/operators-only", headers=bearer(token()))
    assert response.status_code == 403
    assert "operator" in response.json()["detail"]
    operator = token(organisation="operator", kind=OrganisationKind.OPERATOR, roles=[Role.OPERATOR])
    assert api.get("/v1/operators-only", headers=bearer(operator)).status_code == 200


def test_wrong_kind_of_organisation_is_403(api) -> None:
    partner = token(organisation="food-bank-1", kind=OrganisationKind.VCS, roles=[Role.PARTNER])
    response = api.get("/v1/councils-only", headers=bearer(partner))
    assert response.status_code == 403
    assert api.get("/v1/councils-only", headers=bearer(token())).json() == {"council": "E09000025"}
