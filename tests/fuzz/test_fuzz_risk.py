"""Schemathesis over the risk API as a council data feed, a council caseworker and the
operator: no server error, and every answer as the document says."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.risk.bootstrap import SERVICE
from services.risk.settings import RiskSettings
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
    SERVICE, RiskSettings(database_url="postgresql+asyncpg://fuzz@localhost/fuzz")
)


@pytest.fixture(scope="module")
def fuzzer(postgres_admin_url: str) -> Iterator[Fuzzer]:
    with migrated_database(postgres_admin_url, "risk") as url:
        settings = RiskSettings(database_url=url)
        app = create_app(SERVICE, settings)
        callers = {
            "council data feed": bearer(
                settings, COUNCIL, OrganisationKind.COUNCIL, [Role.DATA_FEED]
            ),
            "council caseworker": bearer(
                settings, COUNCIL, OrganisationKind.COUNCIL, [Role.CASEWORKER]
            ),
            "operator": bearer(settings, "operator", OrganisationKind.OPERATOR, [Role.OPERATOR]),
        }
        with client_of(app) as client:
            current = client.get("/v1/rulesets/current", headers=callers["operator"])
            assert current.status_code == 200, current.text
        yield Fuzzer(load(app), callers, {"version": current.json()["version"]})


@pytest.mark.parametrize("operation", OPERATIONS)
def test_risk_api_holds_under_fuzzing(fuzzer: Fuzzer, operation: str) -> None:
    fuzzer.run(operation)
