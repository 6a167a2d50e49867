"""``partners.service.capacity_changed`` from the directory use cases on a real database:
one event in the change's transaction whenever a service's capacity, pause or needs are set
or change (registration, edit, set capacity, pause, resume, ORUK import), and none when the
same figures are written again or other details change."""

from __future__ import annotations

import uuid
from typing import Any

from services.partners.service_layer import directory
from tests.integration.partners.test_use_cases import OPERATOR, Directory, home

__all__ = ["home"]  # the fixture, shared with the other use-case tests

EVENT = "uk.upstream.partners.service.capacity_changed.v1"


async def said(home: Directory, service_id: str) -> list[tuple[int, bool, list[str]]]:
    """(capacity, paused, needs) of the service's capacity events, in order."""
    rows = await home.rows(
        "SELECT envelope FROM outbox WHERE event_type = :t AND message_key = :s ORDER BY id",
        t=EVENT,
        s=service_id,
    )
    data: list[dict[str, Any]] = [row["envelope"]["data"] for row in rows]
    return [(d["capacity"], d["paused"], d["needs"]) for d in data]


async def test_each_change_of_capacity_is_said_once(home: Directory) -> None:
    service_id = await home.add_partner("stratford-food-bank", capacity=5)
    organization_id = home.organizations["stratford-food-bank"]
    assert await said(home, service_id) == [(5, False, ["food"])]
    (first,) = await home.rows(
        "SELECT envelope FROM outbox WHERE event_type = :t AND message_key = :s",
        t=EVENT,
        s=service_id,
    )
    assert first["envelope"]["data"]["partner_id"] == organization_id
    assert first["envelope"]["data"]["partner_name"] == "stratford-food-bank"

    async with home.work() as uow:
        await directory.set_capacity(uow, OPERATOR, service_id, 7)
    async with home.work() as uow:
        await directory.set_capacity(uow, OPERATOR, service_id, 7)  # the same: nothing said
    async with home.work() as uow:  # other details only: nothing said
        await directory.edit_service(
            uow, OPERATOR, service_id, home.details(organization_id, capacity=7, name="Renamed")
        )
    async with home.work() as uow:  # a new need: said
        await directory.edit_service(
            uow,
            OPERATOR,
            service_id,
            home.details(organization_id, capacity=7, needs=["food", "benefits"]),
        )
    async with home.work() as uow:
        await directory.pause_service(uow, OPERATOR, service_id, "volunteers on holiday")
    async with home.work() as uow:
        await directory.pause_service(uow, OPERATOR, service_id, "still on holiday")
    async with home.work() as uow:
        await directory.resume_service(uow, OPERATOR, service_id)
    assert await said(home, service_id) == [
        (5, False, ["food"]),
        (7, False, ["food"]),
        (7, False, ["food", "benefits"]),
        (7, True, ["food", "benefits"]),
        (7, False, ["food", "benefits"]),
    ]


async def test_an_import_says_new_and_changed_capacities_only(home: Directory) -> None:
    service_id, organization_id = str(uuid.uuid4()), str(uuid.uuid4())
    document = {
        "id": service_id,
        "name": "Advice",
        "organization": {"id": organization_id, "name": "Advice centre"},
        "attributes": [{"taxonomy_term": {"name": "money_and_debt"}}],
        "service_areas": [{"extent": home.council, "extent_type": "gss_code"}],
    }
    async with home.work() as uow:
        await directory.import_directory(uow, [document], capacity=4)
    async with home.work() as uow:
        await directory.import_directory(uow, [document], capacity=4)  # unchanged: nothing
    async with home.work() as uow:
        await directory.import_directory(uow, [document], capacity=6)
    assert await said(home, service_id) == [
        (4, False, ["money_and_debt"]),
        (6, False, ["money_and_debt"]),
    ]
