"""Expiry is not withdrawal: when a consent expires, partners are told it expired, not that
the resident withdrew it (the handler reads the event's reason)."""

from __future__ import annotations

import pytest

from services.partners.handlers import on_consent_withdrawn
from shared.events.envelope import utc_now
from shared.events.payloads import ConsentWithdrawn, SharingStopped
from tests.integration.partners.test_use_cases import Directory, home, types

__all__ = ["home"]  # the fixture, shared with the use-case tests

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("why", "told"),
    [
        (SharingStopped.EXPIRED, "the resident's consent expired"),
        (SharingStopped.WITHDRAWN, "the resident withdrew consent"),
        (None, "the resident withdrew consent"),  # an event from before the reason existed
    ],
)
async def test_the_partner_is_told_why_sharing_stopped(
    home: Directory, why: SharingStopped | None, told: str
) -> None:
    await home.add_partner("stratford-food-bank")
    case = home.case()
    await home.route(case)
    fields = {"case_id": case.case_id, "council": home.council, "withdrawn_at": utc_now()}
    event = ConsentWithdrawn(**fields, **({"reason": why} if why else {}))
    async with home.work() as uow:
        await on_consent_withdrawn(event, uow)

    (offer,) = await home.rows("SELECT status, note FROM offers WHERE case_id = :c", c=case.case_id)
    assert (offer["status"], offer["note"]) == ("withdrawn", told)
    events = await home.events(case.case_id)
    assert types(events) == ["offer.made", "offer.withdrawn"]
    assert events[1][1]["reason"] == told
