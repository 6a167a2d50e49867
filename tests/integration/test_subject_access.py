"""Subject access through the real broker (issue #14's second "Must show"): two residents
seeded through all three services (a referral each, assessed by risk, routed by partners and
read by a partner; a note and a read by a caseworker; a signal each in risk), then an IG
officer's request for one of them. Each service answers through the broker, with its relay
and consumer running; the export holds every item seeded for that resident and nothing of
the other, and a replayed request changes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from devtools.embedded import drop_database, ensure_database, with_database
from devtools.stack import load_service
from services.partners.bootstrap import SERVICE as PARTNERS
from services.referrals.bootstrap import SERVICE as REFERRALS
from services.referrals.settings import ReferralsSettings
from services.risk.bootstrap import SERVICE as RISK
from services.risk.service_layer import signals
from services.risk.service_layer.active_ruleset import ActiveRuleset
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from services.risk.settings import RiskSettings
from shared.auth import OrganisationKind, Role, mint_token
from shared.db import session_factory
from shared.events.catalogue import CATALOGUE, GOVERNANCE_SUBJECT_ACCESS
from shared.events.envelope import CloudEvent
from shared.events.payloads import SubjectAccessRequested
from shared.messaging.outbox import Outbox
from shared.migrations import upgrade
from tests.integration.messaging_helpers import relaying, wait_for
from tests.integration.partners.conftest import PartnersApi, settings_for
from tests.integration.referrals.conftest import ReferralsApi, referral, unique_council
from tests.support.infrastructure import Broker
from tests.support.services import publisher, running_consumer, serve

pytestmark = pytest.mark.integration

REQUESTS = "/v1/subject-access-requests"
PEOPLE = {
    "amina": {
        "resident": {
            "given_name": "Amina",
            # A name, birthday and postcode of this module only: resident keys are not
            # council-scoped, and other modules' leftover events on the session broker
            # (new consumer groups read from the start) must not reach her.
            "family_name": "Okafor-Quist",
            "date_of_birth": "1979-10-23",
            "contact": {"phone": "07700 900123", "preferred": "phone"},
            "address": {"line": "12 Romford Road", "postcode": "E15 4QS"},
        },
        "circumstances_text": "Lost her job last month; rent is two months behind.",
        "needs": ["food"],
    },
    "zainab": {
        "resident": {
            "given_name": "Zainab",
            "family_name": "Begum-Farrow",
            "date_of_birth": "1993-02-11",
            "contact": {"phone": "07700 900456", "preferred": "phone"},
            "address": {"line": "3 Mare Street", "postcode": "E8 1QE"},
        },
        "circumstances_text": "Her boiler broke in November; three children at home.",
        "needs": ["food"],
    },
}


@asynccontextmanager
async def _database(admin_url: str, service: str) -> AsyncIterator[str]:
    name = f"test_{service}_{uuid.uuid4().hex[:10]}"
    await ensure_database(admin_url, name)
    url = with_database(admin_url, name)
    try:
        upgrade(load_service(service), url)
        yield url
    finally:
        await drop_database(admin_url, name)


async def _scalar(engine: AsyncEngine, query: str, **params: object) -> Any:
    async with engine.connect() as connection:
        return await connection.scalar(text(query), params)


async def _column(engine: AsyncEngine, query: str, **params: object) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.scalars(text(query), params)).all())


class World:
    def __init__(
        self,
        referrals: ReferralsApi,
        partners: PartnersApi,
        risk: tuple[httpx.AsyncClient, AsyncEngine, RiskSettings],
        broker: Broker,
    ) -> None:
        self.referrals, self.partners, self.broker = referrals, partners, broker
        self.risk_client, self.risk_engine, self.risk_settings = risk
        self.council = referrals.council
        self.seeded: dict[str, dict[str, Any]] = {}

    def ig(self) -> dict[str, str]:
        token = mint_token(
            self.referrals.settings,
            subject="dpo-person",
            organisation=self.council,
            kind=OrganisationKind.COUNCIL,
            roles=[Role.INFORMATION_GOVERNANCE],
        )
        return {"Authorization": f"Bearer {token}"}

    async def seed(self, who: str) -> dict[str, Any]:
        """A referral (risk assesses it, partners route and offer it, a partner reads the
        offer), a caseworker's note and read of the case, and a signal in risk."""
        person = PEOPLE[who]
        created = await self.referrals.refer(referral(**person))
        assert created.status_code == 201, created.text
        case_id, referral_id = created.json()["case_id"], created.json()["referral_id"]
        resident = str(
            await _scalar(
                self.referrals.engine, "SELECT resident_id FROM cases WHERE id = :c", c=case_id
            )
        )

        async def offered() -> str | None:
            found = await _scalar(
                self.partners.engine, "SELECT id FROM offers WHERE case_id = :c", c=case_id
            )
            return str(found) if found else None

        offer_id = await wait_for(offered, timeout=60, what=f"{who}'s case offered")
        read = await self.partners.client.get(
            f"/v1/inbox/offers/{offer_id}", headers=self.partners.partner("pantry")
        )
        assert read.status_code == 200, read.text
        note = f"Called {person['resident']['given_name']} about the referral."
        noted = await self.referrals.client.post(
            f"/v1/cases/{case_id}/notes", json={"text": note}, headers=self.referrals.token()
        )
        assert noted.status_code in (200, 201), noted.text
        await self.referrals.case(case_id)  # a caseworker's read: audited

        async def assessed_in_risk() -> bool:
            return bool(
                await _scalar(
                    self.risk_engine,
                    "SELECT count(*) FROM assessments WHERE case_id = :c",
                    c=case_id,
                )
            )

        await wait_for(assessed_in_risk, timeout=60, what=f"{who}'s case assessed")
        signal_id = await self._signal(person["resident"])
        profile = str(
            await _scalar(
                self.risk_engine, "SELECT profile_id FROM signals WHERE id = :s", s=signal_id
            )
        )
        self.seeded[who] = {
            "resident": resident,
            "case": case_id,
            "referral": referral_id,
            "offer": offer_id,
            "note": note,
            "signal": signal_id,
            "profile": profile,
            "given_name": person["resident"]["given_name"],
            "phone": person["resident"]["contact"]["phone"],
            "words": person["circumstances_text"],
        }
        return self.seeded[who]

    async def _signal(self, resident: dict[str, Any]) -> str:
        async with session_factory(self.risk_engine)() as session:
            uow = RiskUnitOfWork(
                session=session,
                outbox=Outbox(CATALOGUE, source=self.risk_settings.source),
                settings=self.risk_settings,
                rulesets=ActiveRuleset(),
            )
            await signals.record_signals(
                uow,
                signals.Submitter(self.council, "data-team-person", own_council_only=True),
                [
                    {
                        "type": "rent_arrears",
                        "council": self.council,
                        "source": "newham-housing",
                        "observed_on": (date.today() - timedelta(days=3)).isoformat(),
                        "resident": {
                            "given_name": resident["given_name"],
                            "family_name": resident["family_name"],
                            "date_of_birth": resident["date_of_birth"],
                            "postcode": resident["address"]["postcode"],
                        },
                        "attributes": {"weeks": 9, "amount": 1200},
                    }
                ],
            )
        found = await _column(
            self.risk_engine,
            # The signal just recorded: signals come only from feeds, so it is the newest. (Not
            # by the profile's council: a profile may have been opened for the same person by
            # another test's case events left on the shared broker.)
            "SELECT id FROM signals ORDER BY received_at DESC LIMIT 1",
        )
        return str(found[0])


