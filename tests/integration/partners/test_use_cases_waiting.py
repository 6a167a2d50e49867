"""Waiting, not failing, through the use cases on a real database: a need whose partners are
all full waits in a queue (most urgent first) and is offered as soon as a place frees; a need
no service could take is unroutable until one that can is added; and two placements racing
for the last place on two connections at once have exactly one winner."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from services.partners.adapters import placement as store
from services.partners.service_layer import directory, offers, placement
from services.partners.service_layer.offers import Decline, RecordOutcome
from shared.events.envelope import utc_now
from shared.vocabulary import DeclineReason, Outcome
from tests.integration.messaging_helpers import wait_for, waiting_on_a_lock
from tests.integration.partners.test_use_cases import OPERATOR, Directory, home, types

__all__ = ["home"]  # the fixture, shared with the other use-case tests


async def request_of(home: Directory, case_id: str) -> dict[str, Any]:
    (row,) = await home.rows(
        "SELECT id, status, unroutable_reason, waiting_since, queue_rank FROM route_requests "
        "WHERE case_id = :c",
        c=case_id,
    )
    return dict(row)


async def offer_to(home: Directory, case_id: str) -> dict[str, Any] | None:
    rows = await home.rows(
        "SELECT id, status, service_id FROM offers WHERE case_id = :c AND status = 'offered'",
        c=case_id,
    )
    return dict(rows[0]) if rows else None


async def test_a_full_partner_queues_needs_and_offers_each_freed_place_by_urgency(
    home: Directory,
) -> None:
    await home.add_partner("stratford-food-bank", capacity=1)
    partner = home.organizations["stratford-food-bank"]
    first, older, urgent = home.case(urgency="low"), home.case(urgency="low"), home.case()
    await home.route(first)
    await home.route(older)
    urgent = replace(urgent, ready_at=utc_now() + timedelta(seconds=1))  # the youngest
    await home.route(urgent)

    taken = await offer_to(home, first.case_id)
    assert taken is not None
    for case in (older, urgent):
        waiting = await request_of(home, case.case_id)
        assert waiting["status"] == "waiting" and waiting["waiting_since"] is not None
        assert "at capacity" in waiting["unroutable_reason"]
        # Not unroutable: the council is told it waits, not that it failed.
        assert types(await home.events(case.case_id)) == ["need.waiting"]
    # The place frees with an outcome: the high-urgency need goes first, though younger.
    async with home.work() as uow:
        await offers.accept_offer(uow, partner, str(taken["id"]))
    async with home.work() as uow:
        await offers.record_outcome(
            uow, partner, str(taken["id"]), RecordOutcome(Outcome.SUPPORT_PROVIDED)
        )
    assert await offer_to(home, urgent.case_id) is not None
    assert (await request_of(home, older.case_id))["status"] == "waiting"

    # The partner declines it: that place frees too, and the older need is offered; the
    # declined one has nobody left to try and goes back to the council.
    declined = await offer_to(home, urgent.case_id)
    assert declined is not None
    async with home.work() as uow:
        await offers.decline_offer(
            uow, partner, str(declined["id"]), Decline(DeclineReason.NO_CAPACITY)
        )
    assert await offer_to(home, older.case_id) is not None
    assert (await request_of(home, urgent.case_id))["status"] == "unroutable"
    assert types(await home.events(urgent.case_id))[-1] == "case.unroutable"


async def test_a_need_waiting_for_a_place_is_said_once_a_waiting_episode(
    home: Directory,
) -> None:
    await home.add_partner("stratford-food-bank", capacity=1)
    partner = home.organizations["stratford-food-bank"]
    taken, waiting = home.case(), home.case()
    await home.route(taken)
    await home.route(waiting)
    request = await request_of(home, waiting.case_id)
    ((kind, data),) = await home.events(waiting.case_id)
    assert kind == "uk.upstream.partners.need.waiting.v1"
    # What the referrals service needs and nothing more: no packet, no partner, no resident.
    assert set(data) == {"case_id", "need", "since"}
    assert (data["case_id"], data["need"]) == (waiting.case_id, "food")
    assert datetime.fromisoformat(data["since"]) == request["waiting_since"]

    # Tried again while still full (the worker's sweep, a place freeing elsewhere): it keeps
    # its place and its start, and nothing more is said.
    async with home.work() as uow, uow.transaction():
        assert await placement.offer_waiting(uow, None, now=utc_now()) == 0
    assert (await request_of(home, waiting.case_id))["waiting_since"] == request["waiting_since"]
    assert types(await home.events(waiting.case_id)) == ["need.waiting"]

    # The place frees (the partner declines the other case): the offer ends the episode.
    offer = await offer_to(home, taken.case_id)
    assert offer is not None
    async with home.work() as uow:
        await offers.decline_offer(uow, partner, str(offer["id"]), Decline(DeclineReason.OTHER))
    assert await offer_to(home, waiting.case_id) is not None
    assert types(await home.events(waiting.case_id)) == ["need.waiting", "offer.made"]


async def test_a_resume_or_a_capacity_raise_offers_the_waiting_need(home: Directory) -> None:
    service_id = await home.add_partner("stratford-food-bank", capacity=1)
    async with home.work() as uow:
        await directory.pause_service(uow, OPERATOR, service_id, "volunteers away")
    paused = home.case()
    await home.route(paused)
    assert (await request_of(home, paused.case_id))["status"] == "waiting"
    async with home.work() as uow:
        await directory.resume_service(uow, OPERATOR, service_id)
    assert await offer_to(home, paused.case_id) is not None

    full = home.case()
    await home.route(full)
    assert (await request_of(home, full.case_id))["status"] == "waiting"
    organization_id = home.organizations["stratford-food-bank"]
    async with home.work() as uow:
        await directory.edit_service(
            uow, OPERATOR, service_id, home.details(organization_id, capacity=2)
        )
    assert await offer_to(home, full.case_id) is not None


async def test_an_unroutable_need_is_routed_when_a_service_that_can_take_it_is_added(
    home: Directory,
) -> None:
    case = home.case(needs=("housing",))
    await home.route(case)
    before = await request_of(home, case.case_id)
    assert before["status"] == "unroutable"
    assert before["unroutable_reason"] == "no service meets the need for housing"
    async with home.work() as uow:  # tried again: the council is not told twice
        await placement.offer_waiting(uow, None, now=utc_now())
        await uow.session.commit()
    assert types(await home.events(case.case_id)) == ["case.unroutable"]

    await home.add_partner("newham-housing-advice", needs=("housing",))
    assert await offer_to(home, case.case_id) is not None
    assert types(await home.events(case.case_id)) == ["case.unroutable", "offer.made"]


async def open_request(home: Directory, case: Any) -> str:
    """A need of a case, open and not yet placed."""
    async with home.work() as uow, uow.transaction():
        request_id = uow.new_id()
        await store.add_request(
            uow.session,
            request_id,
            case_id=case.case_id,
            need="food",
            status="open",
            attempts=0,
            packet=case.packet,
            lawful_basis=case.lawful_basis.value,
            consent_kinds=[k.value for k in case.consent_kinds],
            council=case.council,
            created_at=case.ready_at,
            updated_at=case.ready_at,
        )
    return request_id


async def place_alone(home: Directory, request_id: str) -> Any:
    """One placement in a transaction (and on a connection) of its own."""
    async with home.work() as uow, uow.transaction():
        return await placement.place(uow, request_id, now=utc_now())


async def outcome_of_race(home: Directory, cases: list[Any]) -> tuple[list[str], list[str]]:
    """(the cases offered a place, the statuses of their requests)."""
    offered = await home.rows(
        "SELECT case_id FROM offers WHERE status = 'offered' AND case_id = ANY(:c)",
        c=[case.case_id for case in cases],
    )
    statuses = [(await request_of(home, case.case_id))["status"] for case in cases]
    return [str(row["case_id"]) for row in offered], sorted(statuses)


async def test_two_placements_racing_for_the_last_place_have_one_winner(home: Directory) -> None:
    await home.add_partner("stratford-food-bank", capacity=1)
    cases = [home.case(), home.case()]
    first_id, second_id = [await open_request(home, case) for case in cases]

    # The first placement takes the last place and holds its transaction open; the second,
    # on its own connection, starts meanwhile: it waits for the first, then sees it full.
    async with home.work() as first, first.transaction():
        assert await placement.place(first, first_id, now=utc_now()) is not None
        second = asyncio.create_task(place_alone(home, second_id))
        await wait_for(
            lambda: waiting_on_a_lock(home.engine), timeout=20, what="the second placement to wait"
        )
        assert not second.done()
    assert await second is None
    offered, statuses = await outcome_of_race(home, cases)
    assert offered == [cases[0].case_id] and statuses == ["placed", "waiting"]


async def test_two_placements_at_once_on_the_last_place_have_one_winner(home: Directory) -> None:
    await home.add_partner("stratford-food-bank", capacity=1)
    cases = [home.case(), home.case()]
    ids = [await open_request(home, case) for case in cases]
    await asyncio.gather(*(place_alone(home, request_id) for request_id in ids))
    offered, statuses = await outcome_of_race(home, cases)
    assert len(offered) == 1 and statuses == ["placed", "waiting"]
