"""Data-sharing agreements between a council and a partner, through the use cases on a real
database: routing scoped to the case's council's agreement, ending one early, an expired one,
who may manage them, and the migration of the old one-per-partner agreements."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from devtools.embedded import drop_database, ensure_database, with_database
from services.partners.bootstrap import SERVICE
from services.partners.domain.routing import NO_AGREEMENT
from services.partners.handlers import on_case_ready_for_routing
from services.partners.service_layer import agreements, directory, offers, placement
from services.partners.service_layer.agreements import AgreementTerms, Manager, NewAgreement
from services.partners.service_layer.directory import Editor, NewOrganization, ServiceDetails
from services.partners.service_layer.placement import CaseToRoute
from services.partners.settings import PartnersSettings
from shared.db import async_url
from shared.errors import Conflict, Forbidden, NotFound
from shared.events.envelope import utc_now
from shared.events.payloads import CaseReadyForRouting, ContactRoute, RoutingPacket
from shared.migrations import alembic_config, upgrade
from shared.vocabulary import LawfulBasis, Need, OfferStatus, PartnerKind
from tests.integration.partners.conftest import new_council, settings_for, work_on

pytestmark = pytest.mark.integration

OPERATOR = Manager("operator-person", "operator", is_operator=True)
EDITOR = Editor("operator", is_operator=True)
LONG_AGO = date(2020, 1, 1)


def ig_of(council: str) -> Manager:
    return Manager(f"dpo-at-{council}", council, is_operator=False)


@dataclass
class World:
    engine: AsyncEngine
    settings: PartnersSettings

    def work(self) -> Any:
        return work_on(self.engine, self.settings)

    async def partner(self, councils: list[str], needs: tuple[str, ...] = ("food",)) -> str:
        """A partner organisation whose one service covers ``councils``; no agreement yet."""
        async with self.work() as uow:
            organization_id = await directory.add_organization(
                uow,
                NewOrganization(
                    name=f"Pantry {uuid.uuid4().hex[:6]}",
                    description="a local charity",
                    kind=PartnerKind.FOOD,
                ),
                by=OPERATOR,
            )
        async with self.work() as uow:
            await directory.add_service(
                uow,
                EDITOR,
                ServiceDetails.model_validate(
                    {
                        "organization_id": organization_id,
                        "name": "pantry",
                        "description": "food parcels",
                        "needs": list(needs),
                        "councils": councils,
                        "capacity": 5,
                    }
                ),
            )
        return organization_id

    async def agree(
        self, organization_id: str, council: str, by: Manager = OPERATOR, **terms: Any
    ) -> str:
        command = NewAgreement.model_validate(
            {
                "organization_id": organization_id,
                "council": council,
                "reference": f"DSA-{council}",
                "needs": ["food"],
                "lawful_bases": ["consent", "public_task"],
                "starts_on": LONG_AGO,
                **terms,
            }
        )
        async with self.work() as uow:
            return await agreements.add_agreement(uow, by, command)

    async def route(
        self,
        council: str,
        basis: LawfulBasis = LawfulBasis.PUBLIC_TASK,
        reference: str | None = None,
        need: str = "food",
    ) -> str:
        case_id = str(uuid.uuid4())
        async with self.work() as uow:
            await placement.route_case(
                uow,
                CaseToRoute(
                    case_id=case_id,
                    council=council,
                    packet={"first_name": "Amina", "needs": [need], "urgency": "high"},
                    lawful_basis=basis,
                    consent_kinds=[PartnerKind.ANY_VOLUNTARY]
                    if basis is LawfulBasis.CONSENT
                    else [],
                    ready_at=utc_now(),
                    agreement_reference=reference,
                ),
            )
        return case_id

    async def rows(self, sql: str, **params: object) -> list[Mapping[str, Any]]:
        async with self.engine.connect() as connection:
            return list((await connection.execute(text(sql), params)).mappings().all())

    async def placed(self, case_id: str) -> Mapping[str, Any]:
        (row,) = await self.rows(
            "SELECT r.status, r.unroutable_reason, o.organization_id::text, "
            "o.id::text AS offer_id, o.decision "
            "FROM route_requests r LEFT JOIN offers o ON o.request_id = r.id WHERE r.case_id = :c",
            c=case_id,
        )
        return row


@pytest.fixture(scope="module")
async def world(postgres_admin_url: str) -> AsyncIterator[World]:
    """One migrated database for the module; each test takes councils of its own."""
    name = f"test_partners_agreements_{uuid.uuid4().hex[:8]}"
    await ensure_database(postgres_admin_url, name)
    settings = settings_for(with_database(postgres_admin_url, name))
    upgrade(SERVICE, settings.database_url.get_secret_value())
    engine = create_async_engine(async_url(settings.database_url.get_secret_value()))
    try:
        yield World(engine, settings)
    finally:
        await engine.dispose()
        await drop_database(postgres_admin_url, name)


async def test_a_public_task_case_goes_only_to_a_partner_with_an_agreement_with_its_council(
    world: World,
) -> None:
    council_a, council_b = new_council(), new_council()
    # works in both boroughs, but has an agreement with B only
    partner = await world.partner([council_a, council_b])
    await world.agree(partner, council_b)

    of_a = await world.placed(await world.route(council_a))
    assert of_a["status"] == "unroutable" and of_a["organization_id"] is None
    assert of_a["unroutable_reason"].startswith(NO_AGREEMENT)

    # the council hears of it as a gap in service: no agreement in force
    (gap,) = await world.rows(
        "SELECT envelope FROM outbox WHERE event_type LIKE '%gap.detected%' "
        "AND envelope -> 'data' ->> 'council' = :c",
        c=council_a,
    )
    assert gap["envelope"]["data"]["reason"] == "no_agreement"
    assert gap["envelope"]["data"]["detail"].startswith(NO_AGREEMENT)

    of_b = await world.placed(await world.route(council_b))
    assert of_b["status"] == "placed" and of_b["organization_id"] == partner
    assert (
        f"has data-sharing agreement DSA-{council_b} with {council_b}, in force, covering "
        "this case" in of_b["decision"]["why"]["passed"]
    )
    # a case naming another agreement of B's does not go under this one
    named = await world.placed(await world.route(council_b, reference="DSA-OTHER"))
    assert named["status"] == "unroutable"


async def test_the_reasons_name_the_agreement_condition_that_failed(world: World) -> None:
    council = new_council()
    chosen = await world.partner([council])
    await world.agree(chosen, council)
    consent_only = await world.partner([council])
    await world.agree(consent_only, council, lawful_bases=["consent"])
    placed = await world.placed(await world.route(council))
    assert placed["organization_id"] == chosen
    assert any(
        f"its agreement with {council} does not cover public task" in line
        for line in placed["decision"]["why"]["excluded"]
    )
    assert "agreement" in placed["decision"]["excluded"].values()


async def test_ending_early_stops_new_offers_and_leaves_accepted_ones(world: World) -> None:
    council, elsewhere = new_council(), new_council()
    partner = await world.partner([council])
    agreement_id = await world.agree(partner, council, by=ig_of(council))

    accepted = await world.placed(await world.route(council, LawfulBasis.CONSENT))
    async with world.work() as uow:
        await offers.accept_offer(uow, partner, accepted["offer_id"])

    # another council's IG team can neither see it nor end it
    async with world.work() as uow:
        with pytest.raises(NotFound):
            await agreements.end_agreement(uow, ig_of(elsewhere), agreement_id, "not ours")
        assert await agreements.list_agreements(uow, ig_of(elsewhere)) == []
        with pytest.raises(Forbidden):
            await agreements.list_agreements(uow, ig_of(elsewhere), council=council)

    async with world.work() as uow:
        ended = await agreements.end_agreement(uow, ig_of(council), agreement_id, "DSA lapsed")
    assert not ended.in_force and ended.end_reason == "DSA lapsed"
    assert [(h.change, h.by, h.reason) for h in ended.history] == [
        ("created", f"dpo-at-{council} ({council})", None),
        ("ended", f"dpo-at-{council} ({council})", "DSA lapsed"),
    ]

    after = await world.placed(await world.route(council, LawfulBasis.CONSENT))
    assert after["status"] == "unroutable"
    assert after["unroutable_reason"].startswith(NO_AGREEMENT)
    (still,) = await world.rows("SELECT status FROM offers WHERE id = :o", o=accepted["offer_id"])
    assert still["status"] == OfferStatus.ACCEPTED.value  # not withdrawn

    async with world.work() as uow:
        with pytest.raises(Conflict, match="already ended"):
            await agreements.end_agreement(uow, OPERATOR, agreement_id, "again")


async def test_an_expired_agreement_stops_offers_and_a_new_one_lets_the_waiting_need_in(
    world: World,
) -> None:
    council = new_council()
    partner = await world.partner([council])
    yesterday = utc_now().date() - timedelta(days=2)
    await world.agree(partner, council, reference="DSA-2025", ends_on=yesterday)
    case_id = await world.route(council, LawfulBasis.CONSENT)
    assert (await world.placed(case_id))["status"] == "unroutable"

    async with world.work() as uow:
        listed = await agreements.list_agreements(uow, ig_of(council))
    assert [(a.reference, a.in_force) for a in listed] == [("DSA-2025", False)]

    # the renewal is recorded: the unroutable need is tried again at once and offered
    await world.agree(partner, council, reference="DSA-2026", starts_on=yesterday)
    placed = await world.placed(case_id)
    assert placed["status"] == "placed" and placed["organization_id"] == partner


async def test_an_agreement_change_in_one_council_tries_again_only_that_councils_needs(
    world: World,
) -> None:
    council, other = new_council(), new_council()
    partner = await world.partner([council, other])
    mine, theirs = await world.route(council), await world.route(other)  # neither has one

    async def touched(case_id: str) -> Any:
        (row,) = await world.rows(
            "SELECT status, updated_at FROM route_requests WHERE case_id = :c", c=case_id
        )
        return row["status"], row["updated_at"]

    before = await touched(theirs)
    assert before[0] == (await touched(mine))[0] == "unroutable"

    # recorded with this council: its need is tried again (and offered); the other
    # council's is not even tried (the agreement cannot let it in)
    agreement_id = await world.agree(partner, council)
    assert (await world.placed(mine))["status"] == "placed"
    assert await touched(theirs) == before

    # ended early: likewise, only this council's needs are handed on
    async with world.work() as uow:
        await agreements.end_agreement(uow, OPERATOR, agreement_id, "lapsed")
    assert await touched(theirs) == before


async def test_scope_of_needs_and_special_category(world: World) -> None:
    council = new_council()
    partner = await world.partner([council], needs=("food", "mental_health"))
    await world.agree(partner, council, needs=["food", "mental_health"])
    health = await world.placed(
        await world.route(council, LawfulBasis.CONSENT, need=Need.MENTAL_HEALTH.value)
    )
    assert health["status"] == "unroutable"  # the agreement does not allow special category
    food = await world.placed(await world.route(council, LawfulBasis.CONSENT))
    assert food["status"] == "placed"


async def test_only_operators_and_the_councils_own_ig_team_record_agreements(world: World) -> None:
    council, other = new_council(), new_council()
    partner = await world.partner([council])
    with pytest.raises(Forbidden):
        await world.agree(partner, council, by=ig_of(other))
    agreement_id = await world.agree(partner, council, by=ig_of(council))
    with pytest.raises(Conflict, match="already holds"):
        await world.agree(partner, council)
    async with world.work() as uow:
        with pytest.raises(NotFound):
            await agreements.agreement(uow, ig_of(other), agreement_id)
        seen = await agreements.agreement(uow, OPERATOR, agreement_id)
    assert seen.council == council and seen.recorded_by == f"dpo-at-{council} ({council})"
    with pytest.raises(ValueError, match="ends_on"):
        AgreementTerms.model_validate(
            {
                "council": council,
                "reference": "x",
                "needs": ["food"],
                "lawful_bases": ["consent"],
                "starts_on": "2026-01-02",
                "ends_on": "2026-01-01",
            }
        )


# -- the migration of one-per-partner agreements (revision 0008) ----------------------------


async def test_a_partners_old_agreement_becomes_one_with_each_council_it_serves(
    postgres_admin_url: str,
) -> None:
    name = f"test_partners_0008_{uuid.uuid4().hex[:8]}"
    await ensure_database(postgres_admin_url, name)
    url = with_database(postgres_admin_url, name)
    engine = create_async_engine(async_url(url))
    newham, hackney, districts_only = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())

    async def select(sql: str) -> dict[str, Mapping[str, Any]]:
        async with engine.connect() as connection:
            rows = (await connection.execute(text(sql))).mappings().all()
        return {str(r["organization_id"]): r for r in rows}

    try:
        upgrade(SERVICE, url, "0007")
        async with engine.begin() as connection:
            for org in (newham, hackney, districts_only):
                await connection.execute(
                    text(
                        "INSERT INTO organizations (id, name, description, kind) "
                        "VALUES (:id, 'org', 'org', 'food')"
                    ),
                    {"id": org},
                )
            await connection.execute(
                text(
                    "INSERT INTO agreements (organization_id, lawful_bases, data_categories, "
                    "reference) VALUES "
                    "(:a, '[\"consent\", \"public_task\"]', '[\"special_category\"]', 'DSA-1'), "
                    "(:b, '[\"consent\"]', '[]', NULL), "
                    "(:c, '[\"vital_interests\"]', '[\"special_category\"]', 'DSA-E15')"
                ),
                {"a": newham, "b": hackney, "c": districts_only},
            )
            service_sql = (
                "INSERT INTO services (id, organization_id, name, description, status, needs, "
                "councils, postcode_districts, languages, interpretation, contacts, capacity, "
                "paused) VALUES (:id, :org, 's', 's', 'active', '[\"food\"]', "
                "CAST(:councils AS jsonb), CAST(:districts AS jsonb), '[\"en\"]', false, "
                "'[]', 5, false)"
            )
            for org, councils, districts in (
                (newham, '["E09000025", "E09000012"]', '["E15"]'),
                (hackney, '["E09000012"]', '["E15"]'),
                (districts_only, "[]", '["E15", "E13"]'),
                (districts_only, "[]", '["E15"]'),
            ):
                await connection.execute(
                    text(service_sql),
                    {
                        "id": str(uuid.uuid4()),
                        "org": org,
                        "councils": councils,
                        "districts": districts,
                    },
                )
            (old,) = (
                await connection.execute(
                    text("SELECT updated_at FROM agreements WHERE organization_id = :c"),
                    {"c": districts_only},
                )
            ).all()
        upgrade(SERVICE, url)
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT organization_id, council, reference, lawful_bases, "
                        "special_category, data_categories, needs, ends_on FROM agreements "
                        "ORDER BY organization_id, council"
                    )
                )
            ).mappings()
            found = {(str(r["organization_id"]), r["council"]): r for r in rows}
            (changes,) = (
                await connection.execute(
                    text("SELECT count(*) FROM agreement_changes WHERE change = 'migrated'")
                )
            ).one()
        unmatched = await select("SELECT * FROM agreements_unmatched_0008")

        # and back: every partner has its one agreement again
        config = alembic_config(SERVICE, url)
        await asyncio.to_thread(command.downgrade, config, "0007")
        restored = await select("SELECT * FROM agreements")
    finally:
        await engine.dispose()
        await drop_database(postgres_admin_url, name)
    assert set(found) == {
        (newham, "E09000025"),
        (newham, "E09000012"),
        (hackney, "E09000012"),
    }  # the partner serving postcode districts only gets no council agreement...
    kept = found[(newham, "E09000025")]
    assert (kept["reference"], kept["lawful_bases"], kept["special_category"]) == (
        "DSA-1",
        ["consent", "public_task"],
        True,
    )
    assert kept["data_categories"] == ["identity", "contact", "needs"]
    assert "food" in kept["needs"] and kept["ends_on"] is None
    assert found[(hackney, "E09000012")]["reference"] == "pre-council agreement (migrated)"
    assert found[(hackney, "E09000012")]["lawful_bases"] == ["consent"]  # bases as they were
    assert changes == 3

    # ...but its old agreement is kept as it was, with its districts, for an operator
    assert set(unmatched) == {districts_only}
    retained = unmatched[districts_only]
    assert (
        retained["reference"],
        retained["lawful_bases"],
        retained["data_categories"],
        retained["postcode_districts"],
        retained["updated_at"],
    ) == ("DSA-E15", ["vital_interests"], ["special_category"], ["E13", "E15"], old[0])

    assert set(restored) == {newham, hackney, districts_only}
    assert (
        restored[districts_only]["reference"],
        restored[districts_only]["lawful_bases"],
        restored[districts_only]["data_categories"],
    ) == ("DSA-E15", ["vital_interests"], ["special_category"])
    assert (restored[newham]["reference"], restored[newham]["data_categories"]) == (
        "DSA-1",
        ["special_category"],
    )


async def test_the_agreement_a_ready_for_routing_event_names_is_the_one_routing_requires(
    world: World,
) -> None:
    council = new_council()
    holder, other = await world.partner([council]), await world.partner([council])
    await world.agree(holder, council, reference="DSA-NAMED")
    await world.agree(other, council, reference="DSA-ANOTHER")
    event = CaseReadyForRouting(
        case_id=str(uuid.uuid4()),
        council=council,
        lawful_basis=LawfulBasis.PUBLIC_TASK,
        data_sharing_agreement="DSA-NAMED",
        packet=RoutingPacket(
            first_name="Amina",
            contact=ContactRoute(method="phone", value="07700 900123"),
            needs=[Need.FOOD],
            council=council,
            urgency="high",
            summary="Needs food.",
        ),
    )
    async with world.work() as uow:
        await on_case_ready_for_routing(event, uow)
    placed = await world.placed(event.case_id)
    assert placed["organization_id"] == holder
    assert any(
        "the case names agreement DSA-NAMED, which it does not hold" in line
        for line in placed["decision"]["why"]["excluded"]
    )