@pytest.fixture(scope="module")
async def world(postgres_admin_url: str, kafka: Broker) -> AsyncIterator[World]:
    council, other = unique_council(), unique_council()
    async with AsyncExitStack() as stack:
        urls = {
            s: await stack.enter_async_context(_database(postgres_admin_url, s))
            for s in ("referrals", "partners", "risk")
        }
        referrals_settings = ReferralsSettings(
            database_url=urls["referrals"], councils=[council, other]
        )
        partners_settings = settings_for(urls["partners"])
        risk_settings = RiskSettings(database_url=urls["risk"])
        engines = {}
        for name, definition, settings in (
            ("referrals", REFERRALS, referrals_settings),
            ("partners", PARTNERS, partners_settings),
            ("risk", RISK, risk_settings),
        ):
            client, engine = await stack.enter_async_context(serve(definition, settings))
            engines[name] = (client, engine)
            await stack.enter_async_context(running_consumer(definition, engine, settings, kafka))
            await stack.enter_async_context(
                relaying(engine, kafka, settings.keystore_database_url())
            )
        referrals = ReferralsApi(*engines["referrals"], referrals_settings, council, other)
        partners = PartnersApi(*engines["partners"], partners_settings, council)
        built = World(referrals, partners, (*engines["risk"], risk_settings), kafka)
        await partners.add_partner("pantry", capacity=10)
        for who in PEOPLE:
            await built.seed(who)
        yield built


