"""Near misses, held routing and merges of open cases, on a real migrated PostgreSQL (no
broker, no HTTP): the candidate search, the scored comparison, holds released by a
caseworker's decision, and two open cases of one person merged into one."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import text

from services.referrals.service_layer import cases, intake, residents
from services.referrals.service_layer.cases import OfferChange, QueueQuery
from shared.errors import Conflict
from shared.events.envelope import utc_now
from shared.events.payloads import OfferAccepted, RiskAssessed
from shared.vocabulary import Need, OfferStatus
from tests.integration.referrals.conftest import ReferralsDatabase
from tests.integration.referrals.usecase_helpers import AMINA, finding, new_referral

pytestmark = pytest.mark.integration

ASSESSED = RiskAssessed(
    case_id="c", level="high", score=70, ruleset_version="v", assessed_at=utc_now()
)


async def _refer(db: ReferralsDatabase, needs: tuple[Need, ...] = (Need.FOOD,), **facts: object):
    referral = new_referral(resident=replace(AMINA, **facts), needs=needs)
    async with db.unit_of_work() as uow:
        receipt = await intake.receive_referral(uow, db.caller(), referral)
    assert receipt.case_id is not None
    return receipt


async def _assess(db: ReferralsDatabase, case_id: str) -> None:
    async with db.applying(ASSESSED, subject=case_id) as uow:
        await cases.record_risk_assessment(uow, case_id, finding())


async def _case(db: ReferralsDatabase, case_id: str) -> dict:
    (row,) = await db.rows("SELECT * FROM cases WHERE id = :id", id=case_id)
    return row


async def _packets_for(db: ReferralsDatabase, case_id: str) -> list[list[str]]:
    return [
        e["packet"]["needs"]
        for e in await db.events("referrals.case.ready_for_routing")
        if e["case_id"] == case_id
    ]


async def _routed_and_a_near_miss(db: ReferralsDatabase):
    """Amina Okafor's case is routed for food; a second referral types her "Okafur" and
    asks for food and debt advice."""
    first = await _refer(db)
    await _assess(db, first.case_id)
    assert (await _case(db, first.case_id))["status"] == "ready_for_routing"
    second = await _refer(db, needs=(Need.FOOD, Need.MONEY_AND_DEBT), family_name="Okafur")
    assert second.possible_duplicates == 1 and second.case_id != first.case_id
    await _assess(db, second.case_id)
    return first, second


async def test_a_near_miss_is_listed_and_its_need_held_until_a_rejection_releases_it(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    _, second = await _routed_and_a_near_miss(db)
    # Debt advice goes to partners; food waits: the possible duplicate is fed already.
    assert await _packets_for(db, second.case_id) == [["money_and_debt"]]
    async with db.unit_of_work() as uow:
        (duplicate,) = await residents.possible_duplicates(uow, db.caller())
        page = await cases.case_queue(uow, db.caller(), QueueQuery())
    assert duplicate.held_needs == ("food",) and "family name close" in duplicate.reason
    assert page.items[0].id == second.case_id and page.items[0].held_for_duplicate
    assert not any(item.held_for_duplicate for item in page.items[1:])

    async with db.unit_of_work() as uow:
        await residents.decide_duplicate(uow, db.caller(), duplicate.id, "rejected")
    # Different people: the held need is routed now.
    assert await _packets_for(db, second.case_id) == [
        ["money_and_debt"],
        ["food", "money_and_debt"],
    ]
    assert await db.count("routing_holds", "status = 'released'") == 1
    async with db.unit_of_work() as uow:
        page = await cases.case_queue(uow, db.caller(), QueueQuery())
    assert not any(item.held_for_duplicate for item in page.items)


async def test_a_case_whose_every_need_is_held_waits_and_confirming_merges_it(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    first = await _refer(db)
    await _assess(db, first.case_id)
    second = await _refer(db, given_name="Okafor", family_name="Amina")  # names swapped
    await _assess(db, second.case_id)
    held = await _case(db, second.case_id)
    assert held["status"] == "assessed" and await _packets_for(db, second.case_id) == []
    timeline = await db.rows(
        "SELECT action FROM timeline WHERE case_id = :id ORDER BY id", id=second.case_id
    )
    assert "routing held" in [t["action"] for t in timeline]

    async with db.unit_of_work() as uow:
        (duplicate,) = await residents.possible_duplicates(uow, db.caller())
        await residents.decide_duplicate(uow, db.caller(), duplicate.id, "confirmed")
    merged = await _case(db, second.case_id)
    assert merged["status"] == "withdrawn" and str(merged["merged_into_case"]) == first.case_id
    assert await _packets_for(db, second.case_id) == []  # never routed: no double help
    assert await db.count("routing_holds", "status = 'merged'") == 1
    (event,) = await db.events("referrals.residents.merged")
    assert (event["merged_case_id"], event["survivor_case_id"]) == (
        second.case_id,
        first.case_id,
    )
    assert event["merged_resident_keys"] and event["into_resident_keys"]


async def test_two_open_cases_merge_into_one_and_the_duplicate_offers_are_withdrawn(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    first = await _refer(db)
    await _assess(db, first.case_id)
    # Married and moved: matching sees another person, a caseworker knows better.
    moved = await _refer(
        db, needs=(Need.FOOD, Need.HOUSING), family_name="Mensah", postcode="E8 1DY"
    )
    assert moved.possible_duplicates == 0
    await _assess(db, moved.case_id)
    now = utc_now()
    for case_id, offer_id in ((first.case_id, "o-first"), (moved.case_id, "o-moved")):
        offered = OfferAccepted(
            offer_id=offer_id, case_id=case_id, need="food", partner_id="p", at=now
        )
        async with db.applying(offered, subject=case_id) as uow:
            await cases.record_offer_change(
                uow,
                OfferChange(offer_id, case_id, Need.FOOD, "p", OfferStatus.OFFERED, now),
            )
    kept = str((await _case(db, first.case_id))["resident_id"])
    merged = str((await _case(db, moved.case_id))["resident_id"])

    async with db.unit_of_work() as uow:
        await residents.merge_resident(uow, db.caller(), merged, kept)
    survivor = await _case(db, first.case_id)
    assert survivor["needs"] == ["food", "housing"] and survivor["status"] == "offered"
    assert await db.count("referrals", "case_id = :id", id=first.case_id) == 2
    assert await db.count("consents", "case_id = :id", id=first.case_id) == 2
    gone = await _case(db, moved.case_id)
    assert gone["status"] == "withdrawn" and gone["resident_id"] == survivor["resident_id"]
    # Partners withdraw the merged case's offers (the duplicate food offer among them) and
    # the survivor routes the need it did not have.
    (closed,) = [
        e for e in await db.events("referrals.case.closed") if e["case_id"] == moved.case_id
    ]
    assert closed["withdrawn"] is True
    assert (await _packets_for(db, first.case_id))[-1] == ["food", "housing"]
    assert await db.count("timeline", "case_id = :id", id=moved.case_id) > 3  # kept
    (record,) = await db.rows("SELECT * FROM case_merges")
    assert record["moved"]["survivor_before"]["needs"] == ["food"]


async def test_a_merge_leaves_a_third_persons_open_question_open_and_its_need_held(
    referrals_database: ReferralsDatabase,
) -> None:
    """Amina's record A (routed for food) has a near miss C waiting (C's food held). A
    caseworker merges A into Amina's other record B: C's entry now names B, C's food stays
    held (because of B's case now), and C's question is still the caseworker's to decide."""
    db = referrals_database
    a, c = await _routed_and_a_near_miss(db)
    b = await _refer(db, family_name="Mensah", postcode="E8 1DY")  # married and moved
    await _assess(db, b.case_id)
    record = {
        name: str((await _case(db, receipt.case_id))["resident_id"])
        for name, receipt in (("a", a), ("b", b), ("c", c))
    }
    async with db.unit_of_work() as uow:
        await residents.merge_resident(uow, db.caller(), record["a"], record["b"])

    async with db.unit_of_work() as uow:
        (waiting,) = await residents.possible_duplicates(uow, db.caller())
    assert {waiting.resident_id, waiting.candidate_id} == {record["c"], record["b"]}
    assert waiting.status == "open" and waiting.held_needs == ("food",)
    (hold,) = await db.rows("SELECT * FROM routing_holds WHERE case_id = :id", id=c.case_id)
    assert (hold["status"], str(hold["other_case_id"])) == ("held", b.case_id)
    assert await _packets_for(db, c.case_id) == [["money_and_debt"]]  # food not sent twice

    async with db.unit_of_work() as uow:  # different people after all: C's food goes out
        await residents.decide_duplicate(uow, db.caller(), waiting.id, "rejected")
    assert (await _packets_for(db, c.case_id))[-1] == ["food", "money_and_debt"]


async def test_an_entry_naming_a_record_merged_away_cannot_be_confirmed(
    referrals_database: ReferralsDatabase,
) -> None:
    """Merges re-point open entries to the survivor; an entry left naming a merged record
    (written before that rule) is refused, not merged a second time."""
    db = referrals_database
    a, _ = await _routed_and_a_near_miss(db)
    b = await _refer(db, family_name="Mensah", postcode="E8 1DY")
    async with db.unit_of_work() as uow:
        (entry,) = await residents.possible_duplicates(uow, db.caller())
    async with db.engine.begin() as connection:
        await connection.execute(
            text("UPDATE residents SET merged_into = :b WHERE id = :a"),
            {
                "a": str((await _case(db, a.case_id))["resident_id"]),
                "b": str((await _case(db, b.case_id))["resident_id"]),
            },
        )
    before = await db.count("case_merges")
    async with db.unit_of_work() as uow:
        with pytest.raises(Conflict, match="merged into another already"):
            await residents.decide_duplicate(uow, db.caller(), entry.id, "confirmed")
    assert await db.count("case_merges") == before
