"""The case use cases on a real migrated PostgreSQL: no broker, no HTTP. Event use cases run
as a handler runs them, inside the consumer's transaction (``ReferralsDatabase.applying``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.referrals.domain.lifecycle import CaseStatus
from services.referrals.service_layer import cases, intake
from shared.errors import Conflict, Invalid, NotFound
from shared.events.envelope import utc_now
from shared.events.payloads import CaseUnroutable, OfferAccepted, ResidentFlagged, RiskAssessed
from shared.identity import seal_identity
from shared.vocabulary import DeclineReason, LawfulBasis, Need, OfferStatus, Outcome, RiskLevel
from tests.integration.referrals.conftest import ReferralsDatabase
from tests.integration.referrals.usecase_helpers import JUSTIFIED, consent, finding, new_referral

pytestmark = pytest.mark.integration

# The payloads only name the envelope the handler applies; the use cases get commands.
ASSESSED = RiskAssessed(
    case_id="c", level="high", score=70, ruleset_version="v", assessed_at=utc_now()
)


async def _refer(db: ReferralsDatabase, **changes: object) -> str:
    async with db.unit_of_work() as uow:
        case_id = (await intake.receive_referral(uow, db.caller(), new_referral(**changes))).case_id
    assert case_id is not None  # a council's receipt names the case
    return case_id


async def _assess(db: ReferralsDatabase, case_id: str, level: RiskLevel = RiskLevel.HIGH) -> None:
    async with db.applying(ASSESSED, subject=case_id) as uow:
        await cases.record_risk_assessment(uow, case_id, finding(level))


async def _status(db: ReferralsDatabase, case_id: str) -> str:
    (row,) = await db.rows("SELECT status FROM cases WHERE id = :id", id=case_id)
    return str(row["status"])


async def test_an_assessment_routes_a_consented_case_with_only_the_packet_a_partner_needs(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    case_id = await _refer(db)
    await _assess(db, case_id)
    assert await _status(db, case_id) == "ready_for_routing"
    (case,) = await db.rows("SELECT * FROM cases")
    assert (case["risk_level"], case["risk_score"], case["priority"]) == ("high", 70, 3)
    assert case["risk_reasons"][0]["rule_id"] == "rent-arrears-8-weeks"
    changes = await db.events("referrals.case.status_changed")
    assert [(c["previous"], c["status"]) for c in changes] == [
        ("received", "assessed"),
        ("assessed", "ready_for_routing"),
    ]
    (ready,) = await db.events("referrals.case.ready_for_routing")
    assert ready["packet"]["first_name"] == "Amina" and "Okafor" not in str(ready)

    outbox = await db.count("outbox")
    async with db.applying(ASSESSED, subject="unknown") as uow:  # a case held elsewhere
        await cases.record_risk_assessment(uow, "6b0f0b9e-4a57-4d0c-9a07-0d6d8a0c1f11", finding())
    assert await db.count("outbox") == outbox


async def test_a_caseworker_s_lifecycle_refusals_name_the_status_and_what_it_allows(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    case_id = await _refer(db)
    with pytest.raises(Conflict) as refused:
        async with db.unit_of_work() as uow:
            await cases.close_case(uow, db.caller(), case_id, Outcome.SUPPORT_PROVIDED)
    assert (refused.value.current_status, refused.value.allowed) == (
        "received",
        ["assessed", "withdrawn"],
    )
    async with db.unit_of_work() as uow:
        await cases.assign_case(uow, db.caller(), case_id, "kemi")
    async with db.unit_of_work() as uow:
        await cases.add_note(uow, db.caller(), case_id, "Called; will visit Thursday.")
    async with db.unit_of_work() as uow:
        done = await cases.withdraw_case(uow, db.caller(), case_id, "moved out of the borough")
    assert (done.case_id, done.status) == (case_id, "withdrawn")
    with pytest.raises(Conflict) as again:
        async with db.unit_of_work() as uow:
            await cases.withdraw_case(uow, db.caller(), case_id, "again")
    assert (again.value.current_status, again.value.allowed) == ("withdrawn", [])

    (case,) = await db.rows("SELECT * FROM cases")
    assert case["assigned_to"] == "kemi" and case["status_reason"] == "moved out of the borough"
    assert await db.count("notes") == 1
    (closed,) = await db.events("referrals.case.closed")
    assert closed["withdrawn"] is True and closed["outcome"] is None

    other = db.caller(organisation=db.other_council)
    with pytest.raises(NotFound):  # tenancy: another council's case does not exist for it
        async with db.unit_of_work() as uow:
            await cases.case_detail(uow, other, case_id)
    async with db.unit_of_work() as uow:
        detail = await cases.case_detail(uow, db.caller("operator"), case_id)
    assert [e["action"] for e in detail.timeline][-1] == "status changed to withdrawn"


async def test_consent_recorded_routes_a_waiting_case_and_withdrawing_it_takes_it_back(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    case_id = await _refer(db, lawful_basis=LawfulBasis.PUBLIC_TASK, consent=None, **JUSTIFIED)
    await _assess(db, case_id)
    assert await _status(db, case_id) == "awaiting_consent"
    assert await db.events("referrals.case.ready_for_routing") == []

    async with db.unit_of_work() as uow:
        routed = await cases.record_consent(
            uow, db.caller(), case_id, consent(), needs=(Need.HOUSING, Need.FOOD)
        )
    assert routed.status == "ready_for_routing"
    (ready,) = await db.events("referrals.case.ready_for_routing")
    assert ready["packet"]["needs"] == ["housing", "food"]

    async with db.unit_of_work() as uow:
        back = await cases.record_consent_withdrawal(uow, db.caller(), case_id, "changed mind")
    assert back.status == "awaiting_consent"
    (withdrawn,) = await db.events("referrals.consent.withdrawn")
    assert withdrawn["reason"] == "withdrawn"  # the resident's doing
    with pytest.raises(Conflict, match="no current consent") as twice:
        async with db.unit_of_work() as uow:
            await cases.record_consent_withdrawal(uow, db.caller(), case_id, "twice")
    assert (twice.value.current_status, twice.value.allowed) == ("awaiting_consent", [])


async def test_partner_offers_carry_a_case_to_its_outcome(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    case_id = await _refer(db, needs=(Need.FOOD,))
    await _assess(db, case_id)
    now = utc_now()
    envelope = OfferAccepted(offer_id="o", case_id=case_id, need="food", partner_id="p", at=now)

    def change(offer_id: str, status: OfferStatus, **values: Any) -> cases.OfferChange:
        return cases.OfferChange(
            offer_id=offer_id,
            case_id=case_id,
            need=Need.FOOD,
            partner_id=f"partner-{offer_id}",
            status=status,
            at=now,
            **values,
        )

    steps = [
        change(
            "o-1",
            OfferStatus.OFFERED,
            partner_name="Stratford Food Bank",
            service_name="Emergency food parcels",
            respond_by=now + timedelta(hours=4),
        ),
        change(
            "o-1",
            OfferStatus.DECLINED,
            decline_reason=DeclineReason.NO_CAPACITY,
            note="Shelves empty",
        ),
        change("o-2", OfferStatus.OFFERED, partner_name="Pantry", service_name="Parcels"),
        change("o-2", OfferStatus.ACCEPTED),
        change("o-2", OfferStatus.IN_PROGRESS, note="Parcel delivered"),
    ]
    for step in steps:
        async with db.applying(envelope, subject=case_id) as uow:
            await cases.record_offer_change(uow, step)
    assert await _status(db, case_id) == "in_progress"
    offers = {o["id"]: o for o in await db.rows("SELECT * FROM offers")}
    assert {k: o["status"] for k, o in offers.items()} == {"o-1": "declined", "o-2": "in_progress"}
    # A field an event does not carry keeps its value.
    assert offers["o-1"]["partner_name"] == "Stratford Food Bank"
    assert offers["o-1"]["decline_reason"] == "no_capacity"

    async with db.applying(envelope, subject=case_id) as uow:
        await cases.record_offer_change(
            uow, change("o-2", OfferStatus.OUTCOME_RECORDED, outcome=Outcome.SUPPORT_PROVIDED)
        )
    (case,) = await db.rows("SELECT status, outcome FROM cases")
    assert (case["status"], case["outcome"]) == ("closed", "support_provided")
    (closed,) = await db.events("referrals.case.closed")
    assert closed["outcome"] == "support_provided" and closed["withdrawn"] is False


async def test_an_unroutable_case_goes_back_to_the_council_and_can_be_routed_again(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    case_id = await _refer(db, needs=(Need.DIGITAL_INCLUSION,))
    await _assess(db, case_id, RiskLevel.MEDIUM)
    reasons = ("no service covers digital inclusion",)
    envelope = CaseUnroutable(
        case_id=case_id, needs=["digital_inclusion"], reasons=[], at=utc_now()
    )
    async with db.applying(envelope, subject=case_id) as uow:
        await cases.record_unroutable(uow, cases.Unroutable(case_id, reasons, at=utc_now()))
    (case,) = await db.rows("SELECT status, status_reason, unroutable_reasons FROM cases")
    assert (case["status"], case["status_reason"]) == ("unroutable", reasons[0])
    assert case["unroutable_reasons"] == list(reasons)

    async with db.unit_of_work() as uow:
        queue = await cases.case_queue(
            uow, db.caller(), cases.QueueQuery(statuses=(CaseStatus.UNROUTABLE,))
        )
    assert [item.id for item in queue.items] == [case_id]
    async with db.unit_of_work() as uow:
        assert (await cases.route_again(uow, db.caller(), case_id)).status == "ready_for_routing"
    assert len(await db.events("referrals.case.ready_for_routing")) == 2
    with pytest.raises(Invalid, match="cursor"):
        async with db.unit_of_work() as uow:
            await cases.case_queue(uow, db.caller(), cases.QueueQuery(cursor="bm9wZQ"))


async def test_a_flag_opens_an_outreach_case_once_and_only_for_a_council_served(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    secret = db.settings.resident_key_secret.get_secret_value()
    sealed = seal_identity(
        secret,
        {
            "given_name": "Tomasz",
            "family_name": "Nowak",
            "date_of_birth": "1971-06-09",
            "postcode": "E13 9PJ",
            "phone": "020 7946 0011",
        },
    )

    async def flag(council: str, level: RiskLevel) -> None:
        envelope = ResidentFlagged(
            resident_key="k" * 64,
            council=council,
            level=level,
            score=80,
            ruleset_version="v",
            sealed_identity=sealed,
            flagged_at=utc_now(),
        )
        async with db.applying(envelope, subject="k" * 64) as uow:
            await cases.open_outreach_case(
                uow, cases.ResidentFlag(council, "k" * 64, sealed, finding(level))
            )

    await flag("E09000001", RiskLevel.CRISIS)  # not served here: no identity is stored
    assert await db.count("residents") == 0 and await db.count("outbox") == 0
    await flag(db.council, RiskLevel.CRISIS)
    await flag(db.council, RiskLevel.HIGH)
    (case,) = await db.rows("SELECT * FROM cases")
    assert (case["origin"], case["status"], case["lawful_basis"]) == (
        "flag",
        "awaiting_consent",
        "public_task",
    )
    assert case["risk_level"] == "high" and case["needs"] == ["housing"]  # the newest finding
    (opened,) = await db.events("referrals.case.opened")
    assert opened["resident_keys"] == ["k" * 64] and opened["origin"] == "flag"
    assert await db.events("referrals.case.ready_for_routing") == []  # nothing to partners


async def test_an_expired_consent_stops_routing_like_a_withdrawal(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    soon = utc_now() + timedelta(minutes=5)
    case_id = await _refer(db, consent=consent(expires_at=soon))
    await _assess(db, case_id)
    async with db.unit_of_work() as uow:
        assert await cases.expire_consents(uow) == 0
    later = soon + timedelta(seconds=1)
    async with db.unit_of_work() as uow:
        uow.clock = lambda: later
        assert await cases.expire_consents(uow) == 1
    async with db.unit_of_work() as uow:
        uow.clock = lambda: later
        assert await cases.expire_consents(uow) == 0
    (case,) = await db.rows("SELECT status, status_reason FROM cases")
    assert (case["status"], case["status_reason"]) == (
        "awaiting_consent",
        "the resident's consent expired",
    )
    (withdrawn,) = await db.events("referrals.consent.withdrawn")
    assert withdrawn["case_id"] == case_id
    assert withdrawn["reason"] == "expired"  # not the resident's doing: partners are told so
    (timeline,) = await db.rows(
        "SELECT action FROM timeline WHERE case_id = :id AND action LIKE 'consent %'", id=case_id
    )
    assert timeline["action"] == "consent expired"


async def test_a_basis_other_than_consent_is_refused_without_its_justification(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    for changes, field in (
        ({"lawful_basis": LawfulBasis.VITAL_INTERESTS, "consent": None}, "sharing.justification"),
        (
            {"lawful_basis": LawfulBasis.PUBLIC_TASK, "consent": None, "justification": "duty"},
            "sharing.decided_by",
        ),
        (
            {
                "lawful_basis": LawfulBasis.PUBLIC_TASK,
                "consent": None,
                "needs": (Need.MENTAL_HEALTH,),
                **JUSTIFIED,
            },
            "sharing.article9_condition",
        ),
    ):
        with pytest.raises(Invalid) as refused:
            await _refer(db, **changes)
        assert refused.value.field == field
    for table in ("residents", "cases", "referrals", "outbox"):
        assert await db.count(table) == 0, table

    # Health needs shared on the resident's consent rest on explicit consent (Article 9).
    await _refer(db, needs=(Need.MENTAL_HEALTH, Need.FOOD))
    (case,) = await db.rows("SELECT * FROM cases")
    assert case["article9_condition"] == "explicit_consent"
    assert case["basis_justification"] is None and case["basis_decided_by"] is None


async def test_a_caseworker_changes_the_basis_with_a_reason_and_partners_are_told(
    referrals_database: ReferralsDatabase,
) -> None:
    db = referrals_database
    case_id = await _refer(db, lawful_basis=LawfulBasis.PUBLIC_TASK, consent=None, **JUSTIFIED)
    await _assess(db, case_id)
    assert await _status(db, case_id) == "awaiting_consent"

    async def change(**fields: Any) -> cases.CaseAcknowledged:
        async with db.unit_of_work() as uow:
            return await cases.change_basis(uow, db.caller(), case_id, cases.BasisChange(**fields))

    vital = {"basis": LawfulBasis.VITAL_INTERESTS, "reason": "found without heating in a frost"}
    with pytest.raises(Invalid) as refused:
        await change(**vital, justification="a risk to life")
    assert refused.value.field == "decided_by"
    with pytest.raises(Invalid) as refused:
        await change(basis=LawfulBasis.CONSENT, reason="r", justification="j", decided_by="d")
    assert refused.value.field == "lawful_basis"
    assert await db.events("referrals.case.ready_for_routing") == []

    # Vital interests allow sharing: the waiting case goes to partners.
    routed = await change(**vital, justification="a risk to life", decided_by="Duty manager")
    assert routed.status == "ready_for_routing"
    assert len(await db.events("referrals.case.ready_for_routing")) == 1
    (case,) = await db.rows("SELECT * FROM cases")
    assert (case["lawful_basis"], case["basis_justification"], case["basis_decided_by"]) == (
        "vital_interests",
        "a risk to life",
        "Duty manager",
    )

    # A legal obligation does not: partners lose the case, told the basis changed.
    back = await change(
        basis=LawfulBasis.LEGAL_OBLIGATION,
        reason="the risk has passed",
        justification="Housing Act 1996 Part 7 duty",
        decided_by="Team manager",
    )
    assert back.status == "awaiting_consent"
    (stopped,) = await db.events("referrals.consent.withdrawn")
    assert (stopped["case_id"], stopped["reason"]) == (case_id, "basis_changed")
    changes = await db.rows(
        "SELECT detail FROM timeline WHERE case_id = :id AND action = 'lawful basis changed'"
        " ORDER BY id",
        id=case_id,
    )
    assert [c["detail"] for c in changes] == [
        "from public_task to vital_interests (decided by Duty manager): "
        "found without heating in a frost",
        "from vital_interests to legal_obligation (decided by Team manager): the risk has passed",
    ]
