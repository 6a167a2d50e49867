"""A service's opening hours, through the use cases on a real database: offers to a service
with hours in the directory are due (and followed up) in those hours, and an ORUK import reads
them from weekly schedules and says what it could not read."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from services.partners.service_layer import directory, offers
from tests.integration.partners.test_use_cases import OPERATOR, Directory, home

__all__ = ["home"]  # the fixture, shared with the other use-case tests

LONDON = ZoneInfo("Europe/London")
SATURDAYS = [
    {"day": "FR", "opens": "12:00", "closes": "18:00"},
    {"day": "SA", "opens": "09:00", "closes": "17:00"},
]


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)  # type: ignore[misc]


async def test_an_offer_to_a_saturday_food_bank_is_due_in_its_opening_hours(
    home: Directory,
) -> None:
    service_id = await home.add_partner("stratford-food-bank")
    partner = home.organizations["stratford-food-bank"]
    async with home.work() as uow:
        await directory.edit_service(
            uow, OPERATOR, service_id, home.details(partner, opening_hours=SATURDAYS)
        )
    case = replace(home.case(urgency="high"), ready_at=london(2026, 11, 27, 16, 0))  # Friday
    await home.route(case)

    # 2 working hours on Friday (to 18:00), 6 on Saturday from 09:00: not Monday afternoon
    (offer,) = await home.rows("SELECT * FROM offers WHERE case_id = :c", c=case.case_id)
    assert offer["respond_by"] == london(2026, 11, 28, 15, 0)
    (made,) = [data for kind, data in await home.events(case.case_id)]
    assert datetime.fromisoformat(made["respond_by"]) == london(2026, 11, 28, 15, 0)

    # accepted on Saturday at 10:00, follow-up in 16 of its working hours: 7 that Saturday,
    # 6 on Friday, 3 on the next Saturday
    clock = london(2026, 11, 28, 10, 0).astimezone(UTC)
    async with home.work(clock=lambda: clock) as uow:
        accepted = await offers.accept_offer(uow, partner, str(offer["id"]))
    assert accepted.follow_up_by == london(2026, 12, 5, 12, 0)


async def test_an_import_reads_weekly_schedules_and_says_what_it_left_out(
    home: Directory,
) -> None:
    service_id, organization_id = str(uuid.uuid4()), str(uuid.uuid4())
    document = {
        "id": service_id,
        "name": "Advice on Tuesdays and Thursdays",
        "organization": {"id": organization_id, "name": "Advice centre"},
        "attributes": [{"taxonomy_term": {"name": "money_and_debt"}}],
        "service_areas": [{"extent": home.council, "extent_type": "gss_code"}],
        "schedules": [
            {
                "id": "weekly",
                "freq": "WEEKLY",
                "byday": "TU,TH",
                "opens_at": "10:00:00",
                "closes_at": "16:00:00",
            },
            {
                "id": "monthly",
                "freq": "MONTHLY",
                "byday": "1SA",
                "opens_at": "10:00",
                "closes_at": "12:00",
            },
        ],
    }
    async with home.work() as uow:
        report = await directory.import_directory(uow, [document])
    assert (report.services, report.skipped) == (1, [])
    assert report.ignored == [
        f"{service_id}: schedule monthly: not every week (only freq WEEKLY, interval 1 is read)"
    ]
    (row,) = await home.rows("SELECT opening_hours FROM services WHERE id = :s", s=service_id)
    assert row["opening_hours"] == [
        {"day": "TU", "opens": "10:00:00", "closes": "16:00:00"},
        {"day": "TH", "opens": "10:00:00", "closes": "16:00:00"},
    ]
    async with home.work() as uow:
        (exported,) = await directory.export_directory(uow)
    assert [(s["byday"], s["opens_at"]) for s in exported["schedules"]] == [
        ("TU", "10:00:00"),
        ("TH", "10:00:00"),
    ]
