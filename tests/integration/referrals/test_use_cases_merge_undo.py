"""Undoing a merge, on a real migrated PostgreSQL (no broker, no HTTP): two people after all,
each with what the merge had moved, both timelines kept; refused when it could not restore
exactly, or a second time; another council's merge is not found."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from services.referrals.adapters import residents as residents_db
from services.referrals.service_layer import cases, intake, residents
from services.referrals.service_layer.cases import BasisChange, OfferChange
from shared.errors import Conflict, NotFound
from shared.events.envelope import utc_now
from shared.events.payloads import OfferWithdrawn, RiskAssessed
from shared.vocabulary import LawfulBasis, Need, OfferStatus
from tests.integration.messaging_helpers import waiting_on_a_lock
from tests.integration.referrals.conftest import ReferralsDatabase
from tests.integration.referrals.usecase_helpers import (
    AMINA,
    JUSTIFIED,
    consent,
    finding,
    new_referral,
)

pytestmark = pytest.mark.integration

ASSESSED = RiskAssessed(
    case_id="c", level="high", score=70, ruleset_version="v", assessed_at=utc_now()
)


async def _refer(
    db: ReferralsDatabase,
    needs: tuple[Need, ...] = (Need.FOOD,),
    sharing: dict[str, Any] | None = None,
    **facts: object,
) -> str:
    referral = new_referral(resident=replace(AMINA, **facts), needs=needs, **(sharing or {}))
    async with db.unit_of_work() as uow:
        receipt = await intake.receive_referral(uow, db.caller(), referral)
    assert receipt.case_id is not None
    async with db.applying(ASSESSED, subject=receipt.case_id) as uow:
        await cases.record_risk_assessment(uow, receipt.case_id, finding())
    return receipt.case_id


async def _case(db: ReferralsDatabase, case_id: str) -> dict:
    (row,) = await db.rows("SELECT * FROM cases WHERE id = :id", id=case_id)
    return row


async def _offer(db: ReferralsDatabase, case_id: str, offer_id: str, status: OfferStatus) -> None:
    now = utc_now()
    event = OfferWithdrawn(
        offer_id=offer_id, case_id=case_id, need=Need.FOOD, partner_id="p", at=now, reason="r"
    )
    async with db.applying(event, subject=case_id) as uow:
        await cases.record_offer_change(
            uow, OfferChange(offer_id, case_id, Need.FOOD, "p", status, now)
        )


async def _merged(db: ReferralsDatabase, needs: tuple[Need, ...] = (Need.FOOD,)):
    """Amina Okafor routed for food (offered); "Amina Mensah" elsewhere, the same day,
    routed for ``needs`` (food offered), with a note: merged by a caseworker into Amina's
    record. Partners then withdraw the merged case's offer, as they do."""
    first = await _refer(db)
    second = await _refer(db, needs=needs, family_name="Mensah", postcode="E8 1DY")
    await _offer(db, first, "o-first", OfferStatus.OFFERED)
    await _offer(db, second, "o-second", OfferStatus.OFFERED)
    async with db.unit_of_work() as uow:
        await cases.add_note(uow, db.caller(), second, "Prefers a call after 6pm.")
    kept = str((await _case(db, first))["resident_id"])
    gone = str((await _case(db, second))["resident_id"])
    async with db.unit_of_work() as uow:
        await residents.merge_resident(uow, db.caller(), gone, kept)
    await _offer(db, second, "o-second", OfferStatus.WITHDRAWN)
    async with db.unit_of_work() as uow:
        (merge,) = await residents.merges(uow, db.caller(), gone)
    return first, second, kept, gone, merge


async def _timeline(db: ReferralsDatabase, case_id: str) -> list[dict]:
    return await db.rows("SELECT * FROM timeline WHERE case_id = :id ORDER BY id", id=case_id)


