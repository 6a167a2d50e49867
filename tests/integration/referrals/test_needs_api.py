"""The caseworker's API over needs one by one: each need's status and timestamps on the
case, the queue filtered by need status and by overdue offers, the overdue count, and gaps
in service heading the queue."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.referrals.service_layer import cases, gaps
from shared.events.envelope import utc_now
from shared.events.payloads import OfferAccepted
from shared.vocabulary import Need, OfferStatus
from tests.integration.referrals.conftest import ReferralsApi, ReferralsDatabase, referral
from tests.integration.referrals.usecase_helpers import finding

pytestmark = pytest.mark.integration


async def _partners_report(db: ReferralsDatabase, change: cases.OfferChange) -> None:
    envelope = OfferAccepted(
        offer_id=change.offer_id,
        case_id=change.case_id,
        need=change.need,
        partner_id=change.partner_id,
        at=change.at,
    )
    async with db.applying(envelope, subject=change.case_id) as uow:
        await cases.record_offer_change(uow, change)


async def test_the_queue_filters_by_need_status_and_overdue_and_the_case_shows_each_need(
    api: ReferralsApi,
) -> None:
    db = ReferralsDatabase(api.engine, api.settings, api.council, api.other_council)
    case_id = (await api.refer(referral(needs=["food", "money_and_debt"]))).json()["case_id"]
    other = (
        await api.refer(referral(resident={"given_name": "Kwame", "family_name": "Mensah"}))
    ).json()["case_id"]
    for each in (case_id, other):
        async with db.applying(
            OfferAccepted(offer_id="-", case_id=each, need="food", partner_id="-", at=utc_now()),
            subject=each,
        ) as uow:
            await cases.record_risk_assessment(uow, each, finding())
    now = utc_now()
    for offer, status, minute in (("f", OfferStatus.OFFERED, 1), ("f", OfferStatus.ACCEPTED, 2)):
        await _partners_report(
            db,
            cases.OfferChange(
                offer_id=offer,
                case_id=case_id,
                need=Need.FOOD,
                partner_id="stratford-food-bank",
                status=status,
                at=now + timedelta(minutes=minute),
            ),
        )
    overdue_at = now + timedelta(minutes=30)
    async with db.applying(
        OfferAccepted(offer_id="f", case_id=case_id, need="food", partner_id="p", at=overdue_at),
        subject=case_id,
    ) as uow:
        await cases.record_offer_overdue(
            uow,
            cases.OverdueOffer(
                "f", case_id, Need.FOOD, "stratford-food-bank", overdue_at, overdue_at
            ),
        )

    async def listed(query: str, kind: str = "caseworker") -> list[str]:
        response = await api.client.get(f"/v1/cases?{query}", headers=api.token(kind))
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await listed("need_status=accepted") == [case_id]
    assert sorted(await listed("need_status=routing")) == sorted([case_id, other])
    assert await listed("need_status=met&need_status=unroutable") == []
    assert await listed("overdue=true") == [case_id]
    assert await listed("overdue=false") == [other]
    assert await listed("overdue=true", kind="other_council") == []
    bad = await api.client.get("/v1/cases?need_status=lost", headers=api.token())
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.need_status.0"

    page = (await api.client.get("/v1/cases?overdue=true", headers=api.token())).json()
    (item,) = page["items"]
    assert item["need_statuses"] == {"food": "accepted", "money_and_debt": "routing"}
    assert item["overdue_offers"] == 1

    case = await api.case(case_id)
    food, debt = case["need_progress"]
    assert (food["need"], food["status"], food["offer_id"]) == ("food", "accepted", "f")
    assert set(food["times"]) == {"received", "assessed", "routing", "offered", "accepted"}
    assert debt["status"] == "routing" and debt["since"] == debt["times"]["routing"]
    (overdue,) = case["overdue_offers"]
    assert overdue["id"] == "f" and overdue["need"] == "food"
    assert case["needs"] == ["food", "money_and_debt"]  # as before: the needs themselves

    counts = await api.client.get("/v1/cases/overdue", headers=api.token())
    assert counts.status_code == 200, counts.text
    assert counts.json() == [{"council": api.council, "offers": 1, "cases": 1}]
    theirs = await api.client.get("/v1/cases/overdue", headers=api.token("other_council"))
    assert theirs.json() == []
    everyone = await api.client.get(
        f"/v1/cases/overdue?council={api.council}", headers=api.token("operator")
    )
    assert everyone.json() == counts.json()
    refused = await api.client.get("/v1/cases/overdue", headers=api.token("food_bank"))
    assert refused.status_code == 403


async def test_a_gap_in_service_heads_the_first_page_of_the_queue(api: ReferralsApi) -> None:
    db = ReferralsDatabase(api.engine, api.settings, api.council, api.other_council)
    case_id = (await api.refer(referral(needs=["digital_inclusion"]))).json()["case_id"]
    async with db.applying(
        OfferAccepted(offer_id="-", case_id=case_id, need="food", partner_id="-", at=utc_now()),
        subject=case_id,
    ) as uow:
        await cases.record_risk_assessment(uow, case_id, finding())
        await cases.record_unroutable(
            uow,
            cases.Unroutable(
                case_id,
                ("no service covers digital inclusion",),
                at=utc_now(),
                needs=(Need.DIGITAL_INCLUSION,),
            ),
        )
    now = utc_now()
    async with db.unit_of_work() as uow:
        await gaps.record_gap(
            uow,
            gaps.Gap(
                gap_id="g-1",
                council=api.council,
                need="digital_inclusion",
                reason="unroutable",
                detail="no service covers digital inclusion in E15",
                postcode_districts=("E15",),
                languages=("en",),
                age_bands=("25-64",),
                residents_waiting=1,
                waiting_since=now,
                longest_wait_hours=0.0,
                detected_at=now,
            ),
        )
    page = (await api.client.get("/v1/cases", headers=api.token())).json()
    (gap,) = page["gaps"]
    assert (gap["id"], gap["need"], gap["reason"], gap["cases"]) == (
        "g-1",
        "digital_inclusion",
        "unroutable",
        1,
    )
    assert "given_name" not in str(gap) and "Amina" not in str(gap)
    listed = await api.client.get(
        "/v1/cases?need=digital_inclusion&need_status=unroutable", headers=api.token()
    )
    assert [c["id"] for c in listed.json()["items"]] == [case_id]
    theirs = (await api.client.get("/v1/cases", headers=api.token("other_council"))).json()
    assert theirs["gaps"] == []
