"""Routing, the partner inbox and hand-on, through the real consumer and HTTP API. One
database and consumer group for the module; each test has its own council and partners."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from services.partners.timers import expire_offers
from shared.auth import OrganisationKind, Role
from shared.events.envelope import utc_now
from shared.events.payloads import ConsentWithdrawn
from shared.messaging.consumer import EventConsumer
from tests.integration.messaging_helpers import wait_for
from tests.integration.partners.conftest import (
    PartnersApi,
    SharedStack,
    events_of,
    offers_of,
    until_offered,
    work_on,
)
from tests.support.services import Publisher

pytestmark = pytest.mark.integration


@pytest.fixture
def partners(shared_stack: SharedStack) -> PartnersApi:
    """This test's council and partners, on the module's database and consumer."""
    return shared_stack.partners()


async def three_food_banks(partners: PartnersApi) -> None:
    # All empty (equal headroom), so ranked by specialism: one need, then two, then three.
    await partners.add_partner("stratford-food-bank", capacity=10)
    await partners.add_partner("forest-gate-pantry", needs=("food", "benefits"), capacity=4)
    await partners.add_partner(
        "community-hub",
        kind="community",
        needs=("food", "social_isolation", "digital_inclusion"),
        capacity=10,
    )


async def test_a_need_is_offered_to_the_best_partner_and_only_it_sees_the_offer(
    partners: PartnersApi, publisher: Publisher
) -> None:
    await three_food_banks(partners)
    ready = partners.ready()
    await publisher.send(ready, subject=ready.case_id)
    offer = await until_offered(partners, "stratford-food-bank")
    assert offer["case_id"] == ready.case_id and offer["packet"]["first_name"] == "Amina"
    assert offer["packet"]["contact"] == {"method": "phone", "value": "07700 900123"}
    (made,) = await events_of(partners, "partners.offer.made", ready.case_id)
    assert made["partner_name"] == "stratford-food-bank" and made["attempt"] == 1
    # Urgency high: one working day to answer.
    hours = (made["respond_by"], made["at"])
    assert hours[0] > hours[1]

    assert await offers_of(partners, "forest-gate-pantry") == []
    other = await partners.client.get(
        f"/v1/inbox/offers/{offer['id']}", headers=partners.partner("forest-gate-pantry")
    )
    assert other.status_code == 404

    accepted = await partners.client.post(
        f"/v1/inbox/offers/{offer['id']}/accept", headers=partners.partner("stratford-food-bank")
    )
    assert accepted.json()["status"] == "accepted"
    again = await partners.client.post(
        f"/v1/inbox/offers/{offer['id']}/accept", headers=partners.partner("stratford-food-bank")
    )
    assert again.status_code == 409 and again.json()["current_status"] == "accepted"
    assert again.json()["allowed"] == ["declined", "in_progress", "outcome_recorded", "withdrawn"]
    assert set(again.json()) == {"detail", "current_status", "allowed"}
    done = await partners.client.post(
        f"/v1/inbox/offers/{offer['id']}/outcome",
        json={"outcome": "support_provided"},
        headers=partners.partner("stratford-food-bank"),
    )
    assert done.json()["status"] == "outcome_recorded" and done.json()["packet"] is None
    (recorded,) = await events_of(partners, "partners.offer.outcome_recorded", ready.case_id)
    assert recorded["outcome"] == "support_provided"


async def test_declines_hand_on_never_back_and_exhaustion_is_unroutable_with_reasons(
    partners: PartnersApi, publisher: Publisher
) -> None:
    await three_food_banks(partners)
    ready = partners.ready()
    await publisher.send(ready, subject=ready.case_id)
    order = []
    for name in ("stratford-food-bank", "forest-gate-pantry", "community-hub"):
        offer = await until_offered(partners, name)
        order.append(name)
        declined = await partners.client.post(
            f"/v1/inbox/offers/{offer['id']}/decline",
            headers=partners.partner(name),
            json={"reason": "no_capacity", "note": "shelves empty until Friday"},
        )
        assert declined.status_code == 204
        # After declining, the partner sees nothing more of the case.
        assert await offers_of(partners, name) == []
        assert (
            await partners.client.get(
                f"/v1/inbox/offers/{offer['id']}", headers=partners.partner(name)
            )
        ).status_code == 404
    assert order == ["stratford-food-bank", "forest-gate-pantry", "community-hub"]
    made = await events_of(partners, "partners.offer.made", ready.case_id)
    assert [m["partner_name"] for m in made] == order  # never the same partner twice
    (unroutable,) = await events_of(partners, "partners.case.unroutable", ready.case_id)
    reason = f"every food partner in {partners.council} has already been offered this case"
    assert unroutable["reasons"] == [reason]
    gaps = (await partners.client.get("/v1/gaps", headers=partners.operator())).json()
    mine = [gap for gap in gaps if gap["council"] == partners.council]
    assert [
        {k: gap[k] for k in ("council", "need", "cases", "reason", "status")} for gap in mine
    ] == [
        {
            "council": partners.council,
            "need": "food",
            "cases": 1,
            "reason": reason,
            "status": "unroutable",
        }
    ]
    assert mine[0]["since"] is not None
    # The council sees its own gaps; another council sees none of them.
    own = await partners.client.get("/v1/gaps", headers=partners.council_caseworker())
    assert own.status_code == 200 and own.json() == mine
    other = partners._bearer("E09000999", OrganisationKind.COUNCIL, [Role.CASEWORKER])
    elsewhere = (await partners.client.get("/v1/gaps", headers=other)).json()
    assert all(gap["council"] == "E09000999" for gap in elsewhere)
    overdue = await partners.client.get("/v1/overdue", headers=partners.council_caseworker())
    assert overdue.status_code == 200 and overdue.json() == []


async def test_no_candidate_at_all_is_unroutable_with_a_reason_a_person_understands(
    isolated_partners: PartnersApi, partners_consumer: EventConsumer, publisher: Publisher
) -> None:
    # No service in the whole directory may meet the need: a database of its own.
    partners = isolated_partners
    await partners.add_partner("stratford-food-bank")
    ready = partners.ready(needs=("food", "digital_inclusion"))
    await publisher.send(ready, subject=ready.case_id)

    async def unroutable() -> list[dict]:
        return await events_of(partners, "partners.case.unroutable", ready.case_id)

    (event,) = await wait_for(unroutable, timeout=30, what="unroutable")
    assert event["needs"] == ["digital_inclusion"]
    assert event["reasons"] == ["no service meets the need for digital inclusion"]
    assert len(await offers_of(partners, "stratford-food-bank")) == 1  # food still placed


async def test_an_expired_offer_is_handed_on(partners: PartnersApi, publisher: Publisher) -> None:
    await three_food_banks(partners)
    ready = partners.ready()
    await publisher.send(ready, subject=ready.case_id)
    first = await until_offered(partners, "stratford-food-bank")
    await partners.sql(
        "UPDATE offers SET respond_by = now() - interval '1 minute' WHERE id = :id", id=first["id"]
    )
    async with work_on(partners.engine, partners.settings) as uow:
        assert await expire_offers(uow) == 1
    async with work_on(partners.engine, partners.settings) as uow:
        assert await expire_offers(uow) == 0
    (expired,) = await events_of(partners, "partners.offer.expired", ready.case_id)
    assert expired["offer_id"] == first["id"]
    assert await offers_of(partners, "stratford-food-bank") == []
    await until_offered(partners, "forest-gate-pantry")


async def test_consent_withdrawn_withdraws_open_offers_and_partners_lose_access(
    partners: PartnersApi, publisher: Publisher
) -> None:
    await three_food_banks(partners)
    ready = partners.ready()
    await publisher.send(ready, subject=ready.case_id)
    offer = await until_offered(partners, "stratford-food-bank")
    await publisher.send(
        ConsentWithdrawn(case_id=ready.case_id, council=partners.council, withdrawn_at=utc_now()),
        subject=ready.case_id,
    )

    async def withdrawn() -> list[dict]:
        return await events_of(partners, "partners.offer.withdrawn", ready.case_id)

    (event,) = await wait_for(withdrawn, timeout=30, what="withdrawal")
    assert event["offer_id"] == offer["id"] and event["reason"] == "the resident withdrew consent"
    assert await offers_of(partners, "stratford-food-bank") == []
    async with partners.engine.connect() as connection:
        packets = await connection.scalar(
            text("SELECT count(*) FROM route_requests WHERE case_id = :c AND packet IS NOT NULL"),
            {"c": ready.case_id},
        )
    assert packets == 0  # the packet itself is gone


async def test_a_pause_hands_waiting_offers_on(partners: PartnersApi, publisher: Publisher) -> None:
    await three_food_banks(partners)
    ready = partners.ready()
    await publisher.send(ready, subject=ready.case_id)
    await until_offered(partners, "stratford-food-bank")
    service = partners.services["stratford-food-bank"]
    paused = await partners.client.post(
        f"/v1/services/{service}/pause",
        json={"reason": "volunteers on holiday"},
        headers=partners.partner("stratford-food-bank"),
    )
    assert paused.status_code == 200
    await until_offered(partners, "forest-gate-pantry")
    load = (
        await partners.client.get(
            f"/v1/services/{service}/load", headers=partners.partner("stratford-food-bank")
        )
    ).json()
    assert load == {
        "id": service,
        "name": "stratford-food-bank service",
        "paused": True,
        "capacity": 10,
        "open_offers_and_referrals": 0,
    }
    someone_else = await partners.client.post(
        f"/v1/services/{service}/resume", headers=partners.partner("forest-gate-pantry")
    )
    assert someone_else.status_code == 404
