"""Schemathesis over the partners API as a partner of a real directory organisation, a VCS
organisation outside the directory, and the operator: no server error, and every answer as
the document says."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from services.partners.bootstrap import SERVICE
from services.partners.settings import PartnersSettings
from shared.auth import OrganisationKind, Role
from tests.fuzz.harness import (
    Fuzzer,
    bearer,
    client_of,
    create_app,
    load,
    migrated_database,
    operations_of,
)

COUNCIL = "E09000025"
OPERATIONS = operations_of(
    SERVICE, PartnersSettings(database_url="postgresql+asyncpg://fuzz@localhost/fuzz")
)


@pytest.fixture(scope="module")
def fuzzer(postgres_admin_url: str) -> Iterator[Fuzzer]:
    with migrated_database(postgres_admin_url, "partners") as url:
        settings = PartnersSettings(database_url=url)
        app = create_app(SERVICE, settings)
        operator = bearer(settings, "operator", OrganisationKind.OPERATOR, [Role.OPERATOR])
        with client_of(app) as client:
            org = client.post(
                "/v1/organizations",
                headers=operator,
                json={
                    "name": "Fuzz Food Bank",
                    "description": "A local charity",
                    "kind": "food",
                    "agreements": [
                        {
                            "council": COUNCIL,
                            "reference": "FUZZ-DSA-1",
                            "needs": ["food"],
                            "lawful_bases": ["consent"],
                            "starts_on": "2020-01-01",
                        }
                    ],
                },
            )
            assert org.status_code == 201, org.text
            service = client.post(
                "/v1/services",
                headers=operator,
                json={
                    "organization_id": org.json()["id"],
                    "name": "Fuzz food parcels",
                    "description": "Food parcels",
                    "needs": ["food"],
                    "councils": [COUNCIL],
                    "languages": ["en"],
                    "capacity": 5,
                },
            )
            assert service.status_code == 201, service.text
            (agreement,) = client.get("/v1/agreements", headers=operator).json()
        callers = {
            "partner": bearer(settings, org.json()["id"], OrganisationKind.VCS, [Role.PARTNER]),
            "partner outside the directory": bearer(
                settings, str(uuid.uuid4()), OrganisationKind.VCS, [Role.PARTNER]
            ),
            "operator": operator,
            "council information governance": bearer(
                settings, COUNCIL, OrganisationKind.COUNCIL, [Role.INFORMATION_GOVERNANCE]
            ),
        }
        known = {
            "organization_id": org.json()["id"],
            "service_id": service.json()["id"],
            "agreement_id": agreement["id"],
        }
        yield Fuzzer(load(app), callers, known)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_partners_api_holds_under_fuzzing(fuzzer: Fuzzer, operation: str) -> None:
    fuzzer.run(operation)
