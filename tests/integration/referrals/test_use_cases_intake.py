"""The intake use cases on a real migrated PostgreSQL: no broker, no HTTP."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from sqlalchemy import text

from services.referrals.service_layer import cases, intake
from shared.errors import Invalid, NotFound
from shared.events.envelope import utc_now
from shared.events.payloads import RiskAssessed
from shared.vocabulary import LawfulBasis, Need, RiskLevel
from tests.integration.messaging_helpers import wait_for, waiting_on_a_lock
from tests.integration.referrals.conftest import FOOD_BANK, ReferralsDatabase
from tests.integration.referrals.usecase_helpers import AMINA, JUSTIFIED, finding, new_referral

pytestmark = pytest.mark.integration


async def test_a_referral_opens_a_case_with_its_consent_and_writes_both_events(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    async with db.unit_of_work() as uow:
        receipt = await intake.receive_referral(uow, db.caller(), new_referral())
    assert (receipt.case_status, receipt.attached_to_open_case, receipt.possible_duplicates) == (
        "received",
        False,
        0,
    )
    assert receipt.sharing.allowed and not receipt.replayed
    (case,) = await db.rows("SELECT * FROM cases")
    assert (str(case["id"]), case["council"], case["origin"]) == (
        receipt.case_id,
        db.council,
        "referral",
    )
    assert case["needs"] == ["food", "money_and_debt"] and case["priority"] == 3
    (consent,) = await db.rows("SELECT * FROM consents")
    assert consent["partner_kinds"] == ["food", "advice"]
    assert consent["recorded_by"] == f"caseworker-person ({db.council})"
    (opened,) = await db.events("referrals.case.opened")
    (received,) = await db.events("referrals.referral.received")
    assert opened["case_id"] == received["case_id"] == receipt.case_id
    assert received["referral_id"] == receipt.referral_id and received["age_years"] >= 42
    assert "Okafor" not in str(received)  # the risk service gets no direct identifiers


async def test_a_charity_referring_the_same_resident_joins_the_case_and_learns_nothing_more(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    async with db.unit_of_work() as uow:
        first = await intake.receive_referral(uow, db.caller(), new_referral())
    crisis = new_referral(
        council=db.council,
        needs=(Need.FOOD, Need.FUEL_AND_UTILITIES),
        urgency=RiskLevel.CRISIS,
        resident=replace(AMINA, given_name=" AMINA", family_name="okafor"),
    )
    async with db.unit_of_work() as uow:
        second = await intake.receive_referral(uow, db.caller("food_bank"), crisis)
    # It joined the case, and its receipt does not say so: no case, status or "attached".
    assert second.model_dump(exclude_none=True).keys() == {"referral_id", "sharing", "replayed"}
    (case,) = await db.rows("SELECT * FROM cases")
    assert str(case["id"]) == first.case_id
    assert await db.count("referrals", "case_id = :c", c=first.case_id) == 2
    assert case["needs"] == ["food", "money_and_debt", "fuel_and_utilities"]
    assert (case["urgency"], case["priority"]) == ("crisis", 4)
    referrers = await db.rows("SELECT referrer_org FROM referrals ORDER BY created_at")
    assert [r["referrer_org"] for r in referrers] == [db.council, FOOD_BANK]
    assert len(await db.events("referrals.case.opened")) == 1
    assert len(await db.events("referrals.referral.received")) == 2


async def test_the_same_idempotency_key_answers_once_and_refuses_a_different_request(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    key = intake.IdempotencyKey("intake-7f3a", request_hash="a" * 64)
    async with db.unit_of_work() as uow:
        first = await intake.receive_referral(uow, db.caller(), new_referral(), key)
    async with db.unit_of_work() as uow:
        again = await intake.receive_referral(uow, db.caller(), new_referral(), key)
    assert again.replayed and not first.replayed
    assert again.model_dump(exclude={"replayed"}) == first.model_dump(exclude={"replayed"})
    assert await db.count("referrals") == 1 and await db.count("outbox") == 2

    changed = replace(key, request_hash="b" * 64)
    with pytest.raises(Invalid) as refused:
        async with db.unit_of_work() as uow:
            await intake.receive_referral(uow, db.caller(), new_referral(), changed)
    assert (refused.value.field, refused.value.reason) == (
        "Idempotency-Key",
        "already used for a different request",
    )
    assert await db.count("referrals") == 1 and await db.count("residents") == 1


async def test_a_council_this_deployment_does_not_serve_is_refused_and_nothing_is_written(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    with pytest.raises(Invalid) as refused:
        async with db.unit_of_work() as uow:
            await intake.receive_referral(uow, db.caller(), new_referral(council="E09000001"))
    assert refused.value.field == "council"
    with pytest.raises(Invalid, match="council: required"):
        async with db.unit_of_work() as uow:  # a charity must name the council
            await intake.receive_referral(uow, db.caller("food_bank"), new_referral())
    for table in ("residents", "cases", "referrals", "consents", "outbox"):
        assert await db.count(table) == 0, table


async def test_a_referrer_follows_its_own_referral_and_no_one_else_s(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    public_task = new_referral(
        council=db.council, lawful_basis=LawfulBasis.PUBLIC_TASK, consent=None, **JUSTIFIED
    )
    async with db.unit_of_work() as uow:
        receipt = await intake.receive_referral(uow, db.caller("food_bank"), public_task)
    assert not receipt.sharing.allowed
    async with db.unit_of_work() as uow:
        progress = await intake.referral_progress(uow, db.caller("food_bank"), receipt.referral_id)
    assert (progress.case_status, progress.needs) == ("received", [Need.FOOD, Need.MONEY_AND_DEBT])
    # Its referral opened the case, but it reads as one that joined a case would.
    assert [e.action for e in progress.timeline] == ["referral received"]

    other_charity = db.caller("food_bank", organisation="hackney-advice-centre")
    for caller, referral_id in (
        (other_charity, receipt.referral_id),
        (db.caller("food_bank"), "not-a-uuid"),
    ):
        with pytest.raises(NotFound):
            async with db.unit_of_work() as uow:
                await intake.referral_progress(uow, caller, referral_id)


async def test_a_partner_joining_a_case_with_a_history_sees_nothing_from_before_it(
    referrals_database: ReferralsDatabase,
) -> None:
    """The council's case was assessed and is waiting for consent; a food bank's referral
    joins it. Its receipt and progress read as those of a referral that opened a new case."""
    db = referrals_database
    public_task = {"lawful_basis": LawfulBasis.PUBLIC_TASK, "consent": None, **JUSTIFIED}
    async with db.unit_of_work() as uow:
        first = await intake.receive_referral(uow, db.caller(), new_referral(**public_task))
    assert first.case_id is not None
    assessed = RiskAssessed(
        case_id=first.case_id,
        level=RiskLevel.HIGH,
        score=70,
        ruleset_version="v",
        assessed_at=utc_now(),
    )
    async with db.applying(assessed, subject=first.case_id) as uow:
        await cases.record_risk_assessment(uow, first.case_id, finding())
    (case,) = await db.rows("SELECT status FROM cases")
    assert case["status"] == "awaiting_consent"

    food_bank = db.caller("food_bank")
    stranger = replace(AMINA, given_name="Bea", family_name="Mensah")
    receipts = []
    for resident in (AMINA, stranger):
        async with db.unit_of_work() as uow:
            receipts.append(
                await intake.receive_referral(
                    uow,
                    food_bank,
                    new_referral(council=db.council, resident=resident, **public_task),
                )
            )
    joined, opened = receipts
    assert joined.model_dump(exclude={"referral_id"}) == opened.model_dump(exclude={"referral_id"})
    assert joined.case_id is None and joined.case_status is None
    assert joined.attached_to_open_case is None

    views = []
    for receipt in receipts:
        async with db.unit_of_work() as uow:
            views.append(await intake.referral_progress(uow, food_bank, receipt.referral_id))
    for view in views:
        assert view.case_status == "received"  # not the joined case's awaiting_consent
        assert [(e.action, e.status) for e in view.timeline] == [("referral received", None)]
    # The council's own view of its referral is as it was: the case's status and history.
    async with db.unit_of_work() as uow:
        council_view = await intake.referral_progress(uow, db.caller(), first.referral_id)
    assert council_view.case_status == "awaiting_consent"
    assert [e.status for e in council_view.timeline if e.status] == [
        "received",
        "assessed",
        "awaiting_consent",
    ]


async def test_a_council_refers_only_into_its_own_council(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    async with db.unit_of_work() as uow:
        await intake.receive_referral(uow, db.caller(), new_referral())
    other_council = db.caller(organisation=db.other_council)
    with pytest.raises(Invalid) as refused:
        async with db.unit_of_work() as uow:
            await intake.receive_referral(uow, other_council, new_referral(council=db.council))
    assert refused.value.field == "council"
    assert await db.count("referrals") == 1 and await db.count("cases") == 1
    async with db.unit_of_work() as uow:
        own = await intake.receive_referral(uow, other_council, new_referral())
    (case,) = await db.rows("SELECT council FROM cases WHERE id = :id", id=own.case_id)
    assert case["council"] == db.other_council


@pytest.mark.parametrize("field", ["given_name", "family_name"])
async def test_a_name_without_a_letter_is_refused_by_the_use_case(
    referrals_database: ReferralsDatabase, field: str
) -> None:
    db = referrals_database
    resident = (
        replace(AMINA, given_name="?? 12")
        if field == "given_name"
        else replace(AMINA, family_name="?? 12")
    )
    nameless = new_referral(resident=resident)
    with pytest.raises(Invalid) as refused:
        async with db.unit_of_work() as uow:
            await intake.receive_referral(uow, db.caller(), nameless)
    assert (refused.value.field, refused.value.reason) == (
        f"resident.{field}",
        "must contain a letter",
    )
    assert await db.count("residents") == 0


async def test_a_referral_arriving_as_her_case_closes_opens_a_new_one(
    referrals_database: ReferralsDatabase,
) -> None:
    """Her case is being withdrawn (its row locked, the transaction not yet committed) as a
    second referral of her arrives: the referral waits for the case, sees it closed, and
    opens a new case (attached to the closed one, its needs would never be routed)."""
    db = referrals_database
    async with db.unit_of_work() as uow:
        first = await intake.receive_referral(uow, db.caller(), new_referral())

    async def refer_again() -> intake.ReferralReceipt:
        async with db.unit_of_work() as uow:
            return await intake.receive_referral(uow, db.caller(), new_referral())

    async with db.engine.connect() as closing:
        await closing.execute(
            text("SELECT 1 FROM cases WHERE id = :c FOR UPDATE"), {"c": first.case_id}
        )
        second = asyncio.create_task(refer_again())
        await wait_for(
            lambda: waiting_on_a_lock(db.engine),
            timeout=20,
            what="the referral to wait for the case",
        )
        await closing.execute(
            text("UPDATE cases SET status = 'withdrawn' WHERE id = :c"), {"c": first.case_id}
        )
        await closing.commit()
    receipt = await second
    assert receipt.attached_to_open_case is False and receipt.case_id != first.case_id
    assert await db.count("cases", "status = 'withdrawn'") == 1
    assert await db.count("cases", "status <> 'withdrawn'") == 1