async def test_an_undo_restores_both_cases_and_keeps_both_timelines(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    first, second, kept, gone, merge = await _merged(db)
    assert (merge.merged_resident_id, merge.into_resident_id) == (gone, kept)
    assert (merge.merged_case_id, merge.survivor_case_id, merge.undone_at) == (second, first, None)
    timeline_before = {c: len(await _timeline(db, c)) for c in (first, second)}
    packets_before = len(await db.events("referrals.case.ready_for_routing"))

    async with db.unit_of_work() as uow:
        undone = await residents.undo_merge(uow, db.caller(), merge.id, "different people")
    assert undone.undone_at is not None
    assert undone.undone_by == f"caseworker-person ({db.council})"

    # The record and its case are its own again, with what the merge had moved.
    (record,) = await db.rows("SELECT merged_into FROM residents WHERE id = :id", id=gone)
    assert record["merged_into"] is None
    restored, survivor = await _case(db, second), await _case(db, first)
    assert str(restored["resident_id"]) == gone and restored["merged_into_case"] is None
    assert str(survivor["resident_id"]) == kept and survivor["needs"] == ["food"]
    for table in ("referrals", "consents", "notes"):
        assert await db.count(table, "case_id = :id", id=second) == 1, table
    assert await db.count("referrals", "case_id = :id", id=first) == 1
    assert await db.count("referrals", "resident_id = :id", id=gone) == 1
    assert await db.count("consents", "case_id = :id", id=first) == 1
    # Open again and routed the usual way; its withdrawn offer stays withdrawn.
    assert restored["status"] == "ready_for_routing"
    packets = await db.events("referrals.case.ready_for_routing")
    assert [p["case_id"] for p in packets[packets_before:]] == [second]
    assert packets[-1]["packet"]["needs"] == ["food"]
    (offer,) = await db.rows("SELECT status FROM offers WHERE id = 'o-second'")
    assert offer["status"] == "withdrawn"
    assert survivor["status"] == "offered"  # the survivor's own help goes on

    # Both timelines kept, each with who undid it and why.
    for case_id in (first, second):
        timeline = await _timeline(db, case_id)
        assert len(timeline) > timeline_before[case_id]
        (entry,) = [t for t in timeline if t["action"] == "un-merged"]
        assert entry["actor"] == "caseworker-person" and entry["actor_org"] == db.council
        assert "different people" in entry["detail"]
    actions = [t["action"] for t in await _timeline(db, second)]
    assert actions.index("merged into another case") < actions.index("un-merged")

    (event,) = await db.events("referrals.residents.unmerged")
    assert (event["merge_id"], event["restored_case_id"], event["survivor_case_id"]) == (
        merge.id,
        second,
        first,
    )
    assert event["restored_case_ids"] == [second]
    assert event["restored_resident_keys"] and event["into_resident_keys"]

    # A second undo is refused, and says by whom the first was done.
    with pytest.raises(Conflict, match="already undone by caseworker-person"):
        async with db.unit_of_work() as uow:
            await residents.undo_merge(uow, db.caller(), merge.id, "again")


async def test_another_councils_merge_is_not_found_and_an_operator_may_undo(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    _, second, _, _, merge = await _merged(db)
    with pytest.raises(NotFound, match="merge not found"):
        async with db.unit_of_work() as uow:
            await residents.undo_merge(uow, db.caller(organisation=db.other_council), merge.id, "x")
    async with db.unit_of_work() as uow:
        assert await residents.merges(uow, db.caller(organisation=db.other_council)) == []
    assert await db.count("case_merges", "undone_at IS NULL") == 1
    async with db.unit_of_work() as uow:
        undone = await residents.undo_merge(uow, db.caller("operator"), merge.id, "not her")
    assert undone.undone_by == "operator-person (operator)"
    assert (await _case(db, second))["status"] == "ready_for_routing"


async def test_an_undo_is_refused_while_partners_help_the_survivor_with_a_merged_need(
    referrals_database: ReferralsDatabase,
) -> None:
    """The merge gave the survivor housing, and routed it: partners may be placing it under
    the survivor's case. An offer is withdrawn only with its whole case, so the undo waits
    until the caseworker has stopped the survivor's sharing (here: a basis change)."""
    db = referrals_database
    first, second, _, _, merge = await _merged(db, needs=(Need.FOOD, Need.HOUSING))
    assert (await _case(db, first))["needs"] == ["food", "housing"]
    with pytest.raises(Conflict, match="asked to help the surviving case with housing"):
        async with db.unit_of_work() as uow:
            await residents.undo_merge(uow, db.caller(), merge.id, "different people")
    assert await db.count("case_merges", "undone_at IS NULL") == 1  # nothing written

    change = BasisChange(basis=LawfulBasis.PUBLIC_TASK, reason="until we know who is who")
    async with db.unit_of_work() as uow:
        await cases.change_basis(uow, db.caller(), first, replace(change, **JUSTIFIED))
    assert (await _case(db, first))["status"] == "awaiting_consent"
    async with db.unit_of_work() as uow:
        await residents.undo_merge(uow, db.caller(), merge.id, "different people")
    survivor, restored = await _case(db, first), await _case(db, second)
    assert survivor["needs"] == ["food"] and survivor["lawful_basis"] == "public_task"
    assert restored["needs"] == ["food", "housing"] and restored["status"] == "ready_for_routing"


async def test_an_undo_is_refused_once_it_cannot_restore_exactly(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    first, _, _, _, merge = await _merged(db)
    # A referral joined the surviving case since: whose is it?
    referral = new_referral(resident=AMINA, needs=(Need.FOOD,))
    async with db.unit_of_work() as uow:
        receipt = await intake.receive_referral(uow, db.caller(), referral)
    assert receipt.case_id == first and receipt.attached_to_open_case
    with pytest.raises(Conflict, match="1 referrals recorded since the merge"):
        async with db.unit_of_work() as uow:
            await residents.undo_merge(uow, db.caller(), merge.id, "different people")

    # And once the surviving case is closed, its outcome covers both: refused too.
    async with db.unit_of_work() as uow:
        await cases.withdraw_case(uow, db.caller(), first, "moved away")
    with pytest.raises(Conflict, match="the surviving case is withdrawn since the merge"):
        async with db.unit_of_work() as uow:
            await residents.undo_merge(uow, db.caller(), merge.id, "different people")
    assert await db.count("case_merges", "undone_at IS NULL") == 1


async def test_a_survivor_shared_only_on_the_merged_cases_consent_stops_being_shared(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    public_task = {"lawful_basis": LawfulBasis.PUBLIC_TASK, "consent": None, **JUSTIFIED}
    first = await _refer(db, sharing=public_task)
    assert (await _case(db, first))["status"] == "awaiting_consent"
    second = await _refer(db, family_name="Mensah", postcode="E8 1DY")
    kept = str((await _case(db, first))["resident_id"])
    gone = str((await _case(db, second))["resident_id"])
    async with db.unit_of_work() as uow:
        await residents.merge_resident(uow, db.caller(), gone, kept)
    survivor = await _case(db, first)
    assert (survivor["lawful_basis"], survivor["status"]) == ("consent", "ready_for_routing")

    async with db.unit_of_work() as uow:
        (merge,) = await residents.merges(uow, db.caller())
        await residents.undo_merge(uow, db.caller(), merge.id, "different people")
    survivor = await _case(db, first)
    assert (survivor["lawful_basis"], survivor["status"]) == ("public_task", "awaiting_consent")
    assert survivor["basis_justification"] == JUSTIFIED["justification"]
    (stopped,) = [
        e for e in await db.events("referrals.consent.withdrawn") if e["case_id"] == first
    ]
    assert stopped["reason"] == "basis_changed"
    assert (await _case(db, second))["status"] == "ready_for_routing"


async def _need(db: ReferralsDatabase, case_id: str, need: str) -> dict:
    (row,) = await db.rows(
        "SELECT * FROM case_needs WHERE case_id = :id AND need = :need", id=case_id, need=need
    )
    return row


async def test_an_unroutable_survivor_shared_on_the_merged_cases_consent_stops_being_shared(
    referrals_database: ReferralsDatabase,
) -> None:
    """Partners still hold an unroutable case's other needs (here: food offered): the undo
    stops its sharing the one way sharing stops, as for a routed case."""
    db = referrals_database
    public_task = {"lawful_basis": LawfulBasis.PUBLIC_TASK, "consent": None, **JUSTIFIED}
    first = await _refer(db, needs=(Need.FOOD, Need.MONEY_AND_DEBT), sharing=public_task)
    second = await _refer(db, family_name="Mensah", postcode="E8 1DY")
    kept = str((await _case(db, first))["resident_id"])
    gone = str((await _case(db, second))["resident_id"])
    async with db.unit_of_work() as uow:
        await residents.merge_resident(uow, db.caller(), gone, kept)
    await _offer(db, first, "o-food", OfferStatus.OFFERED)
    unroutable = cases.Unroutable(first, ("no advice partner",), utc_now(), (Need.MONEY_AND_DEBT,))
    async with db.applying(ASSESSED, subject=first) as uow:
        await cases.record_unroutable(uow, unroutable)
    assert (await _case(db, first))["status"] == "unroutable"
    assert (await _need(db, first, "food"))["status"] == "offered"

    async with db.unit_of_work() as uow:
        (merge,) = await residents.merges(uow, db.caller())
        await residents.undo_merge(uow, db.caller(), merge.id, "different people")
    survivor = await _case(db, first)
    assert (survivor["lawful_basis"], survivor["status"]) == ("public_task", "awaiting_consent")
    for need in ("food", "money_and_debt"):
        assert (await _need(db, first, need))["status"] == "waiting_for_consent", need
    (stopped,) = [
        e for e in await db.events("referrals.consent.withdrawn") if e["case_id"] == first
    ]
    assert stopped["reason"] == "basis_changed"


async def _undone_with_housing_taken_back(db: ReferralsDatabase) -> tuple[str, str, str, str]:
    """The merge gave the survivor housing; its sharing stopped, the merge was undone: the
    survivor's housing row is withdrawn (kept for the record)."""
    first, second, kept, gone, merge = await _merged(db, needs=(Need.FOOD, Need.HOUSING))
    change = BasisChange(basis=LawfulBasis.PUBLIC_TASK, reason="until we know who is who")
    async with db.unit_of_work() as uow:
        await cases.change_basis(uow, db.caller(), first, replace(change, **JUSTIFIED))
        await residents.undo_merge(uow, db.caller(), merge.id, "different people")
    assert (await _case(db, first))["needs"] == ["food"]
    assert (await _need(db, first, "housing"))["status"] == "withdrawn"
    return first, second, kept, gone


async def test_a_need_an_undo_took_away_is_routed_again_when_referred_again(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    first, _, _, _ = await _undone_with_housing_taken_back(db)
    referral = new_referral(resident=AMINA, needs=(Need.HOUSING,))
    async with db.unit_of_work() as uow:
        receipt = await intake.receive_referral(uow, db.caller(), referral)
    assert receipt.case_id == first and receipt.attached_to_open_case
    housing = await _need(db, first, "housing")
    assert (housing["status"], housing["offer_id"], housing["outcome"]) == ("routing", None, None)
    assert housing["last_event_at"] is None and housing["withdrawn_at"] is None
    assert (await _case(db, first))["status"] == "ready_for_routing"
    packets = await db.events("referrals.case.ready_for_routing")
    assert packets[-1]["case_id"] == first and "housing" in packets[-1]["packet"]["needs"]


async def test_a_need_an_undo_took_away_is_routed_again_when_the_two_are_merged_again(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    first, _, kept, gone = await _undone_with_housing_taken_back(db)
    async with db.unit_of_work() as uow:  # the same two after all
        await residents.merge_resident(uow, db.caller(), gone, kept)
    assert (await _case(db, first))["needs"] == ["food", "housing"]
    assert (await _need(db, first, "housing"))["status"] == "routing"


async def test_a_need_an_undo_took_away_is_routed_again_with_consent_for_it(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    first, _, _, _ = await _undone_with_housing_taken_back(db)
    async with db.unit_of_work() as uow:
        await cases.record_consent(
            uow, db.caller(), first, consent(), needs=(Need.FOOD, Need.HOUSING)
        )
    assert (await _need(db, first, "housing"))["status"] == "routing"
    assert (await _case(db, first))["status"] == "ready_for_routing"


# Someone else altogether: no possible duplicate of Amina.
BOLA: dict[str, Any] = {
    "given_name": "Bola",
    "family_name": "Adeyemi",
    "date_of_birth": date(1991, 7, 9),
    "postcode": "N1 9GU",
    "address": "3 Caledonian Road",
    "phone": "07700 900456",
}


async def _held_for_a_possible_duplicate(db: ReferralsDatabase) -> tuple[str, str, str]:
    """Amina routed for food (case Z); "Amina" at another postcode (case M), a possible
    duplicate of her, with food held; Bola routed for food (case K)."""
    z = await _refer(db)
    m = await _refer(db, postcode="E8 1DY")
    k = await _refer(db, **BOLA)
    assert (await _case(db, m))["status"] == "assessed"  # all it needs is held
    assert await db.count("possible_duplicates") == 1
    return z, m, k


async def _resident(db: ReferralsDatabase, case_id: str) -> str:
    return str((await _case(db, case_id))["resident_id"])


async def _only_merge(db: ReferralsDatabase, resident_id: str) -> str:
    async with db.unit_of_work() as uow:
        (merge, *_) = await residents.merges(uow, db.caller(), resident_id)
    assert merge.undone_at is None
    return merge.id


async def test_an_undo_gives_back_the_possible_duplicates_and_holds_the_merge_moved(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    z, m, k = await _held_for_a_possible_duplicate(db)
    rz, rm, rk = [await _resident(db, c) for c in (z, m, k)]
    (before,) = await db.rows("SELECT * FROM possible_duplicates")
    assert (str(before["resident_id"]), str(before["candidate_id"])) == (rm, rz)

    # M's record merged into K's: its possible duplicate now names K, its case's hold ends.
    async with db.unit_of_work() as uow:
        await residents.merge_resident(uow, db.caller(), rm, rk)
    (entry,) = await db.rows("SELECT * FROM possible_duplicates")
    (hold,) = await db.rows("SELECT * FROM routing_holds")
    assert (str(entry["resident_id"]), entry["status"], hold["status"]) == (rk, "open", "merged")
    packets_before = len(await db.events("referrals.case.ready_for_routing"))
    async with db.unit_of_work() as uow:
        await residents.undo_merge(uow, db.caller(), await _only_merge(db, rm), "not Bola")
    (entry,) = await db.rows("SELECT * FROM possible_duplicates")
    (hold,) = await db.rows("SELECT * FROM routing_holds")
    assert (str(entry["resident_id"]), entry["status"]) == (rm, "open")
    assert (hold["status"], hold["settled_at"], str(hold["case_id"])) == ("held", None, m)
    # Reopened, M's case still waits for the caseworker: no double help for food.
    assert (await _case(db, m))["status"] == "assessed"
    packets = await db.events("referrals.case.ready_for_routing")
    assert m not in [p["case_id"] for p in packets[packets_before:]]

    # Z's record merged into K's: the hold is because of K's case now; undone, Z's again.
    async with db.unit_of_work() as uow:
        await residents.merge_resident(uow, db.caller(), rz, rk)
    (entry,) = await db.rows("SELECT * FROM possible_duplicates")
    (hold,) = await db.rows("SELECT * FROM routing_holds")
    assert (str(entry["candidate_id"]), str(hold["other_case_id"])) == (rk, k)
    async with db.unit_of_work() as uow:
        await residents.undo_merge(uow, db.caller(), await _only_merge(db, rz), "not Bola")
    (entry,) = await db.rows("SELECT * FROM possible_duplicates")
    (hold,) = await db.rows("SELECT * FROM routing_holds")
    assert (str(entry["candidate_id"]), entry["status"]) == (rz, "open")
    assert (hold["status"], str(hold["other_case_id"])) == ("held", z)

    # And the caseworker can still settle it, between the two it was about.
    async with db.unit_of_work() as uow:
        decided = await residents.decide_duplicate(uow, db.caller(), entry["id"], "rejected")
    assert (decided.resident_id, decided.candidate_id) == (rm, rz)


async def test_an_undo_is_refused_once_a_possible_duplicate_it_moved_was_decided(
    referrals_database: ReferralsDatabase,
) -> None:
    """Merged into K, M's possible duplicate was about K; a caseworker rejected it (K is
    not Z). Whether M is Z was never decided: the undo cannot give that back."""
    db = referrals_database
    _, m, k = await _held_for_a_possible_duplicate(db)
    rm, rk = await _resident(db, m), await _resident(db, k)
    async with db.unit_of_work() as uow:
        await residents.merge_resident(uow, db.caller(), rm, rk)
    (entry,) = await db.rows("SELECT id FROM possible_duplicates")
    async with db.unit_of_work() as uow:
        await residents.decide_duplicate(uow, db.caller(), str(entry["id"]), "rejected")
    merge_id = await _only_merge(db, rm)
    with pytest.raises(Conflict, match="has been rejected since") as refused:
        async with db.unit_of_work() as uow:
            await residents.undo_merge(uow, db.caller(), merge_id, "not Bola")
    assert refused.value.current_status == "rejected"
    assert await db.count("case_merges", "undone_at IS NULL") == 1  # nothing written
    assert await db.count("residents", "merged_into IS NOT NULL") == 1


async def test_a_merge_of_the_survivor_while_an_undo_runs_waits_for_it(
    referrals_database: ReferralsDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The undo is held open just before it moves the records back (no case of either is
    open, so no case lock stands between them); a caseworker merges the survivor into a
    third record meanwhile. That merge waits for the undo's locks on the two records, then
    applies to what the undo left: the restored record keeps its case, the survivor's goes
    with it into the third. Without the locks the merge would take the restored record's
    case along while the undo says it gave it back."""
    db = referrals_database
    first = await _refer(db)
    second = await _refer(db, family_name="Mensah", postcode="E8 1DY")
    third = await _refer(db, **BOLA)
    for case_id in (first, second, third):
        async with db.unit_of_work() as uow:
            await cases.withdraw_case(uow, db.caller(), case_id, "helped elsewhere")
    kept, gone, other = [await _resident(db, c) for c in (first, second, third)]
    async with db.unit_of_work() as uow:
        await residents.merge_resident(uow, db.caller(), gone, kept)
    merge_id = await _only_merge(db, gone)

    paused, go = asyncio.Event(), asyncio.Event()
    move_back = residents_db.move_records_back

    async def held_open(*args: Any, **kwargs: Any) -> Any:
        paused.set()
        await go.wait()
        return await move_back(*args, **kwargs)

    monkeypatch.setattr(residents_db, "move_records_back", held_open)

    async def undo() -> None:
        async with db.unit_of_work() as uow:
            await residents.undo_merge(uow, db.caller(), merge_id, "different people")

    async def merge() -> None:
        async with db.unit_of_work() as uow:
            await residents.merge_resident(uow, db.caller(), kept, other)

    undoing = asyncio.create_task(undo())
    await paused.wait()
    merging = asyncio.create_task(merge())
    # Until the merge waits on a lock (or, were there none, has finished): no timing.
    while not await waiting_on_a_lock(db.engine):
        finished, _ = await asyncio.wait({merging}, timeout=0.02)
        if finished:
            break
    go.set()
    undone, merged = await asyncio.gather(undoing, merging, return_exceptions=True)
    for outcome in (undone, merged):
        assert outcome is None or isinstance(outcome, Conflict), outcome

    residents_now = {
        str(r["id"]): r["merged_into"] and str(r["merged_into"])
        for r in await db.rows("SELECT id, merged_into FROM residents")
    }
    owner = {c: await _resident(db, c) for c in (first, second, third)}
    if undone is None:  # the record and its case are its own again
        assert residents_now[gone] is None and owner[second] == gone
    else:
        assert residents_now[gone] == kept and owner[second] in (kept, other)
    if merged is None:  # the survivor, and what is still its, went into the third
        assert residents_now[kept] == other and owner[first] == other
        assert owner[second] == (gone if undone is None else other)
    else:
        assert residents_now[kept] is None and owner[first] == kept
    assert undone is None or merged is None  # one of them applied


async def test_an_undo_opens_again_a_possible_duplicate_the_merge_closed_as_asked_twice(
    referrals_database: ReferralsDatabase,
) -> None:
    """M and K are each a possible duplicate of Z: merged into K, M's entry was the same
    question as K's, and closed. Undone, M's question is open again, its hold with it."""
    db = referrals_database
    z, m, _ = await _held_for_a_possible_duplicate(db)
    k = await _refer(db, postcode="E7 9AB")
    rz, rm, rk = [await _resident(db, c) for c in (z, m, k)]
    entries = {
        (str(r["resident_id"]), str(r["candidate_id"])): r["id"]
        for r in await db.rows("SELECT * FROM possible_duplicates")
    }
    mine, theirs = entries[(rm, rz)], entries[(rk, rz)]
    async with db.unit_of_work() as uow:
        await residents.merge_resident(uow, db.caller(), rm, rk)
    (closed,) = await db.rows("SELECT * FROM possible_duplicates WHERE id = :id", id=mine)
    assert closed["status"] == "rejected"
    async with db.unit_of_work() as uow:
        await residents.undo_merge(uow, db.caller(), await _only_merge(db, rm), "not her")
    statuses = {
        r["id"]: (r["status"], r["decided_by"])
        for r in await db.rows("SELECT * FROM possible_duplicates")
    }
    assert statuses[mine] == ("open", None) and statuses[theirs] == ("open", None)
    holds = await db.rows("SELECT * FROM routing_holds WHERE case_id = :c", c=m)
    assert [(h["status"], h["duplicate_id"]) for h in holds] == [("held", mine)]
