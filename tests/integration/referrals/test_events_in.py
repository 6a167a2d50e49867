"""Risk and partner events move cases as specified, through the service's real consumer on
a real broker; the same event delivered twice changes nothing. The module's tests share one
service and one consumer group (joining takes seconds); each serves councils of its own."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import pytest

from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from services.referrals.timers import TIMERS
from shared.db import session_factory
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import utc_now
from shared.events.payloads import (
    CaseUnroutable,
    FlaggedIdentity,
    GapDetected,
    OfferAccepted,
    OfferDeclined,
    OfferExpired,
    OfferOverdue,
    OfferProgressRecorded,
    OutcomeRecorded,
    Reason,
    ReferralOffered,
    ResidentFlagged,
    RiskAssessed,
    RoutingReasons,
)
from shared.identity import seal_identity
from shared.messaging.consumer import EventConsumer
from shared.messaging.outbox import Outbox
from tests.integration.messaging_helpers import wait_for
from tests.integration.referrals.conftest import ReferralsApi, SharedService, referral
from tests.support.services import Publisher

pytestmark = pytest.mark.integration


@pytest.fixture
def api(shared_service: SharedService) -> ReferralsApi:
    return shared_service.api_for_new_councils()


@pytest.fixture
def consumer(shared_service: SharedService) -> EventConsumer:
    return shared_service.consumer


def assessed(case_id: str, level: str = "high") -> RiskAssessed:
    return RiskAssessed(
        case_id=case_id,
        level=level,
        score=70,
        reasons=[
            Reason(
                rule_id="rent-arrears-8-weeks",
                explanation="Rent arrears of 8 weeks or more were reported",
            )
        ],
        suggested_needs=["housing", "money_and_debt"],
        ruleset_version="default@3f2a9c",
        assessed_at=utc_now(),
    )


async def until_status(api: ReferralsApi, case_id: str, status: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        case = await api.case(case_id)
        return case if case["status"] == status else None

    return await wait_for(reached, timeout=30, what=f"case {case_id} to be {status}")


async def handled(consumer: EventConsumer, outcome: str, baseline: int, more: int) -> None:
    """Wait until the consumer counts ``more`` events of ``outcome`` past ``baseline``. The
    topics are shared by every test, so counts start from a baseline taken just before."""

    async def done() -> bool:
        return consumer.stats[outcome] >= baseline + more

    await wait_for(done, timeout=30, what=f"{more} more {outcome} events")


async def test_an_assessment_routes_a_consented_case_and_a_repeat_changes_nothing(
    api: ReferralsApi, consumer: EventConsumer, publisher: Publisher
) -> None:
    case_id = (await api.refer(referral())).json()["case_id"]
    event = await publisher.send(assessed(case_id), subject=case_id)
    case = await until_status(api, case_id, "ready_for_routing")
    assert case["assessment"]["level"] == "high"
    assert case["assessment"]["reasons"][0]["rule_id"] == "rent-arrears-8-weeks"
    assert case["priority"] == 3 and set(case["status_times"]) >= {"assessed", "ready_for_routing"}

    (ready,) = await api.events("referrals.case.ready_for_routing")
    packet = ready["packet"]
    assert packet["first_name"] == "Amina" and packet["postcode_district"] == "E15"
    assert packet["contact"] == {"method": "phone", "value": "07700 900123"}
    assert ready["lawful_basis"] == "consent" and ready["consent_partner_kinds"] == [
        "food",
        "advice",
    ]
    # Only what a partner needs: no family name, birth date, address or free text.
    flat = str(ready)
    for private in ("Okafor", "1984", "Romford", "Lost her job"):
        assert private not in flat

    timeline_before = len(case["timeline"])
    outbox_before = await api.count("outbox")
    baseline = consumer.stats["duplicate"]
    await publisher.resend(event)
    await handled(consumer, "duplicate", baseline, 1)
    assert len((await api.case(case_id))["timeline"]) == timeline_before
    assert await api.count("outbox") == outbox_before


async def test_without_a_sharing_basis_the_case_waits_for_consent(
    api: ReferralsApi, consumer: EventConsumer, publisher: Publisher
) -> None:
    body = referral(
        sharing={
            "lawful_basis": "public_task",
            "consent": None,
            "justification": "the council's duty to relieve homelessness",
            "decided_by": "Housing Needs manager",
        }
    )
    response = (await api.refer(body)).json()
    assert response["sharing"]["allowed"] is False
    assert "public task does not allow sharing" in response["sharing"]["reason"]
    case_id = response["case_id"]
    await publisher.send(assessed(case_id), subject=case_id)
    case = await until_status(api, case_id, "awaiting_consent")
    assert await api.events("referrals.case.ready_for_routing") == []

    consent = {
        "given_by": "the resident",
        "method": "written",
        "given_at": (utc_now() - timedelta(minutes=5)).isoformat(),
        "partner_kinds": ["any_voluntary"],
        "needs": ["housing", "food"],
    }
    recorded = await api.client.post(
        f"/v1/cases/{case_id}/consent", json=consent, headers=api.token()
    )
    assert recorded.json() == {"case_id": case_id, "status": "ready_for_routing"}
    (ready,) = await api.events("referrals.case.ready_for_routing")
    assert ready["packet"]["needs"] == ["housing", "food"]

    withdrawn = await api.client.post(
        f"/v1/cases/{case_id}/consent/withdraw",
        json={"reason": "resident changed their mind"},
        headers=api.token(),
    )
    assert withdrawn.json()["status"] == "awaiting_consent"
    assert len(await api.events("referrals.consent.withdrawn")) == 1
    case = await api.case(case_id)
    assert case["consent"]["withdrawn_at"] is not None
    again = await api.client.post(
        f"/v1/cases/{case_id}/consent/withdraw", json={"reason": "twice"}, headers=api.token()
    )
    assert again.status_code == 409
    assert again.json() == {
        "detail": "there is no current consent to withdraw",
        "current_status": "awaiting_consent",
        "allowed": [],
    }


async def test_partner_events_carry_a_case_to_its_outcome(
    api: ReferralsApi, consumer: EventConsumer, publisher: Publisher
) -> None:
    case_id = (await api.refer(referral(needs=["food"]))).json()["case_id"]
    await publisher.send(assessed(case_id), subject=case_id)
    await until_status(api, case_id, "ready_for_routing")
    now = utc_now()
    common = {"case_id": case_id, "need": "food", "at": now}

    def offer(offer_id: str, partner: str) -> ReferralOffered:
        return ReferralOffered(
            offer_id=offer_id,
            partner_id=partner,
            partner_name=partner.title(),
            service_id=f"{partner}-svc",
            service_name="Emergency food parcels",
            respond_by=now + timedelta(hours=4),
            routing_reasons=RoutingReasons(
                score=82.5,
                passed=["offers food", f"covers {api.council}", "speaks English"],
                ranking=["the most free places (9 of 10)"],
                excluded=["Forest Gate Pantry: already offered this case"],
            ),
            **common,
        )

    events = [
        await publisher.send(
            offer("o-1", "stratford-food-bank"), subject=case_id, source="/upstream/partners"
        )
    ]
    await until_status(api, case_id, "offered")
    for payload in (
        OfferDeclined(
            offer_id="o-1",
            partner_id="stratford-food-bank",
            reason="no_capacity",
            note="Shelves empty until Friday",
            **common,
        ),
        offer("o-2", "forest-gate-pantry"),
        OfferExpired(offer_id="o-2", partner_id="forest-gate-pantry", **common),
        offer("o-3", "canning-town-community-fridge"),
        OfferAccepted(offer_id="o-3", partner_id="canning-town-community-fridge", **common),
    ):
        events.append(await publisher.send(payload, subject=case_id, source="/upstream/partners"))
    case = await until_status(api, case_id, "accepted")
    assert {o["id"]: o["status"] for o in case["offers"]} == {
        "o-1": "declined",
        "o-2": "expired",
        "o-3": "accepted",
    }
    assert case["offers"][0]["decline_reason"] == "no_capacity"
    # Why each partner: the routing reasons of every offer, on the case and in its timeline.
    for shown in case["offers"]:
        assert shown["routing_reasons"]["passed"][0] == "offers food", shown
        assert shown["routing_reasons"]["ranking"] == ["the most free places (9 of 10)"]
    offered_lines = [t for t in case["timeline"] if "offered to" in t["action"]]
    assert len(offered_lines) == 3
    assert all("the most free places" in t["action"] for t in offered_lines), offered_lines

    for payload in (
        OfferProgressRecorded(
            offer_id="o-3",
            partner_id="canning-town-community-fridge",
            note="Parcel delivered; weekly visits arranged",
            **common,
        ),
        OutcomeRecorded(
            offer_id="o-3",
            partner_id="canning-town-community-fridge",
            outcome="support_provided",
            **common,
        ),
    ):
        events.append(await publisher.send(payload, subject=case_id, source="/upstream/partners"))
    case = await until_status(api, case_id, "closed")
    assert case["outcome"] == "support_provided"
    assert set(case["status_times"]) >= {"offered", "accepted", "in_progress", "closed"}
    (closed,) = await api.events("referrals.case.closed")
    assert closed["outcome"] == "support_provided" and closed["withdrawn"] is False

    # Every partner event delivered again: nothing changes.
    before = (await api.case(case_id), await api.count("outbox"))
    baseline = consumer.stats["duplicate"]
    for event in events:
        await publisher.resend(event)
    await handled(consumer, "duplicate", baseline, len(events))
    assert (await api.case(case_id), await api.count("outbox")) == before


async def test_an_unroutable_case_goes_back_to_the_council_with_the_reasons(
    api: ReferralsApi, consumer: EventConsumer, publisher: Publisher
) -> None:
    case_id = (await api.refer(referral(needs=["digital_inclusion"]))).json()["case_id"]
    await publisher.send(assessed(case_id, "medium"), subject=case_id)
    await until_status(api, case_id, "ready_for_routing")
    reasons = [f"no service covers digital inclusion in {api.council}"]
    await publisher.send(
        CaseUnroutable(case_id=case_id, needs=["digital_inclusion"], reasons=reasons, at=utc_now()),
        subject=case_id,
        source="/upstream/partners",
    )
    case = await until_status(api, case_id, "unroutable")
    assert case["unroutable_reasons"] == reasons
    assert reasons[0] in case["status_reason"]
    queue = (await api.client.get("/v1/cases?status=unroutable", headers=api.token())).json()
    assert [item["id"] for item in queue["items"]] == [case_id]


async def test_a_flag_opens_an_outreach_case_for_the_council_and_a_repeat_flag_does_not(
    api: ReferralsApi, consumer: EventConsumer, publisher: Publisher
) -> None:
    def flag(level: str) -> ResidentFlagged:
        return ResidentFlagged(
            resident_key="k" * 64,
            council=api.council,
            level=level,
            score=80,
            reasons=[
                Reason(rule_id="eviction-notice", explanation="An eviction notice was served")
            ],
            suggested_needs=["housing"],
            ruleset_version="default@3f2a9c",
            sealed_identity=seal_identity(
                api.settings.resident_key_secret.get_secret_value(),
                FlaggedIdentity(
                    given_name="Tomasz",
                    family_name="Nowak",
                    date_of_birth=date(1971, 6, 9),
                    postcode="E13 9PJ",
                    council_reference="HB-22817",
                    phone="020 7946 0011",
                ).model_dump(mode="json"),
            ),
            flagged_at=utc_now(),
        )

    await publisher.send(flag("crisis"), subject="k" * 64)
    listed = await wait_for(lambda: _flag_cases(api), timeout=30, what="an outreach case")
    case = await api.case(listed[0]["id"])
    assert (case["origin"], case["status"], case["lawful_basis"]) == (
        "flag",
        "awaiting_consent",
        "public_task",
    )
    assert case["assessment"]["level"] == "crisis" and case["needs"] == ["housing"]
    assert case["resident"]["council_reference"] == "HB-22817"
    assert await api.events("referrals.case.ready_for_routing") == []  # nothing to partners

    baseline = consumer.stats["applied"]
    await publisher.send(flag("high"), subject="k" * 64)
    await handled(consumer, "applied", baseline, 1)

    async def newest_finding() -> bool:  # other tests' events count as applied too
        return (await api.case(case["id"]))["assessment"]["level"] == "high"

    await wait_for(newest_finding, timeout=30, what="the repeat flag's finding on the case")
    own = {"where": "council = :council", "council": api.council}
    assert await api.count("cases", **own) == 1 and await api.count("residents", **own) == 1


async def _flag_cases(api: ReferralsApi) -> list[dict[str, Any]]:
    response = await api.client.get("/v1/cases?origin=flag", headers=api.token())
    return response.json()["items"]


async def test_new_needs_on_a_routed_case_are_sent_for_routing(
    api: ReferralsApi, consumer: EventConsumer, publisher: Publisher
) -> None:
    case_id = (await api.refer(referral(needs=["food"]))).json()["case_id"]
    await publisher.send(assessed(case_id), subject=case_id)
    await until_status(api, case_id, "ready_for_routing")
    same = await api.refer(referral(needs=["food"]))
    assert same.json()["case_id"] == case_id
    assert len(await api.events("referrals.case.ready_for_routing")) == 1  # nothing new
    more = await api.refer(referral(needs=["housing"], council=api.council), kind="food_bank")
    assert more.status_code == 201 and "case_id" not in more.json()  # a charity is not told
    first, second = await api.events("referrals.case.ready_for_routing")
    assert first["packet"]["needs"] == ["food"]
    assert second["packet"]["needs"] == ["food", "housing"]


async def test_an_expired_consent_stops_routing_like_a_withdrawal(
    api: ReferralsApi, consumer: EventConsumer, publisher: Publisher
) -> None:
    soon = utc_now() + timedelta(seconds=2)
    body = referral(sharing={"consent": {"expires_at": soon.isoformat()}})
    case_id = (await api.refer(body)).json()["case_id"]
    await publisher.send(assessed(case_id), subject=case_id)
    await until_status(api, case_id, "ready_for_routing")
    (consent_expiry,) = [t for t in TIMERS if t.name == "consent expiry"]
    sessions, outbox = session_factory(api.engine), Outbox(CATALOGUE, source=api.settings.source)

    async def sweep() -> int:
        """One pass of the worker's timer, with a fresh unit of work as the worker gives it."""
        async with sessions() as session:
            uow = ReferralsUnitOfWork(session=session, outbox=outbox, settings=api.settings)
            return await consent_expiry.run(uow)

    assert await sweep() == 0
    await asyncio.sleep(2.5)
    assert await sweep() == 1
    assert await sweep() == 0
    case = await api.case(case_id)
    assert case["status"] == "awaiting_consent"
    assert case["status_reason"] == "the resident's consent expired"
    (withdrawn,) = await api.events("referrals.consent.withdrawn")
    assert withdrawn["case_id"] == case_id


