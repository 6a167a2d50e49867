"""Working-day deadlines and overdue offers, through the use cases on a real database with a
controlled clock: a Friday-afternoon high-urgency offer is due on Monday afternoon, the
reminder comes before it, and an accepted offer without progress becomes overdue for the
partner and its council."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from services.partners.service_layer import offers, web_access
from services.partners.service_layer.notifications import queue_reminders
from tests.integration.partners.test_use_cases import Directory, home, types

__all__ = ["home"]  # the fixture, shared with the other use-case tests

LONDON = ZoneInfo("Europe/London")


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)  # type: ignore[misc]


def at(moment: datetime) -> dict[str, object]:
    """A unit of work whose clock says ``moment``."""
    return {"clock": lambda: moment.astimezone(UTC)}


async def test_a_friday_afternoon_high_offer_is_due_monday_and_overdue_once_left(
    home: Directory,
) -> None:
    await home.add_partner("stratford-food-bank")
    partner = home.organizations["stratford-food-bank"]
    async with home.work() as uow:
        await web_access.register_addresses(uow, partner, ["desk@stratford-food.example"])
    case = replace(home.case(urgency="high"), ready_at=london(2026, 11, 27, 16, 0))  # Friday
    await home.route(case)

    (offer,) = await home.rows("SELECT * FROM offers WHERE case_id = :c", c=case.case_id)
    assert offer["respond_by"] == london(2026, 11, 30, 16, 0)  # Monday afternoon
    (made,) = [data for kind, data in await home.events(case.case_id)]
    assert datetime.fromisoformat(made["respond_by"]) == london(2026, 11, 30, 16, 0)

    # The existing reminder comes an hour before the working-day deadline, not before.
    async with home.work(**at(london(2026, 11, 30, 14, 30))) as uow:
        assert await queue_reminders(uow) == 0
    async with home.work(**at(london(2026, 11, 30, 15, 30))) as uow:
        assert await queue_reminders(uow) == 1
    reminders = await home.rows(
        "SELECT kind FROM email_deliveries WHERE offer_id = :o AND kind = 'offer.reminder'",
        o=offer["id"],
    )
    assert len(reminders) == 1

    # Accepted on Monday at 10:00: progress due two working days on, Wednesday 10:00.
    async with home.work(**at(london(2026, 11, 30, 10, 0))) as uow:
        accepted = await offers.accept_offer(uow, partner, str(offer["id"]))
    assert accepted.follow_up_by == london(2026, 12, 2, 10, 0) and not accepted.overdue
    async with home.work(**at(london(2026, 12, 2, 9, 59))) as uow:
        (seen,) = await offers.list_offers(uow, partner)
        assert not seen.overdue
        assert await offers.mark_overdue_offers(uow) == 0
        assert await offers.overdue_counts(uow, home.council) == []

    async with home.work(**at(london(2026, 12, 2, 10, 5))) as uow:
        (seen,) = await offers.list_offers(uow, partner)
        assert seen.overdue  # the partner sees it
        assert await offers.mark_overdue_offers(uow) == 1
    async with home.work(**at(london(2026, 12, 2, 10, 6))) as uow:
        assert await offers.mark_overdue_offers(uow) == 0  # once
        (count,) = await offers.overdue_counts(uow, home.council)  # the council counts it
        assert (count.council, count.partner_id, count.offers) == (home.council, partner, 1)
        assert await offers.overdue_counts(uow, "E09000999") == []  # not another council's
    events = await home.events(case.case_id)
    assert types(events) == ["offer.made", "offer.accepted", "offer.overdue"]
    assert datetime.fromisoformat(events[-1][1]["follow_up_by"]) == london(2026, 12, 2, 10, 0)
    kinds = await home.rows("SELECT kind FROM email_deliveries WHERE offer_id = :o", o=offer["id"])
    assert "offer.overdue" in {k["kind"] for k in kinds}

    # Progress resets the follow-up clock: no longer overdue.
    async with home.work(**at(london(2026, 12, 2, 11, 0))) as uow:
        progressed = await offers.record_progress(uow, partner, str(offer["id"]), "called")
    assert not progressed.overdue
    assert progressed.follow_up_by == london(2026, 12, 4, 11, 0)
    async with home.work(**at(london(2026, 12, 2, 11, 1))) as uow:
        assert await offers.overdue_counts(uow, None) == []
