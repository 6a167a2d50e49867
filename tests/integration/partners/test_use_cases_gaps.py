"""Gaps in service, said once per episode, through the use cases on a real database (and one
through the consumer): a need turning unroutable, a need waiting past the threshold in
working days; a sweep or a handler run again says nothing more; a gap that closed and comes
back is a new episode."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from services.partners.service_layer import gaps, offers, placement
from services.partners.service_layer.offers import RecordOutcome
from shared.events.envelope import utc_now
from shared.messaging.consumer import EventConsumer
from shared.vocabulary import Outcome
from tests.integration.messaging_helpers import wait_for
from tests.integration.partners.conftest import PartnersApi
from tests.integration.partners.test_use_cases import Directory, home
from tests.support.services import Publisher

__all__ = ["home"]  # the fixture, shared with the other use-case tests

GAP = "uk.upstream.partners.gap.detected.v1"
# What a gap event may say: counts and areas, never who (no case, name, contact or age).
FIELDS = {
    "gap_id",
    "council",
    "need",
    "reason",
    "detail",
    "postcode_districts",
    "languages",
    "age_bands",
    "residents_waiting",
    "waiting_since",
    "longest_wait_hours",
    "detected_at",
}


async def gap_events(service: Directory | PartnersApi) -> list[dict[str, Any]]:
    async with service.engine.connect() as connection:
        rows = (
            (
                await connection.execute(
                    text(
                        "SELECT envelope, message_key FROM outbox WHERE event_type = :t ORDER BY id"
                    ),
                    {"t": GAP},
                )
            )
            .mappings()
            .all()
        )
    for row in rows:
        assert row["message_key"] == row["envelope"]["data"]["gap_id"]  # keyed by episode
    return [row["envelope"]["data"] for row in rows]


async def sweep(home: Directory, at: datetime | None = None) -> int:
    clock = (lambda: at) if at is not None else utc_now
    async with home.work(clock=clock) as uow:
        return await gaps.detect_gaps(uow)


def in_district(home: Directory, needs: tuple[str, ...], **packet: Any) -> Any:
    case = home.case(needs=needs)
    return replace(case, packet={**case.packet, "postcode_district": "E15", **packet})


async def test_a_need_turning_unroutable_is_a_gap_said_once_until_it_closes(
    home: Directory,
) -> None:
    first = in_district(home, ("housing",), age_years=70)
    await home.route(first)
    (gap,) = await gap_events(home)
    assert set(gap) == FIELDS
    assert (gap["council"], gap["need"], gap["reason"]) == (home.council, "housing", "unroutable")
    assert gap["detail"] == "no service meets the need for housing"
    assert (gap["postcode_districts"], gap["languages"], gap["age_bands"]) == (
        ["E15"],
        [],  # not known: the packet did not say
        ["65+"],
    )
    assert gap["residents_waiting"] == 1

    # The same case ready for routing again (a handler run twice), another resident in the
    # same gap, and the sweep run twice: nothing more is said.
    await home.route(first)
    await home.route(in_district(home, ("housing",)))
    assert await sweep(home) == 0 and await sweep(home) == 0
    assert len(await gap_events(home)) == 1
    (episode,) = await home.rows("SELECT residents, closed_at FROM gaps")
    assert dict(episode) == {"residents": 1, "closed_at": None}

    # A service that can take it is added: both are routed, and the sweep closes the gap.
    await home.add_partner("newham-housing-advice", needs=("housing",))
    assert await sweep(home) == 0
    assert await home.rows("SELECT id FROM gaps WHERE closed_at IS NULL") == []

    # The gap comes back (a need the service cannot take: it speaks English only): a new
    # episode, said again.
    await home.route(in_district(home, ("housing",), preferred_language="bn"))
    later = await gap_events(home)
    assert len(later) == 2 and later[1]["gap_id"] != gap["gap_id"]
    assert later[1]["languages"] == ["bn"]
    assert [dict(r) for r in await home.rows("SELECT count(*) AS n FROM gaps")] == [{"n": 2}]


async def test_the_longest_wait_of_an_unroutable_need_counts_from_when_it_turned_unroutable(
    home: Directory,
) -> None:
    began = utc_now() - timedelta(days=3)
    case = replace(in_district(home, ("housing",)), ready_at=began)
    await home.route(case)
    (row,) = await home.rows(
        "SELECT status, unroutable_since FROM route_requests WHERE case_id = :c", c=case.case_id
    )
    assert (row["status"], row["unroutable_since"]) == ("unroutable", began)

    # Tried again and again (the worker's safety net, a day apart): still unroutable, and
    # still unroutable since it first turned so.
    for days in (2, 1):
        async with home.work(clock=lambda days=days: utc_now() - timedelta(days=days)) as uow:
            await placement.offer_waiting_needs(uow)
    (row,) = await home.rows(
        "SELECT unroutable_since, updated_at FROM route_requests WHERE case_id = :c",
        c=case.case_id,
    )
    assert row["unroutable_since"] == began and row["updated_at"] > began

    # The gap closed meanwhile (an earlier episode) and the sweep finds it again: its longest
    # wait is the three days since the need turned unroutable, not since the last retry.
    async with home.engine.begin() as connection:
        await connection.execute(text("UPDATE gaps SET closed_at = now()"))
    now = utc_now()
    assert await sweep(home, now) == 1
    gap = (await gap_events(home))[-1]
    assert gap["reason"] == "unroutable"
    assert gap["longest_wait_hours"] == round((now - began).total_seconds() / 3600, 1)

    # Offered once a service can take it: no longer unroutable since anything.
    await home.add_partner("newham-housing-advice", needs=("housing",))
    (row,) = await home.rows(
        "SELECT status, unroutable_since FROM route_requests WHERE case_id = :c", c=case.case_id
    )
    assert (row["status"], row["unroutable_since"]) == ("placed", None)


async def test_a_need_waiting_past_two_working_days_is_a_gap_said_once(home: Directory) -> None:
    await home.add_partner("stratford-food-bank", capacity=1)
    partner = home.organizations["stratford-food-bank"]
    placed, waiting = home.case(), in_district(home, ("food",), age_years=16)
    await home.route(placed)
    await home.route(waiting)
    assert await sweep(home) == 0  # waiting, but not for long
    (since,) = await home.rows("SELECT waiting_since FROM route_requests WHERE status = 'waiting'")
    one_day = since["waiting_since"] + timedelta(hours=24)
    assert await sweep(home, one_day) == 0  # one working day at most
    week_on = since["waiting_since"] + timedelta(days=7)
    assert await sweep(home, week_on) == 1
    assert await sweep(home, week_on) == 0  # the sweep again: said once
    (gap,) = await gap_events(home)
    assert (gap["need"], gap["reason"], gap["residents_waiting"]) == ("food", "waiting_too_long", 1)
    assert gap["age_bands"] == ["0-17"] and gap["longest_wait_hours"] >= 7 * 24
    assert gap["detail"] == "every food service that could help is full"

    # The place frees: the waiting need is offered; the next sweep closes the gap.
    (offer,) = await home.rows("SELECT id FROM offers WHERE case_id = :c", c=placed.case_id)
    async with home.work() as uow:
        await offers.accept_offer(uow, partner, str(offer["id"]))
    async with home.work() as uow:
        await offers.record_outcome(
            uow, partner, str(offer["id"]), RecordOutcome(Outcome.SUPPORT_PROVIDED)
        )
    assert await sweep(home, week_on) == 0
    assert await home.rows("SELECT id FROM gaps WHERE closed_at IS NULL") == []

    # Full again, and another need waits long: a new episode.
    late = home.case()
    await home.route(late)
    assert await sweep(home, utc_now() + timedelta(days=14)) == 1
    assert len(await gap_events(home)) == 2


async def test_a_ready_for_routing_event_delivered_twice_says_the_gap_once(
    isolated_partners: PartnersApi, partners_consumer: EventConsumer, publisher: Publisher
) -> None:
    partners = isolated_partners
    ready = partners.ready(needs=("immigration_advice",))
    event = await publisher.send(ready, subject=ready.case_id)
    await publisher.resend(event)  # a redelivery: the inbox skips it
    again = partners.ready(needs=("immigration_advice",))  # another resident, same gap
    await publisher.send(again, subject=again.case_id)

    # The topics are shared: other tests' cases may reach this database too; only this
    # test's council counts.
    async def both_unroutable() -> bool:
        mine = "status = 'unroutable' AND council = :c"
        return await partners.count("route_requests", mine, c=partners.council) == 2

    await wait_for(both_unroutable, timeout=30, what="both needs unroutable")
    (gap,) = [g for g in await gap_events(partners) if g["council"] == partners.council]
    assert (gap["need"], gap["reason"], gap["council"]) == (
        "immigration_advice",
        "unroutable",
        partners.council,
    )