async def test_overdue_offers_and_gaps_in_service_arrive_through_the_consumer(
    api: ReferralsApi, publisher: Publisher
) -> None:
    case_id = (await api.refer(referral(needs=["food", "digital_inclusion"]))).json()["case_id"]
    await publisher.send(assessed(case_id), subject=case_id)
    await until_status(api, case_id, "ready_for_routing")
    now = utc_now()
    food = {"case_id": case_id, "need": "food", "partner_id": "stratford-food-bank"}
    partners = "/upstream/partners"
    for payload in (
        ReferralOffered(
            offer_id=f"{case_id}-f",
            partner_name="Stratford Food Bank",
            service_id="s",
            service_name="Emergency food parcels",
            respond_by=now + timedelta(hours=4),
            at=now,
            **food,
        ),
        OfferAccepted(offer_id=f"{case_id}-f", at=now + timedelta(minutes=1), **food),
        OfferOverdue(
            offer_id=f"{case_id}-f",
            follow_up_by=now + timedelta(minutes=2),
            at=now + timedelta(minutes=3),
            **food,
        ),
        CaseUnroutable(
            case_id=case_id,
            needs=["digital_inclusion"],
            reasons=["no service covers digital inclusion"],
            at=now + timedelta(minutes=1),
        ),
    ):
        await publisher.send(payload, subject=case_id, source=partners)
    gap = GapDetected(
        gap_id=f"gap-{case_id}",
        council=api.council,
        need="digital_inclusion",
        reason="unroutable",
        residents_waiting=1,
        waiting_since=now,
        longest_wait_hours=0.0,
        detected_at=now + timedelta(minutes=1),
    )
    await publisher.send(gap, subject=gap.gap_id, source=partners)

    async def arrived() -> dict[str, Any] | None:
        case = await api.case(case_id)
        page = (await api.client.get("/v1/cases", headers=api.token())).json()
        return case if case["overdue_offers"] and page["gaps"] else None

    case = await wait_for(arrived, timeout=30, what="the overdue offer and the gap")
    assert case["status"] == "unroutable"  # digital inclusion waits on the council
    assert {n["need"]: n["status"] for n in case["need_progress"]} == {
        "food": "accepted",
        "digital_inclusion": "unroutable",
    }
    page = (await api.client.get("/v1/cases?overdue=true", headers=api.token())).json()
    assert [c["id"] for c in page["items"]] == [case_id]
    assert [g["id"] for g in page["gaps"]] == [gap.gap_id]
