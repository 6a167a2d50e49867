"""Partner capacity beside partner load, through the real broker (issue #17, item 1): a
partner's services are registered, their capacity set, left as it is, paused, with the
partners use cases on a real partners database; its relay publishes
``partners.service.capacity_changed`` from each change's transaction (only when the figure,
the pause or the needs change); the ``referrals-reporting`` consumer group keeps each
service's history; and ``GET /v1/reports/{council}/outcomes`` (and the outcomes page) show,
per partner and week, the capacity in force at the week's end beside the offers open then.
The same changes delivered again change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from services.partners.bootstrap import SERVICE as PARTNERS
from services.partners.service_layer import directory
from services.partners.service_layer.agreements import Manager
from services.partners.service_layer.directory import Editor, NewOrganization, ServiceDetails
from services.partners.settings import PartnersSettings
from services.referrals.bootstrap import SERVICE as REFERRALS
from services.referrals.reporting_handlers import REPORTING_GROUP
from services.referrals.settings import ReferralsSettings
from shared.auth import OrganisationKind, Role, mint_token
from shared.events.envelope import utc_now
from shared.events.payloads import CaseOpened, ReferralOffered, ServiceCapacityChanged
from shared.vocabulary import Need, PartnerKind
from tests.conftest import MakeDatabase
from tests.integration.messaging_helpers import relaying, wait_for
from tests.integration.partners.conftest import work_on
from tests.integration.referrals.conftest import unique_council
from tests.support.infrastructure import Broker
from tests.support.services import ServiceUnderTest, publisher, running_consumer, serve

pytestmark = pytest.mark.integration

LONDON = ZoneInfo("Europe/London")
CAPACITY_EVENT = "partners.service.capacity_changed"
OPERATOR = Editor("operator", is_operator=True)


@dataclass
class Stack:
    council: str
    partners: ServiceUnderTest
    partners_settings: PartnersSettings
    referrals: ServiceUnderTest
    referrals_settings: ReferralsSettings
    kafka: Broker

    def manager(self) -> dict[str, str]:
        token = mint_token(
            self.referrals_settings,
            subject="manager-person",
            organisation=self.council,
            kind=OrganisationKind.COUNCIL,
            roles=[Role.MANAGER],
        )
        return {"Authorization": f"Bearer {token}"}

    def work(self, at: datetime) -> Any:
        """A partners unit of work whose clock reads ``at``: the change happened then."""
        return work_on(self.partners.engine, self.partners_settings, clock=lambda: at)

    async def outcomes(self, period_from: date) -> dict[str, Any]:
        response = await self.referrals.client.get(
            f"/v1/reports/{self.council}/outcomes",
            params={"from": str(period_from)},
            headers=self.manager(),
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture
async def stack(service_database: MakeDatabase, kafka: Broker) -> AsyncIterator[Stack]:
    council = unique_council()
    partners_settings = PartnersSettings(database_url=SecretStr(await service_database("partners")))
    referrals_settings = ReferralsSettings(
        database_url=SecretStr(await service_database("referrals")), councils=[council]
    )
    async with AsyncExitStack() as exits:
        partners_client, partners_engine = await exits.enter_async_context(
            serve(PARTNERS, partners_settings)
        )
        await exits.enter_async_context(
            relaying(partners_engine, kafka, partners_settings.keystore_database_url())
        )
        referrals_client, referrals_engine = await exits.enter_async_context(
            serve(REFERRALS, referrals_settings)
        )
        # Only the reporting consumer group: the figures come from its model.
        await exits.enter_async_context(
            running_consumer(
                REFERRALS, referrals_engine, referrals_settings, kafka, group=REPORTING_GROUP
            )
        )
        yield Stack(
            council,
            ServiceUnderTest(partners_client, partners_engine),
            partners_settings,
            ServiceUnderTest(referrals_client, referrals_engine),
            referrals_settings,
            kafka,
        )


def _london(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=LONDON)


def _details(organization_id: str, council: str, capacity: int, **changes: Any) -> ServiceDetails:
    return ServiceDetails.model_validate(
        {
            "organization_id": organization_id,
            "name": "Pantry",
            "description": "Food parcels",
            "needs": ["food"],
            "councils": [council],
            "capacity": capacity,
            **changes,
        }
    )


async def test_partner_load_shows_the_capacity_in_force_at_each_weeks_end(stack: Stack) -> None:
    today = utc_now().astimezone(LONDON).date()
    this_week = today - timedelta(days=today.weekday())
    week_a, week_b = this_week - timedelta(days=14), this_week - timedelta(days=7)

    async with stack.work(_london(week_a, 9)) as uow:
        partner = await directory.add_organization(
            uow,
            NewOrganization(name="Pantry", description="A pantry", kind=PartnerKind.FOOD),
            by=Manager("operator-person", "operator", is_operator=True),
        )
    # Week A: the first service registered at 5.
    async with stack.work(_london(week_a, 10)) as uow:
        first = await directory.add_service(uow, OPERATOR, _details(partner, stack.council, 5))
    # Week B: raised to 8; set to 8 again and edited without a change of capacity (no event);
    # a second service registered at 3.
    async with stack.work(_london(week_b + timedelta(days=2), 10)) as uow:
        await directory.set_capacity(uow, OPERATOR, first, 8)
    async with stack.work(_london(week_b + timedelta(days=2), 11)) as uow:
        await directory.set_capacity(uow, OPERATOR, first, 8)
    async with stack.work(_london(week_b + timedelta(days=2), 12)) as uow:
        await directory.edit_service(
            uow,
            OPERATOR,
            first,
            _details(partner, stack.council, 8, description="Food parcels, weekly"),
        )
    async with stack.work(_london(week_b + timedelta(days=3), 10)) as uow:
        second = await directory.add_service(
            uow, OPERATOR, _details(partner, stack.council, 3, name="Pantry two")
        )
    # This week: the first pauses intake (its capacity is no longer in force).
    async with stack.work(_london(this_week, 1)) as uow:
        await directory.pause_service(uow, OPERATOR, first, "refurbishment")

    published = await stack.partners.events(CAPACITY_EVENT)
    assert [(e["service_id"], e["capacity"], e["paused"]) for e in published] == [
        (first, 5, False),
        (first, 8, False),
        (second, 3, False),
        (first, 8, True),
    ]
    assert {e["partner_id"] for e in published} == {partner}
    assert {e["partner_name"] for e in published} == {"Pantry"}
    assert all(e["needs"] == ["food"] for e in published)
    # Operational figures only: nothing of a resident in the event.
    assert set(published[0]) == {
        "service_id",
        "partner_id",
        "partner_name",
        "needs",
        "capacity",
        "paused",
        "at",
    }

    # The council's offer to the partner, made in week A and never answered: the partner's
    # load is one open offer at every week's end.
    case_id, opened = "3f0c8a52-0e3b-4d0e-9d53-5b1f6f1f0a01", _london(week_a, 11)
    async with publisher(stack.kafka.bootstrap_servers) as sender:
        await sender.send(
            CaseOpened(
                case_id=case_id,
                council=stack.council,
                origin="referral",
                resident_keys=["ab" * 32],
                opened_at=opened,
            ),
            case_id,
        )
        await sender.send(
            ReferralOffered(
                offer_id="5d1f7a21-8c44-4b7e-a3a1-0b6c1f2e3d40",
                case_id=case_id,
                need=Need.FOOD,
                partner_id=partner,
                partner_name="Pantry",
                service_id=first,
                service_name="Pantry",
                at=opened + timedelta(hours=1),
                respond_by=opened + timedelta(days=30),
            ),
            case_id,
        )

    expected = {week_a: 5, week_b: 11, this_week: 3}

    async def shown() -> dict[str, Any] | None:
        report = await stack.outcomes(week_a)
        weeks = {
            date.fromisoformat(w["week_starting"]): w["capacity"]
            for w in report["partner_load"]
            if w["partner_id"] == partner
        }
        return report if weeks == expected else None

    report = await wait_for(shown, timeout=90, interval=0.3, what="capacity in the partner load")
    rows = [w for w in report["partner_load"] if w["partner_id"] == partner]
    # The existing figures are as they were: one open offer at each week's end.
    assert [(w["offered"], w["open_at_week_end"], w["in_hand_at_week_end"]) for w in rows] == [
        (1, 1, 0),
        (0, 1, 0),
        (0, 1, 0),
    ]

    # The outcomes page: the partner load table has the capacity column, the chart a line.
    page = await stack.referrals.client.get(
        f"/reports/{stack.council}",
        params={"from": str(week_a)},
        headers=stack.manager(),
    )
    assert page.status_code == 200, page.text
    assert 'data-field="capacity"' in page.text and "Capacity at week end" in page.text
    assert f"{partner} capacity" in page.text

    # The same changes delivered again (new deliveries, as a replay of the topic gives),
    # then a change after the period on the same service's partition, to know they are read.
    later = ServiceCapacityChanged.model_validate(
        {
            **published[0],
            "capacity": 20,
            "paused": False,
            "at": _london(today, 0) + timedelta(days=40),
        }
    )
    async with publisher(stack.kafka.bootstrap_servers) as sender:
        for event in published:
            await sender.send(ServiceCapacityChanged.model_validate(event), event["service_id"])
        await sender.send(later, first)

    async def later_read() -> bool:
        return (
            await stack.referrals.count(
                "reporting_service_capacity", "service_id = :s AND capacity = 20", s=first
            )
            == 1
        )

    await wait_for(later_read, timeout=60, interval=0.3, what="the later change read")
    # (Only this test's services: other modules' capacity events share the session broker.)
    ours = sorted({event["service_id"] for event in published})
    held = await stack.referrals.count(
        "reporting_service_capacity", "service_id = ANY(:ids)", ids=ours
    )
    assert held == len(published) + 1
    assert await stack.outcomes(week_a) == report
