"""Schemathesis over the referrals API as a council caseworker, a VCS referrer and the
operator: no server error, and every answer as the document says."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.referrals.bootstrap import SERVICE
from services.referrals.settings import ReferralsSettings
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
from tests.integration.referrals.conftest import referral

COUNCIL, OTHER = "E09000025", "E09000012"
PARTNER_ORG = "5b0c8f0e-6d7c-4b0e-9a43-1f1f6c1d2e3a"
OPERATIONS = operations_of(
    SERVICE, ReferralsSettings(database_url="postgresql+asyncpg://fuzz@localhost/fuzz")
)
# Findings in the referrals service, which is being edited elsewhere: for its lead to fix.
FINDINGS: dict[str, str] = {}


@pytest.fixture(scope="module")
def fuzzer(postgres_admin_url: str) -> Iterator[Fuzzer]:
    with migrated_database(postgres_admin_url, "referrals") as url:
        settings = ReferralsSettings(database_url=url, councils=[COUNCIL, OTHER])
        app = create_app(SERVICE, settings)
        callers = {
            "council caseworker": bearer(
                settings, COUNCIL, OrganisationKind.COUNCIL, [Role.CASEWORKER, Role.REFERRER]
            ),
            "vcs referrer": bearer(settings, PARTNER_ORG, OrganisationKind.VCS, [Role.REFERRER]),
            "operator": bearer(settings, "operator", OrganisationKind.OPERATOR, [Role.OPERATOR]),
        }
        with client_of(app) as client:
            created = client.post(
                "/v1/referrals",
                json=referral(council=COUNCIL),
                headers=callers["council caseworker"],
            )
            assert created.status_code == 201, created.text
            accepted = created.json()
            case = client.get(
                f"/v1/cases/{accepted['case_id']}", headers=callers["council caseworker"]
            ).json()
        known = {
            "case_id": accepted["case_id"],
            "referral_id": accepted["referral_id"],
            "resident_id": case["resident"]["id"] if "resident" in case else "",
        }
        yield Fuzzer(load(app), callers, {k: v for k, v in known.items() if v})


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(
            label,
            marks=[pytest.mark.xfail(strict=True, reason=FINDINGS[label])]
            if label in FINDINGS
            else [],
        )
        for label in OPERATIONS
    ],
)
def test_referrals_api_holds_under_fuzzing(fuzzer: Fuzzer, operation: str) -> None:
    fuzzer.run(operation)
