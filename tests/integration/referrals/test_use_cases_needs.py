"""Needs one by one, on a real migrated PostgreSQL: partners' events move each need of a
case, the case's status follows from its needs in the same transaction, late and replayed
events never move a need backwards, and overdue offers show on the case and the queue."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from devtools.embedded import drop_database, ensure_database, with_database
from devtools.stack import load_service
from services.referrals.domain.needs import NeedStatus
from services.referrals.handlers import on_need_waiting
from services.referrals.service_layer import cases, gaps, intake
from shared.db import create_engine
from shared.events.envelope import utc_now
from shared.events.payloads import (
    GapDetected,
    GapReason,
    NeedWaiting,
    OfferAccepted,
    RiskAssessed,
)
from shared.migrations import upgrade
from shared.vocabulary import DeclineReason, Need, OfferStatus, Outcome
from tests.integration.referrals.conftest import ReferralsDatabase
from tests.integration.referrals.usecase_helpers import AMINA, finding, new_referral

pytestmark = pytest.mark.integration

ASSESSED = RiskAssessed(
    case_id="c", level="high", score=70, ruleset_version="v", assessed_at=utc_now()
)


async def _routed_case(db: ReferralsDatabase, needs: tuple[Need, ...]) -> str:
    async with db.unit_of_work() as uow:
        receipt = await intake.receive_referral(uow, db.caller(), new_referral(needs=needs))
    assert receipt.case_id is not None
    async with db.applying(ASSESSED, subject=receipt.case_id) as uow:
        await cases.record_risk_assessment(uow, receipt.case_id, finding())
    return receipt.case_id


class Partners:
    """What the partners service reports about one case, each report applied as its
    handler applies it (inside the consumer's transaction)."""

    def __init__(self, db: ReferralsDatabase, case_id: str) -> None:
        self.db, self.case_id, self.start = db, case_id, utc_now()

    def change(
        self, need: Need, offer: str, status: OfferStatus, minute: int, **values: Any
    ) -> cases.OfferChange:
        return cases.OfferChange(
            offer_id=offer,
            case_id=self.case_id,
            need=need,
            partner_id=f"partner-{offer}",
            status=status,
            at=self.start + timedelta(minutes=minute),
            **values,
        )

    async def send(self, change: cases.OfferChange) -> None:
        envelope = OfferAccepted(
            offer_id=change.offer_id,
            case_id=self.case_id,
            need=change.need,
            partner_id=change.partner_id,
            at=change.at,
        )
        async with self.db.applying(envelope, subject=self.case_id) as uow:
            await cases.record_offer_change(uow, change)

    async def unroutable(self, need: Need, minute: int) -> None:
        envelope = OfferAccepted(
            offer_id="-", case_id=self.case_id, need=need, partner_id="-", at=utc_now()
        )
        async with self.db.applying(envelope, subject=self.case_id) as uow:
            await cases.record_unroutable(
                uow,
                cases.Unroutable(
                    self.case_id,
                    (f"no service covers {need.value}",),
                    at=self.start + timedelta(minutes=minute),
                    needs=(need,),
                ),
            )

    async def overdue(self, need: Need, offer: str, minute: int) -> None:
        at = self.start + timedelta(minutes=minute)
        envelope = OfferAccepted(
            offer_id=offer, case_id=self.case_id, need=need, partner_id="p", at=at
        )
        async with self.db.applying(envelope, subject=self.case_id) as uow:
            await cases.record_offer_overdue(
                uow,
                cases.OverdueOffer(
                    offer, self.case_id, need, f"partner-{offer}", follow_up_by=at, at=at
                ),
            )


async def _needs(db: ReferralsDatabase, case_id: str) -> dict[str, dict[str, Any]]:
    rows = await db.rows("SELECT * FROM case_needs WHERE case_id = :c", c=case_id)
    return {row["need"]: row for row in rows}


async def _status(db: ReferralsDatabase, case_id: str) -> str:
    (row,) = await db.rows("SELECT status FROM cases WHERE id = :c", c=case_id)
    return str(row["status"])


async def test_each_need_moves_on_its_own_and_the_case_follows_all_of_them(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    case_id = await _routed_case(db, (Need.FOOD, Need.MONEY_AND_DEBT))
    assert {n: r["status"] for n, r in (await _needs(db, case_id)).items()} == {
        "food": "routing",
        "money_and_debt": "routing",
    }
    partners = Partners(db, case_id)
    food, debt = Need.FOOD, Need.MONEY_AND_DEBT
    await partners.send(partners.change(food, "f1", OfferStatus.OFFERED, 1))
    assert await _status(db, case_id) == "offered"
    await partners.unroutable(debt, 2)
    # Food offered and debt unroutable: the case is unroutable, whatever comes next for food.
    assert await _status(db, case_id) == "unroutable"
    await partners.send(partners.change(food, "f1", OfferStatus.ACCEPTED, 3))
    assert await _status(db, case_id) == "unroutable"
    needs = await _needs(db, case_id)
    assert (needs["food"]["status"], needs["money_and_debt"]["status"]) == (
        "accepted",
        "unroutable",
    )
    assert needs["money_and_debt"]["unroutable_reason"] == "no service covers money_and_debt"
    assert needs["food"]["offered_at"] == partners.start + timedelta(minutes=1)
    assert needs["food"]["accepted_at"] == needs["food"]["status_at"]

    async with db.unit_of_work() as uow:  # the gap fixed, the caseworker routes it again
        again = await cases.route_again(uow, db.caller(), case_id)
    assert again.status == "accepted"  # debt is routing again, food still accepted
    await partners.send(partners.change(debt, "d1", OfferStatus.OFFERED, 4))
    await partners.send(
        partners.change(food, "f1", OfferStatus.OUTCOME_RECORDED, 5, outcome=Outcome.NOT_ELIGIBLE)
    )
    assert await _status(db, case_id) == "offered"  # food not met; debt still offered
    await partners.send(partners.change(debt, "d1", OfferStatus.ACCEPTED, 6))
    await partners.send(
        partners.change(
            debt, "d1", OfferStatus.OUTCOME_RECORDED, 7, outcome=Outcome.SUPPORT_PROVIDED
        )
    )
    (case,) = await db.rows("SELECT status, outcome FROM cases WHERE id = :c", c=case_id)
    assert (case["status"], case["outcome"]) == ("closed", "support_provided")  # the best
    needs = await _needs(db, case_id)
    assert (needs["food"]["status"], needs["money_and_debt"]["status"]) == ("not_met", "met")
    changes = [
        (e["previous"], e["status"]) for e in await db.events("referrals.case.status_changed")
    ]
    assert changes == [
        ("received", "assessed"),
        ("assessed", "ready_for_routing"),
        ("ready_for_routing", "offered"),
        ("offered", "unroutable"),
        ("unroutable", "accepted"),  # routed again: debt routing, food accepted
        ("accepted", "offered"),  # food not met: debt offered is the furthest along
        ("offered", "accepted"),
        ("accepted", "closed"),
    ]
    (closed,) = await db.events("referrals.case.closed")
    assert closed["outcome"] == "support_provided"

    async with db.unit_of_work() as uow:
        detail = await cases.case_detail(uow, db.caller(), case_id)
    shown = {n["need"]: n for n in detail.needs}
    assert shown["money_and_debt"]["status"] == "met"
    assert set(shown["money_and_debt"]["times"]) >= {
        "routing",
        "unroutable",
        "offered",
        "accepted",
        "met",
    }


async def test_late_and_repeated_reports_never_move_a_need_backwards(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    in_order = await _routed_case(db, (Need.FOOD,))
    p = Partners(db, in_order)
    food = Need.FOOD
    story = [
        p.change(food, "a", OfferStatus.OFFERED, 1, partner_name="Stratford", service_name="S"),
        p.change(food, "a", OfferStatus.DECLINED, 2, decline_reason=DeclineReason.NO_CAPACITY),
        p.change(food, "b", OfferStatus.OFFERED, 2, partner_name="Pantry", service_name="P"),
        p.change(food, "b", OfferStatus.ACCEPTED, 3),
        p.change(food, "b", OfferStatus.IN_PROGRESS, 4, note="parcel delivered"),
    ]
    for change in story:
        await p.send(change)
    assert await _status(db, in_order) == "in_progress"

    # Another resident's case, the same story delivered backwards (a replay from the outbox).
    kwame = replace(AMINA, given_name="Kwame", family_name="Mensah", phone="07700 900456")
    async with db.unit_of_work() as uow:
        other = new_referral(needs=(food,), resident=kwame)
        backwards = (await intake.receive_referral(uow, db.caller(), other)).case_id
    assert backwards is not None
    async with db.applying(ASSESSED, subject=backwards) as uow:
        await cases.record_risk_assessment(uow, backwards, finding())
    q = Partners(db, backwards)
    q.start = p.start
    for change in reversed(story):
        await q.send(replace(change, case_id=backwards, offer_id=f"{change.offer_id}-2"))
    assert await _status(db, backwards) == "in_progress"
    (need,) = (await _needs(db, backwards)).values()
    assert (need["status"], need["offer_id"]) == ("in_progress", "b-2")
    # What the late reports carried is kept where the mirror lacked it.
    offers = {
        o["id"]: o for o in await db.rows("SELECT * FROM offers WHERE case_id = :c", c=backwards)
    }
    assert {k: o["status"] for k, o in offers.items()} == {
        "a-2": "declined",
        "b-2": "in_progress",
    }
    assert offers["b-2"]["partner_name"] == "Pantry"
    assert need["offered_at"] is not None and need["accepted_at"] is not None

    # Every report again (new deliveries, not inbox duplicates): nothing moves.
    before = (await _needs(db, in_order), await _status(db, in_order))
    events_before = await db.count("outbox")
    for change in story:
        await p.send(change)
    assert (await _needs(db, in_order), await _status(db, in_order)) == before
    assert await db.count("outbox") == events_before


async def test_consent_withdrawn_takes_the_needs_back_and_late_offer_reports_stay_out(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    case_id = await _routed_case(db, (Need.FOOD, Need.MONEY_AND_DEBT))
    p = Partners(db, case_id)
    await p.send(p.change(Need.FOOD, "f", OfferStatus.OFFERED, 1))
    await p.send(p.change(Need.MONEY_AND_DEBT, "d", OfferStatus.OFFERED, 1))
    await p.send(
        p.change(
            Need.MONEY_AND_DEBT,
            "d",
            OfferStatus.OUTCOME_RECORDED,
            2,
            outcome=Outcome.SUPPORT_PROVIDED,
        )
    )
    async with db.unit_of_work() as uow:
        back = await cases.record_consent_withdrawal(uow, db.caller(), case_id, "changed mind")
    assert back.status == "awaiting_consent"
    # The partner accepted just before it heard; its report arrives after the withdrawal.
    await p.send(p.change(Need.FOOD, "f", OfferStatus.ACCEPTED, 3))
    needs = await _needs(db, case_id)
    assert (needs["food"]["status"], needs["money_and_debt"]["status"]) == (
        "waiting_for_consent",
        "met",  # help already given stays given
    )
    assert await _status(db, case_id) == "awaiting_consent"


async def test_overdue_offers_show_on_the_case_in_the_queue_and_in_the_count(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    case_id = await _routed_case(db, (Need.FOOD, Need.MONEY_AND_DEBT))
    p = Partners(db, case_id)
    await p.send(p.change(Need.FOOD, "f", OfferStatus.OFFERED, 1))
    await p.send(p.change(Need.FOOD, "f", OfferStatus.ACCEPTED, 2))
    await p.overdue(Need.FOOD, "f", 30)
    await p.overdue(Need.FOOD, "f", 31)  # said again: one mark, from the first

    async with db.unit_of_work() as uow:
        detail = await cases.case_detail(uow, db.caller(), case_id)
    (overdue,) = detail.overdue_offers
    assert (overdue["id"], overdue["overdue_at"]) == ("f", p.start + timedelta(minutes=30))
    async with db.unit_of_work() as uow:
        late = await cases.case_queue(uow, db.caller(), cases.QueueQuery(overdue=True))
        waiting = await cases.case_queue(
            uow, db.caller(), cases.QueueQuery(need_statuses=(NeedStatus.ROUTING,))
        )
        accepted = await cases.case_queue(
            uow, db.caller(), cases.QueueQuery(need_statuses=(NeedStatus.ACCEPTED,))
        )
        counts = await cases.overdue_counts(uow, db.caller())
        elsewhere = await cases.overdue_counts(uow, db.caller(organisation=db.other_council))
    assert [(c.id, c.overdue_offers) for c in late.items] == [(case_id, 1)]
    assert late.items[0].need_statuses["food"] == "accepted"
    assert [c.id for c in waiting.items] == [case_id]  # money and debt is still routing
    assert [c.id for c in accepted.items] == [case_id]
    assert [(c.council, c.offers, c.cases) for c in counts] == [(db.council, 1, 1)]
    assert elsewhere == []  # another council sees none of this one's

    # Progress reported: no longer overdue; an overdue report older than it changes nothing.
    await p.send(p.change(Need.FOOD, "f", OfferStatus.IN_PROGRESS, 40))
    await p.overdue(Need.FOOD, "f", 35)
    async with db.unit_of_work() as uow:
        late = await cases.case_queue(uow, db.caller(), cases.QueueQuery(overdue=True))
        on_time = await cases.case_queue(uow, db.caller(), cases.QueueQuery(overdue=False))
    assert late.items == [] and [c.id for c in on_time.items] == [case_id]


async def test_the_migration_gives_existing_cases_a_row_per_need(postgres_admin_url: str) -> None:
    name = f"test_referrals_{uuid.uuid4().hex[:10]}"
    await ensure_database(postgres_admin_url, name)
    url = with_database(postgres_admin_url, name)
    service = load_service("referrals")
    try:
        upgrade(service, url, revision="0008")
        engine = create_engine(url)
        statuses = {
            "received": ("received", None),
            "awaiting_consent": ("waiting_for_consent", None),
            "offered": ("offered", "offered"),
            "unroutable": ("unroutable", None),
            "closed": ("met", "outcome_recorded"),
            "withdrawn": ("withdrawn", "withdrawn"),
        }
        ids = {status: str(uuid.uuid4()) for status in statuses}
        async with engine.begin() as connection:
            for status, (_, offer) in statuses.items():
                resident = str(uuid.uuid4())  # one open case per resident
                await connection.execute(
                    text(
                        "INSERT INTO residents (id, council, given_name, family_name, "
                        "norm_given, norm_family, preferred_contact, preferred_language, "
                        "interpreter_needed) "
                        "VALUES (:id, 'E09000025', 'A', 'B', 'a', 'b', 'phone', 'en', false)"
                    ),
                    {"id": resident},
                )
                await connection.execute(
                    text(
                        "INSERT INTO cases (id, council, resident_id, origin, status, priority, "
                        "urgency, needs, circumstances, lawful_basis) VALUES (:id, 'E09000025', "
                        ":r, 'referral', :s, 2, 'medium', '[\"food\"]', '[]', 'consent')"
                    ),
                    {"id": ids[status], "r": resident, "s": status},
                )
                if offer:
                    await connection.execute(
                        text(
                            "INSERT INTO offers (id, case_id, need, partner_id, status, "
                            "outcome, updated_at) VALUES (:o, :c, 'food', 'p', :s, :out, now())"
                        ),
                        {
                            "o": f"offer-{status}",
                            "c": ids[status],
                            "s": offer,
                            "out": "support_provided" if offer == "outcome_recorded" else None,
                        },
                    )
        await engine.dispose()
        upgrade(service, url)
        engine = create_engine(url)
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT * FROM case_needs"))).mappings().all()
        await engine.dispose()
        by_case = {str(row["case_id"]): row for row in rows}
        for status, (need_status, _) in statuses.items():
            row = by_case[ids[status]]
            assert (row["need"], row["status"]) == ("food", need_status), status
            assert row[f"{need_status}_at"] == row["status_at"]
        assert by_case[ids["offered"]]["offer_id"] == "offer-offered"
        assert by_case[ids["closed"]]["outcome"] == "support_provided"
    finally:
        await drop_database(postgres_admin_url, name)


def _gap(db: ReferralsDatabase, need: Need, reason: GapReason, **changes: Any) -> gaps.Gap:
    now = utc_now()
    gap = gaps.Gap(
        gap_id=f"gap-{need.value}-{reason.value}",
        council=db.council,
        need=need.value,
        reason=reason.value,
        detail=f"no {need.value} service can take it",
        postcode_districts=("E15",),
        languages=("en",),
        age_bands=("25-64",),
        residents_waiting=1,
        waiting_since=now - timedelta(hours=30),
        longest_wait_hours=30.0,
        detected_at=now,
    )
    return replace(gap, **changes)


async def _record(db: ReferralsDatabase, gap: gaps.Gap) -> None:
    envelope = GapDetected(
        gap_id=gap.gap_id,
        council=gap.council,
        need=gap.need,
        reason=gap.reason,
        residents_waiting=gap.residents_waiting,
        waiting_since=gap.waiting_since,
        longest_wait_hours=gap.longest_wait_hours,
        detected_at=gap.detected_at,
    )
    async with db.applying(envelope, subject=gap.gap_id) as uow:
        await gaps.record_gap(uow, gap)


async def test_a_gap_in_service_heads_the_council_s_queue_while_a_case_is_in_it(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    case_id = await _routed_case(db, (Need.FOOD, Need.MONEY_AND_DEBT))
    kwame = replace(AMINA, given_name="Kwame", family_name="Mensah", phone="07700 900456")
    async with db.unit_of_work() as uow:
        await intake.receive_referral(uow, db.caller(), new_referral(resident=kwame))
    p = Partners(db, case_id)
    await p.unroutable(Need.FOOD, 1)
    unroutable = _gap(db, Need.FOOD, GapReason.UNROUTABLE)
    await _record(db, unroutable)
    await _record(db, replace(unroutable, residents_waiting=3, detected_at=utc_now()))
    await _record(  # an older detection of the same episode, delivered late
        db,
        replace(
            unroutable, residents_waiting=2, detected_at=unroutable.detected_at - timedelta(hours=1)
        ),
    )
    await _record(db, _gap(db, Need.HOUSING, GapReason.UNROUTABLE))  # no case has housing
    await _record(
        db,
        replace(
            _gap(db, Need.FOOD, GapReason.UNROUTABLE), gap_id="elsewhere", council=db.other_council
        ),
    )

    async def queue(principal: Any = None, **query: Any) -> cases.QueuePage:
        async with db.unit_of_work() as uow:
            return await cases.case_queue(uow, principal or db.caller(), cases.QueueQuery(**query))

    page = await queue()
    assert [(g.gap.gap_id, g.gap.residents_waiting, g.cases) for g in page.gaps] == [
        (unroutable.gap_id, 3, 1)
    ]
    assert page.items[0].id == case_id
    # The other council sees neither this council's gap nor its own (no case of its in it).
    assert (await queue(db.caller(organisation=db.other_council))).gaps == []
    operator = await queue(db.caller("operator"))
    assert [g.gap.gap_id for g in operator.gaps] == [unroutable.gap_id]
    first = await queue(limit=1)  # another resident's case makes a second page
    assert first.gaps and (await queue(limit=1, cursor=first.next_cursor)).gaps == []
    # Debt advice waits too long for a place: its gap joins the queue too.
    waiting = _gap(db, Need.MONEY_AND_DEBT, GapReason.WAITING_TOO_LONG)
    await _record(db, waiting)
    assert {g.gap.gap_id for g in (await queue()).gaps} == {unroutable.gap_id, waiting.gap_id}

    async with db.unit_of_work() as uow:  # a service for food is added; routed again
        await cases.route_again(uow, db.caller(), case_id)
    assert [g.gap.gap_id for g in (await queue()).gaps] == [waiting.gap_id]


async def test_a_need_waiting_for_a_place_is_not_unroutable_and_is_offered_when_one_frees(
    referrals_database: ReferralsDatabase,
) -> None:
    # As the partners service says it: the first offer expires and, in the same
    # transaction (so at the same instant), the need waits for a place; one frees later.
    db = referrals_database
    case_id = await _routed_case(db, (Need.FOOD,))
    p = Partners(db, case_id)
    await p.send(p.change(Need.FOOD, "f", OfferStatus.OFFERED, 0))
    await p.send(p.change(Need.FOOD, "f", OfferStatus.EXPIRED, 60))
    waiting = NeedWaiting(case_id=case_id, need=Need.FOOD, since=p.start + timedelta(minutes=60))
    async with db.applying(waiting, subject=case_id) as uow:
        await on_need_waiting(waiting, uow)
    (need,) = (await _needs(db, case_id)).values()
    assert (need["status"], need["waiting_for_capacity_at"]) == (
        "waiting_for_capacity",
        waiting.since,
    )
    assert need["offer_id"] is None
    assert await _status(db, case_id) == "ready_for_routing"  # waiting, not unroutable
    await p.send(p.change(Need.FOOD, "g", OfferStatus.OFFERED, 120))
    (need,) = (await _needs(db, case_id)).values()
    assert (need["status"], need["offer_id"]) == ("offered", "g")
    assert need["waiting_for_capacity_at"] == waiting.since  # the milestone stays
    assert await _status(db, case_id) == "offered"
    # An older waiting, delivered late, moves nothing back.
    async with db.applying(waiting, subject=case_id) as uow:
        await on_need_waiting(waiting, uow)
    assert (await _needs(db, case_id))["food"]["status"] == "offered"
