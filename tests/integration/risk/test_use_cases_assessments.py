"""The assessments use cases on a real migrated PostgreSQL: no broker, no HTTP."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from services.risk.domain.rules import NO_RESIDENT_KEY, ReferralFacts
from services.risk.service_layer import assessments, signals
from shared.errors import NotFound
from shared.events.envelope import utc_now
from shared.identity import resident_keys
from shared.vocabulary import RiskLevel
from tests.integration.risk.conftest import RiskDatabase
from tests.integration.risk.test_use_cases_signals import RECENT, data_team, signal

pytestmark = pytest.mark.integration


def keys_of_amina(db: RiskDatabase) -> list[str]:
    return resident_keys(
        db.settings.resident_key_secret.get_secret_value(),
        council=db.council,
        given_name="Amina",
        family_name="Okafor",
        date_of_birth=date(1984, 3, 2),
        postcode="E15 4HT",
    )


def referral_of(db: RiskDatabase, case_id: str) -> assessments.ReferralToAssess:
    return assessments.ReferralToAssess(
        case_id=case_id,
        council=db.council,
        resident_keys=keys_of_amina(db),
        referral=ReferralFacts(
            circumstances=("children_in_household",), needs=("food",), urgency="medium", age=42
        ),
        received_at=utc_now(),
    )


async def test_a_referral_is_assessed_with_the_signals_held_and_explained(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    async with db.unit_of_work() as uow:
        await signals.record_signals(
            uow, data_team(db), [signal(db.council, "rent_arrears", weeks=10, amount="1300")]
        )
    case_id = str(uuid.uuid4())
    async with db.unit_of_work() as uow:
        result = await assessments.assess_referral(uow, referral_of(db, case_id))
    assert result.level is RiskLevel.HIGH

    (case,) = await db.rows("SELECT open, referral FROM cases WHERE case_id = :c", c=case_id)
    assert case["open"] is True and case["referral"]["age"] == 42
    (assessed,) = await db.events("risk.case.assessed")
    assert (assessed["case_id"], assessed["level"]) == (case_id, "high")
    assert assessed["ruleset_version"].startswith("default@")
    assert await db.count("profiles") == 1  # the referral found the resident the feed named

    async with db.unit_of_work() as uow:
        why = await assessments.explain_case(uow, case_id, council=db.council)
        by_operator = await assessments.explain_case(uow, case_id, council=None)
        with pytest.raises(NotFound):
            await assessments.explain_case(uow, case_id, council="E09000001")
        with pytest.raises(NotFound):
            await assessments.explain_case(uow, str(uuid.uuid4()), council=None)
    assert why == by_operator
    assert why.level is RiskLevel.HIGH and "10 weeks of arrears" in why.explanation
    assert [r.rule_id for r in why.reasons] == ["rent-arrears-8-weeks", "rent-arrears"]


async def test_an_open_case_is_reassessed_and_a_closed_one_lets_the_resident_be_flagged(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    case_id = str(uuid.uuid4())
    async with db.unit_of_work() as uow:
        await assessments.record_case_opened(
            uow, case_id=case_id, council=db.council, resident_keys=keys_of_amina(db)
        )
    notice = signal(db.council, "eviction_notice", notice_type="warrant", notice_date=RECENT)
    async with db.unit_of_work() as uow:
        while_open = await signals.record_signals(uow, data_team(db), [notice])
    assert (while_open.flagged, while_open.cases_assessed) == (0, 1)
    assert [a["level"] for a in await db.events("risk.case.assessed")] == ["crisis"]

    async with db.unit_of_work() as uow:
        await assessments.record_case_closed(uow, case_id)
    assert await db.count("cases", "case_id = :c AND NOT open", c=case_id) == 1
    async with db.unit_of_work() as uow:
        closed = await signals.record_signals(
            uow, data_team(db), [signal(db.council, "rent_arrears", weeks=9, amount="900")]
        )
    assert (closed.flagged, closed.cases_assessed) == (1, 0)
    (flag,) = await db.events("risk.resident.flagged")

    async with db.unit_of_work() as uow:
        why = await assessments.explain_resident(uow, flag["resident_key"], council=db.council)
        with pytest.raises(NotFound):
            await assessments.explain_resident(uow, flag["resident_key"], council="E09000001")
    assert why.level is RiskLevel.CRISIS and why.explanation.startswith("This shows a possible")


async def test_a_case_opened_again_by_its_referral_keeps_one_case(
    risk_database: RiskDatabase,
) -> None:
    db = risk_database
    case_id = str(uuid.uuid4())
    async with db.unit_of_work() as uow:
        await assessments.record_case_opened(
            uow, case_id=case_id, council=db.council, resident_keys=keys_of_amina(db)
        )
        await assessments.record_case_closed(uow, case_id)
        await assessments.assess_referral(uow, referral_of(db, case_id))
        await assessments.record_case_opened(
            uow, case_id=case_id, council=db.council, resident_keys=keys_of_amina(db)
        )
    (case,) = await db.rows("SELECT open, referral FROM cases")
    assert case["open"] is True
    assert case["referral"]["urgency"] == "medium"  # a case opened later keeps the referral
    assert await db.count("assessments", "case_id = :c", c=case_id) == 1


async def test_a_resident_named_only_by_name_is_assessed_on_the_referral_with_no_profile(
    risk_database: RiskDatabase,
) -> None:
    """No date of birth, postcode or UPRN: no key, so no signal can be matched and no profile
    is made; the case is assessed on what the referral says, and the reasons say why."""
    db = risk_database
    async with db.unit_of_work() as uow:
        await signals.record_signals(
            uow, data_team(db), [signal(db.council, "rent_arrears", weeks=10, amount="1300")]
        )
    case_id = str(uuid.uuid4())
    hungry = ReferralFacts(circumstances=("no_food_in_home",), needs=("food",), urgency="high")
    async with db.unit_of_work() as uow:
        # The referrals service opens the case, then sends the referral: both with no keys.
        await assessments.record_case_opened(
            uow, case_id=case_id, council=db.council, resident_keys=[]
        )
        result = await assessments.assess_referral(
            uow,
            assessments.ReferralToAssess(
                case_id=case_id,
                council=db.council,
                resident_keys=[],
                referral=hungry,
                received_at=utc_now(),
            ),
        )
    assert result.level is RiskLevel.CRISIS and result.notes == (NO_RESIDENT_KEY,)
    assert await db.count("profiles") == 1  # only the feed's resident
    (case,) = await db.rows("SELECT profile_id, open FROM cases WHERE case_id = :c", c=case_id)
    assert case == {"profile_id": None, "open": True}

    (assessed,) = await db.events("risk.case.assessed")
    assert (assessed["case_id"], assessed["level"]) == (case_id, "crisis")
    assert assessed["reasons"] == [
        {"rule_id": "no-food-in-home", "explanation": assessed["reasons"][0]["explanation"]},
        {"rule_id": NO_RESIDENT_KEY.id, "explanation": NO_RESIDENT_KEY.explanation},
    ]
    assert "no date of birth, postcode or UPRN" in assessed["reasons"][1]["explanation"]

    async with db.unit_of_work() as uow:
        why = await assessments.explain_case(uow, case_id, council=db.council)
        with pytest.raises(NotFound):
            await assessments.explain_case(uow, case_id, council="E09000001")
    assert why.level is RiskLevel.CRISIS
    assert why.explanation.startswith("This shows a possible crisis that needs a quick response")
    assert NO_RESIDENT_KEY.explanation in why.explanation and "(2)" not in why.explanation

    # A later referral on the case that does name a key links it to the resident's profile.
    async with db.unit_of_work() as uow:
        keyed = await assessments.assess_referral(uow, referral_of(db, case_id))
    assert keyed.level is RiskLevel.HIGH and keyed.notes == ()
    (case,) = await db.rows("SELECT profile_id FROM cases WHERE case_id = :c", c=case_id)
    assert case["profile_id"] is not None and await db.count("profiles") == 1
