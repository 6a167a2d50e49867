"""A public-task case shared under a named data-sharing agreement tells the partners service
which agreement it is (partners offer it only to a partner holding that very agreement with
the council: docs/partners.md, "Data-sharing agreements")."""

from __future__ import annotations

import pytest

from services.referrals.service_layer import cases, intake
from shared.events.envelope import utc_now
from shared.events.payloads import RiskAssessed
from shared.vocabulary import LawfulBasis
from tests.integration.referrals.conftest import ReferralsDatabase
from tests.integration.referrals.usecase_helpers import JUSTIFIED, finding, new_referral

pytestmark = pytest.mark.integration

ASSESSED = RiskAssessed(
    case_id="c", level="high", score=70, ruleset_version="v", assessed_at=utc_now()
)


async def test_the_named_agreement_travels_with_the_case_ready_for_routing(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    referral = new_referral(
        lawful_basis=LawfulBasis.PUBLIC_TASK,
        consent=None,
        data_sharing_agreement="NEWHAM-VCS-DSA-7",
        **JUSTIFIED,
    )
    async with db.unit_of_work() as uow:
        case_id = (await intake.receive_referral(uow, db.caller(), referral)).case_id
    assert case_id is not None
    async with db.applying(ASSESSED, subject=case_id) as uow:
        await cases.record_risk_assessment(uow, case_id, finding())
    (ready,) = await db.events("referrals.case.ready_for_routing")
    assert (ready["lawful_basis"], ready["data_sharing_agreement"]) == (
        "public_task",
        "NEWHAM-VCS-DSA-7",
    )