async def test_the_export_holds_everything_of_the_resident_and_nothing_of_another(
    world: World,
) -> None:
    amina, zainab = world.seeded["amina"], world.seeded["zainab"]
    opened = await world.referrals.client.post(
        REQUESTS, json={"resident_id": amina["resident"]}, headers=world.ig()
    )
    assert opened.status_code == 202, opened.text
    request_id = opened.json()["id"]

    async def complete() -> dict[str, Any] | None:
        status = await world.referrals.client.get(f"{REQUESTS}/{request_id}", headers=world.ig())
        return status.json() if status.json()["status"] == "complete" else None

    done = await wait_for(complete, timeout=90, what="every service to contribute")
    assert done["pending"] == [] and done["contributed"] == ["referrals", "partners", "risk"]

    export = await world.referrals.client.get(f"{REQUESTS}/{request_id}/export", headers=world.ig())
    assert export.status_code == 200, export.text
    body = export.json()
    by_service = {c["service"]: c for c in body["contributions"]}
    document = json.dumps(body)

    # Every item seeded for Amina, where each service holds it.
    own = by_service["referrals"]["sections"]
    assert [r["id"] for r in own["residents"]] == [amina["resident"]]
    assert [c["id"] for c in own["cases"]] == [amina["case"]]
    assert [r["id"] for r in own["referrals"]] == [amina["referral"]]
    assert [r["circumstances_text"] for r in own["referrals"]] == [amina["words"]]
    assert amina["note"] in {n["text"] for n in own["notes"]} and own["consents"]
    assert [o["id"] for o in own["offers"]] == [amina["offer"]]
    assert {"case_detail", "subject_access_request"} <= {
        r["operation"] for r in by_service["referrals"]["reads"]
    }
    held = by_service["partners"]["sections"]
    assert [o["id"] for o in held["offers"]] == [amina["offer"]]
    assert held["offers"][0]["partner_name"] == "pantry"
    assert {p["packet"]["first_name"] for p in held["packets"] if p["packet"]} == {"Amina"}
    assert "get_offer" in {r["operation"] for r in by_service["partners"]["reads"]}
    risk = by_service["risk"]["sections"]
    assert [p["id"] for p in risk["profiles"]] == [amina["profile"]]
    assert amina["signal"] in {s["id"] for s in risk["signals"]}
    assert amina["case"] in {a["case_id"] for a in risk["assessments"]}
    assert [c["case_id"] for c in risk["cases"]] == [amina["case"]]

    # Nothing of Zainab's, in any service's part.
    for item in ("resident", "case", "referral", "offer", "signal", "profile", "note"):
        assert zainab[item] not in document, item
    for words in ("given_name", "phone", "words"):
        assert zainab[words] not in document, words

    # A replayed request (the same event again, and the same request as a new event)
    # changes nothing.
    (row,) = await _column(
        world.referrals.engine,
        "SELECT envelope FROM outbox WHERE event_type = :t AND message_key = :s",
        t="uk.upstream.referrals.subject_access.requested.v1",
        s=request_id,
    )
    original = CloudEvent.model_validate(row)
    async with publisher(world.broker.bootstrap_servers) as sender:
        await sender.resend(original)
        again = await sender.send(
            SubjectAccessRequested.model_validate(original.data),
            subject=request_id,
            source="/upstream/referrals",
        )

    async def answered_again() -> bool:
        counts = [
            await _scalar(
                engine,
                "SELECT count(*) FROM outbox WHERE message_key = :s AND event_type LIKE :t",
                s=request_id,
                t="%.subject_access.contributed.v1",
            )
            for engine in (world.partners.engine, world.risk_engine)
        ]
        stored = await _scalar(
            world.referrals.engine,
            "SELECT count(*) FROM inbox WHERE event_type LIKE :t",
            t="%.subject_access.contributed.v1",
        )
        return counts == [2, 2] and stored == 4

    await wait_for(answered_again, timeout=60, what="the replay answered and applied")
    assert again.id != original.id
    stored = await _column(
        world.referrals.engine,
        "SELECT service FROM subject_access_contributions WHERE request_id = :r ORDER BY service",
        r=request_id,
    )
    assert stored == ["partners", "referrals", "risk"]
    replayed = await world.referrals.client.get(
        f"{REQUESTS}/{request_id}/export", headers=world.ig()
    )
    assert replayed.json()["contributions"] == body["contributions"]


async def test_the_subject_access_topic_keeps_its_records_seven_days(world: World) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=world.broker.bootstrap_servers)
    await admin.start()
    try:
        (described,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, GOVERNANCE_SUBJECT_ACCESS.name)]
        )
    finally:
        await admin.close()
    ((_, _, _, _, entries),) = described.resources
    configs = {entry[0]: entry[1] for entry in entries}
    assert configs["retention.ms"] == str(7 * 24 * 60 * 60 * 1000)
