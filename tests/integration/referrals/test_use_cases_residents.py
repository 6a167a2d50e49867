"""The resident use cases on a real migrated PostgreSQL: no broker, no HTTP."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.referrals.service_layer import cases, intake, residents
from shared.errors import Conflict, NotFound
from tests.integration.referrals.conftest import ReferralsDatabase
from tests.integration.referrals.usecase_helpers import AMINA, new_referral

pytestmark = pytest.mark.integration


async def _refer(db: ReferralsDatabase, **facts: object) -> intake.ReferralReceipt:
    referral = new_referral(resident=replace(AMINA, **facts))
    async with db.unit_of_work() as uow:
        return await intake.receive_referral(uow, db.caller(), referral)


async def _resident_of(db: ReferralsDatabase, case_id: str) -> str:
    (row,) = await db.rows("SELECT resident_id FROM cases WHERE id = :id", id=case_id)
    return str(row["resident_id"])


async def test_an_uncertain_match_waits_for_a_caseworker_and_confirming_it_merges(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    first = await _refer(db)
    moved = await _refer(db, postcode="E8 1DY")
    assert moved.possible_duplicates == 1 and moved.case_id != first.case_id
    assert first.case_id and moved.case_id  # a council's receipt names the case

    async with db.unit_of_work() as uow:
        (duplicate,) = await residents.possible_duplicates(uow, db.caller())
    assert "date of birth exact, postcode different" in duplicate.reason
    assert duplicate.score is not None and duplicate.score >= 10
    assert {c.field: c.agreement for c in duplicate.contributions}["postcode"] == "different"
    assert duplicate.resident_name == duplicate.candidate_name == "Amina Okafor"
    async with db.unit_of_work() as uow:  # another council sees none of it
        assert (
            await residents.possible_duplicates(uow, db.caller(organisation=db.other_council)) == []
        )

    # Both have an open case: confirming merges the newer case into the first one.
    async with db.unit_of_work() as uow:
        confirmed = await residents.decide_duplicate(uow, db.caller(), duplicate.id, "confirmed")
    assert (confirmed.id, confirmed.status) == (duplicate.id, "confirmed")

    survivor = await _resident_of(db, first.case_id)
    assert await _resident_of(db, moved.case_id) == survivor
    assert await db.count("referrals", "resident_id = :id", id=survivor) == 2
    assert await db.count("referrals", "case_id = :id", id=first.case_id) == 2
    (merged_case,) = await db.rows(
        "SELECT status, merged_into_case FROM cases WHERE id = :id", id=moved.case_id
    )
    assert merged_case["status"] == "withdrawn"
    assert str(merged_case["merged_into_case"]) == first.case_id
    (last,) = await db.rows(
        "SELECT action FROM timeline WHERE case_id = :id ORDER BY id DESC LIMIT 1",
        id=moved.case_id,
    )
    assert last["action"] == "resident records merged"
    with pytest.raises(Conflict) as again:
        async with db.unit_of_work() as uow:
            await residents.decide_duplicate(uow, db.caller(), duplicate.id, "rejected")
    assert (again.value.detail, again.value.current_status) == ("already confirmed", "confirmed")


async def test_rejecting_a_possible_duplicate_keeps_both_residents(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    await _refer(db)
    await _refer(db, date_of_birth=None)
    async with db.unit_of_work() as uow:
        (duplicate,) = await residents.possible_duplicates(uow, db.caller())
    async with db.unit_of_work() as uow:
        rejected = await residents.decide_duplicate(uow, db.caller(), duplicate.id, "rejected")
    assert rejected.status == "rejected"
    assert await db.count("residents", "merged_into IS NULL") == 2
    async with db.unit_of_work() as uow:
        assert await residents.possible_duplicates(uow, db.caller()) == []
        assert [
            d.id for d in await residents.possible_duplicates(uow, db.caller(), "rejected")
        ] == [duplicate.id]


async def test_a_merge_needs_two_residents_of_one_council_and_settles_their_duplicates(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    first = await _refer(db)
    second = await _refer(db, postcode="E8 1DY")
    assert first.case_id and second.case_id  # a council's receipt names the case
    async with db.unit_of_work() as uow:
        await cases.withdraw_case(uow, db.caller(), second.case_id, "the same person")
    kept, merged = await _resident_of(db, first.case_id), await _resident_of(db, second.case_id)

    for caller, resident_id, into in (
        (db.caller(), merged, merged),  # not two residents
        (db.caller(organisation=db.other_council), merged, kept),  # not its residents
        (db.caller(), merged, "6b0f0b9e-4a57-4d0c-9a07-0d6d8a0c1f11"),
    ):
        with pytest.raises(NotFound, match="two distinct residents of one council"):
            async with db.unit_of_work() as uow:
                await residents.merge_resident(uow, caller, resident_id, into)

    async with db.unit_of_work() as uow:
        await residents.merge_resident(uow, db.caller(), merged, kept)
    (row,) = await db.rows("SELECT merged_into FROM residents WHERE id = :id", id=merged)
    assert str(row["merged_into"]) == kept
    (duplicate,) = await db.rows("SELECT status, decided_by FROM possible_duplicates")
    assert (duplicate["status"], duplicate["decided_by"]) == ("confirmed", "caseworker-person")
