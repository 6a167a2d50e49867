"""The partners use cases called directly on a real migrated database, no broker and no
HTTP: one or more per aggregate (directory, placement, offers, webhooks), looking at the
rows they change, the events they put in the outbox, and what they refuse."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.partners.adapters import offers as offers_store
from services.partners.adapters.webhook_sender import Answer, WebhookSender
from services.partners.domain.offers import OfferTransitionRefused
from services.partners.domain.webhooks import SIGNATURE_HEADER, DeliveryStatus, verify
from services.partners.service_layer import directory, offers, placement, webhooks
from services.partners.service_layer.agreements import Manager
from services.partners.service_layer.directory import (
    AgreementTerms,
    Editor,
    NewOrganization,
    ServiceDetails,
)
from services.partners.service_layer.offers import Decline, RecordOutcome
from services.partners.service_layer.placement import CaseToRoute
from services.partners.service_layer.webhooks import Delivery
from services.partners.settings import PartnersSettings
from shared.db import async_url
from shared.errors import Forbidden, Invalid, NotFound
from shared.events.envelope import utc_now
from shared.vocabulary import DeclineReason, LawfulBasis, OfferStatus, Outcome, PartnerKind
from tests.conftest import MakeDatabase
from tests.integration.partners.conftest import new_council, settings_for, work_on
from tests.support.plans import rows_read

pytestmark = pytest.mark.integration

OPERATOR = Editor("operator", is_operator=True)
AGREEMENTS_BY = Manager("operator-person", "operator", is_operator=True)


@dataclass
class Directory:
    """A database of the test's own, and the directory built with the use cases."""

    engine: AsyncEngine
    settings: PartnersSettings
    council: str
    organizations: dict[str, str] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)

    def work(self, **extras: Any) -> Any:
        return work_on(self.engine, self.settings, **extras)

    async def add_partner(
        self, name: str, *, needs: tuple[str, ...] = ("food",), capacity: int = 5
    ) -> str:
        async with self.work() as uow:
            organization_id = await directory.add_organization(
                uow,
                NewOrganization(
                    name=name,
                    description=f"{name}, a local charity",
                    kind=PartnerKind.FOOD,
                    agreements=[
                        AgreementTerms(
                            council=self.council,
                            reference=f"DSA {name}",
                            needs=list(needs),
                            lawful_bases=[LawfulBasis.CONSENT],
                            starts_on=date(2020, 1, 1),
                        )
                    ],
                ),
                by=AGREEMENTS_BY,
            )
        async with self.work() as uow:
            service_id = await directory.add_service(
                uow, OPERATOR, self.details(organization_id, needs=needs, capacity=capacity)
            )
        self.organizations[name], self.services[name] = organization_id, service_id
        return service_id

    def details(self, organization_id: str, **changes: Any) -> ServiceDetails:
        return ServiceDetails.model_validate(
            {
                "organization_id": organization_id,
                "name": "a service",
                "description": "what it offers",
                "needs": ["food"],
                "councils": [self.council],
                "capacity": 5,
                **changes,
            }
        )

    def case(self, needs: tuple[str, ...] = ("food",), urgency: str = "high") -> CaseToRoute:
        return CaseToRoute(
            case_id=str(uuid.uuid4()),
            council=self.council,
            packet={
                "first_name": "Amina",
                "needs": list(needs),
                "council": self.council,
                "urgency": urgency,
            },
            lawful_basis=LawfulBasis.CONSENT,
            consent_kinds=[PartnerKind.ANY_VOLUNTARY],
            ready_at=utc_now(),
        )

    async def route(self, case: CaseToRoute) -> None:
        async with self.work() as uow:
            await placement.route_case(uow, case)

    async def rows(self, sql: str, **params: object) -> list[Mapping[str, Any]]:
        async with self.engine.connect() as connection:
            return list((await connection.execute(text(sql), params)).mappings().all())

    async def events(self, case_id: str) -> list[tuple[str, dict[str, Any]]]:
        """(type, data) of the case's outbox events, in order."""
        rows = await self.rows(
            "SELECT event_type, envelope FROM outbox WHERE message_key = :c ORDER BY id", c=case_id
        )
        return [(row["event_type"], row["envelope"]["data"]) for row in rows]


@pytest.fixture
async def home(service_database: MakeDatabase) -> AsyncIterator[Directory]:
    settings = settings_for(await service_database("partners"))
    engine = create_async_engine(async_url(settings.database_url.get_secret_value()))
    try:
        yield Directory(engine, settings, new_council())
    finally:
        await engine.dispose()


def types(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [t.removeprefix("uk.upstream.partners.").removesuffix(".v1") for t, _ in events]


# -- directory -------------------------------------------------------------------------------


async def test_directory_use_cases_save_refuse_and_pause(home: Directory) -> None:
    service_id = await home.add_partner("stratford-food-bank", capacity=7)
    organization_id = home.organizations["stratford-food-bank"]
    partner = Editor(organization_id, is_operator=False)
    stranger = Editor(str(uuid.uuid4()), is_operator=False)

    async with home.work() as uow:
        with pytest.raises(Forbidden):
            await directory.add_service(uow, stranger, home.details(organization_id))
        with pytest.raises(Invalid) as no_area:
            await directory.add_service(uow, partner, home.details(organization_id, councils=[]))
        assert [field for field, _ in no_area.value.errors] == ["councils"]
        with pytest.raises(Invalid, match="no such organization"):
            await directory.add_service(uow, OPERATOR, home.details(str(uuid.uuid4())))
        with pytest.raises(NotFound):
            await directory.pause_service(uow, stranger, service_id, "holiday")

    async with home.work() as uow:
        await directory.pause_service(uow, partner, service_id, "volunteers on holiday")
    async with home.work() as uow:
        load = await directory.service_load(uow, partner, service_id)
    assert (load.paused, load.capacity, load.open_offers_and_referrals) == (True, 7, 0)
    (row,) = await home.rows("SELECT pause_reason FROM services WHERE id = :s", s=service_id)
    assert row["pause_reason"] == "volunteers on holiday"

    async with home.work() as uow:
        exported = await directory.export_directory(uow)
    async with home.work() as uow:
        report = await directory.import_directory(uow, exported)
    assert (report.organizations, report.services, report.skipped) == (1, 1, [])
    async with home.work() as uow:
        listed = await directory.public_services(uow, number=1, per_page=10)
    assert listed["total_items"] == 1


# -- placement -------------------------------------------------------------------------------


async def test_routing_a_case_offers_each_need_and_says_so(home: Directory) -> None:
    await home.add_partner("stratford-food-bank")
    case = home.case(needs=("food", "housing"), urgency="crisis")
    await home.route(case)

    (offer,) = await home.rows("SELECT * FROM offers WHERE case_id = :c", c=case.case_id)
    assert offer["status"] == "offered" and offer["attempt"] == 1
    assert offer["respond_by"] - case.ready_at == timedelta(hours=4)  # crisis: four hours
    requests = await home.rows(
        "SELECT need, status, attempts, unroutable_reason FROM route_requests "
        "WHERE case_id = :c ORDER BY need",
        c=case.case_id,
    )
    assert [(r["need"], r["status"], r["attempts"]) for r in requests] == [
        ("food", "placed", 1),
        ("housing", "unroutable", 0),
    ]
    assert requests[1]["unroutable_reason"] == "no service meets the need for housing"
    events = await home.events(case.case_id)
    assert types(events) == ["offer.made", "case.unroutable"]
    assert events[0][1]["offer_id"] == str(offer["id"])
    assert events[0][1]["partner_name"] == "stratford-food-bank"


async def test_stopping_a_case_withdraws_its_offers_and_deletes_the_packet(
    home: Directory,
) -> None:
    await home.add_partner("stratford-food-bank")
    case = home.case()
    await home.route(case)
    async with home.work() as uow:
        await placement.stop_case(uow, case.case_id, "the resident withdrew consent", at=utc_now())

    (offer,) = await home.rows("SELECT status, note FROM offers WHERE case_id = :c", c=case.case_id)
    assert (offer["status"], offer["note"]) == ("withdrawn", "the resident withdrew consent")
    (request,) = await home.rows(
        "SELECT status, packet FROM route_requests WHERE case_id = :c", c=case.case_id
    )
    assert (request["status"], request["packet"]) == ("closed", None)
    events = await home.events(case.case_id)
    assert types(events) == ["offer.made", "offer.withdrawn"]
    assert events[1][1]["reason"] == "the resident withdrew consent"


async def test_an_offer_past_its_deadline_expires_and_is_handed_on(home: Directory) -> None:
    await home.add_partner("stratford-food-bank")
    await home.add_partner("forest-gate-pantry", needs=("food", "benefits"))
    case = home.case()
    await home.route(case)
    async with home.engine.begin() as connection:
        await connection.execute(
            text("UPDATE offers SET respond_by = now() - interval '1 minute' WHERE case_id = :c"),
            {"c": case.case_id},
        )
    async with home.work() as uow:
        assert await placement.expire_due_offers(uow) == 1
    async with home.work() as uow:
        assert await placement.expire_due_offers(uow) == 0
    offers_now = await home.rows(
        "SELECT organization_id, status FROM offers WHERE case_id = :c ORDER BY attempt",
        c=case.case_id,
    )
    assert [(o["organization_id"], o["status"]) for o in offers_now] == [
        (uuid.UUID(home.organizations["stratford-food-bank"]), "expired"),
        (uuid.UUID(home.organizations["forest-gate-pantry"]), "offered"),
    ]
    assert types(await home.events(case.case_id)) == ["offer.made", "offer.expired", "offer.made"]


# -- offers ----------------------------------------------------------------------------------


async def test_the_inbox_answers_an_offer_and_refuses_what_its_status_does_not_allow(
    home: Directory,
) -> None:
    await home.add_partner("stratford-food-bank")
    case = home.case()
    await home.route(case)
    partner = home.organizations["stratford-food-bank"]
    async with home.work() as uow:
        (offer,) = await offers.list_offers(uow, partner)
    assert offer.status is OfferStatus.OFFERED and offer.packet is not None

    async with home.work() as uow:
        with pytest.raises(NotFound):
            await offers.get_offer(uow, str(uuid.uuid4()), offer.id)  # not that partner's
        with pytest.raises(OfferTransitionRefused) as refused:
            await offers.record_progress(uow, partner, offer.id, "too soon")
    assert refused.value.current is OfferStatus.OFFERED
    assert refused.value.allowed == ["accepted", "declined", "expired", "withdrawn"]

    async with home.work() as uow:
        accepted = await offers.accept_offer(uow, partner, offer.id)
    assert accepted.status is OfferStatus.ACCEPTED
    async with home.work() as uow:
        with pytest.raises(OfferTransitionRefused):
            await offers.accept_offer(uow, partner, offer.id)
    async with home.work() as uow:
        await offers.record_progress(uow, partner, offer.id, "first call made")
    async with home.work() as uow:
        done = await offers.record_outcome(
            uow, partner, offer.id, RecordOutcome(Outcome.SUPPORT_PROVIDED, "parcel delivered")
        )
    assert (done.status, done.outcome, done.packet) == (
        OfferStatus.OUTCOME_RECORDED,
        Outcome.SUPPORT_PROVIDED,
        None,  # a finished offer no longer shows the packet
    )
    (row,) = await home.rows("SELECT status, note FROM offers WHERE id = :o", o=offer.id)
    assert (row["status"], row["note"]) == ("outcome_recorded", "parcel delivered")
    events = await home.events(case.case_id)
    assert types(events) == [
        "offer.made",
        "offer.accepted",
        "offer.progress_recorded",
        "offer.outcome_recorded",
    ]
    assert events[-1][1]["outcome"] == "support_provided"


async def test_a_declined_offer_is_handed_on_and_gone_from_the_inbox(home: Directory) -> None:
    await home.add_partner("stratford-food-bank")
    await home.add_partner("forest-gate-pantry", needs=("food", "benefits"))
    case = home.case()
    await home.route(case)
    first = home.organizations["stratford-food-bank"]
    async with home.work() as uow:
        (offer,) = await offers.list_offers(uow, first)
    async with home.work() as uow:
        await offers.decline_offer(
            uow, first, offer.id, Decline(DeclineReason.NO_CAPACITY, "shelves empty")
        )
    async with home.work() as uow:
        assert await offers.list_offers(uow, first) == []
        with pytest.raises(NotFound):
            await offers.accept_offer(uow, first, offer.id)
    async with home.work() as uow:
        (handed_on,) = await offers.list_offers(uow, home.organizations["forest-gate-pantry"])
    assert handed_on.case_id == case.case_id and handed_on.status is OfferStatus.OFFERED
    events = await home.events(case.case_id)
    assert types(events) == ["offer.made", "offer.declined", "offer.made"]
    assert events[1][1]["reason"] == "no_capacity"


async def test_the_inbox_lists_offers_in_hand_and_those_closed_lately_from_their_indexes(
    home: Directory,
) -> None:
    """Closed offers (an outcome recorded) are listed ``partner_inbox_closed_days`` back, read from
    their index: years of them are neither listed on every look nor read to be left out.
    An older one is still shown by its id."""
    await home.add_partner("stratford-food-bank", capacity=5)
    partner = home.organizations["stratford-food-bank"]
    in_hand, closed_lately, closed_long_ago = home.case(), home.case(), home.case()
    for case in (in_hand, closed_lately, closed_long_ago):
        await home.route(case)
    days = home.settings.partner_inbox_closed_days
    async with home.engine.begin() as connection:
        for case, ago in ((closed_lately, days - 1), (closed_long_ago, days + 1)):
            await connection.execute(
                text(
                    "UPDATE offers SET status = 'outcome_recorded', outcome = 'support_provided', "
                    "updated_at = now() - make_interval(days => :ago) WHERE case_id = :c"
                ),
                {"c": case.case_id, "ago": ago},
            )
        # Years of a busy partner's closed offers (copies of the old one, new ids).
        await connection.execute(
            text(
                "INSERT INTO offers SELECT (jsonb_populate_record(o, "
                "jsonb_build_object('id', gen_random_uuid()))).* "
                "FROM offers o, generate_series(1, 3000) WHERE o.case_id = :c"
            ),
            {"c": closed_long_ago.case_id},
        )
        # And 200 other partners' (the planner knows a partner's offers are few).
        await connection.execute(
            text(
                "INSERT INTO offers SELECT (jsonb_populate_record(o, jsonb_build_object("
                "'id', gen_random_uuid(), 'organization_id', md5((n % 200)::text)::uuid))).* "
                "FROM offers o, generate_series(1, 20000) AS n WHERE o.case_id = :c LIMIT 20000"
            ),
            {"c": in_hand.case_id},
        )
        await connection.execute(text("ANALYZE offers"))
    async with home.work() as uow:
        listed = await offers.list_offers(uow, partner)
        assert sorted(o.case_id for o in listed) == sorted([in_hand.case_id, closed_lately.case_id])
        (old,) = await home.rows(
            "SELECT id FROM offers WHERE case_id = :c LIMIT 1", c=closed_long_ago.case_id
        )
        shown = await offers.get_offer(uow, partner, str(old["id"]))
        assert shown.status is OfferStatus.OUTCOME_RECORDED

    # As the service runs it: a prepared statement, planned generically (as PostgreSQL
    # does from its sixth run), so a bound status could not match the partial index.
    compiled = offers_store.inbox_query(partner, utc_now() - timedelta(days=days)).compile(
        dialect=postgresql_asyncpg.dialect(), compile_kwargs={"render_postcompile": True}
    )
    values = [compiled.params[name] for name in compiled.positiontup or ()]
    literals = ", ".join(f"'{v.isoformat() if isinstance(v, datetime) else v}'" for v in values)
    async with home.engine.connect() as connection:
        await connection.execute(text("SET plan_cache_mode = force_generic_plan"))
        await connection.exec_driver_sql(f"PREPARE inbox_of_partner AS {compiled}")
        explained = await connection.scalar(
            text(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE inbox_of_partner({literals})")
        )
        await connection.exec_driver_sql("DEALLOCATE inbox_of_partner")
        await connection.execute(text("RESET plan_cache_mode"))
    (plan,) = json.loads(explained) if isinstance(explained, str) else explained
    assert rows_read(plan["Plan"]) < 100  # the 3,001 closed long ago are not read


# -- webhooks --------------------------------------------------------------------------------


@dataclass
class ScriptedSender:
    """A partner endpoint that answers from a script, recording what it was sent."""

    answers: list[Answer]
    sent: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)
    connected_to: list[str] = field(default_factory=list)

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, address: str
    ) -> Answer:
        self.sent.append((url, body, dict(headers)))
        self.connected_to.append(address)
        return self.answers.pop(0) if self.answers else Answer(status_code=200)

    @asynccontextmanager
    async def open(self, timeout_seconds: float) -> AsyncIterator[WebhookSender]:
        yield self


@dataclass
class Resolver:
    """DNS as the test says it is: each name's addresses, changed at will (no real DNS)."""

    names: dict[str, list[str]] = field(default_factory=dict)
    asked: list[tuple[str, int]] = field(default_factory=list)

    async def resolve(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        if host not in self.names:
            raise OSError(f"[Errno -2] Name or service not known: {host!r}")
        return self.names[host]


PUBLIC = "93.184.215.14"


async def test_webhooks_are_queued_with_the_change_signed_and_retried(home: Directory) -> None:
    await home.add_partner("stratford-food-bank")
    partner = home.organizations["stratford-food-bank"]
    async with home.work() as uow:
        with pytest.raises(NotFound, match="no webhook registered"):
            await webhooks.rotate_webhook_secret(uow, partner)
    strict = PartnersSettings(database_url=home.settings.database_url)  # https only
    async with work_on(home.engine, strict) as uow:
        with pytest.raises(Invalid, match="must be https"):
            await webhooks.register_webhook(uow, partner, "http://partner.test/")
    async with home.work() as uow:
        registered = await webhooks.register_webhook(uow, partner, "https://partner.test/upstream")
    case = home.case()
    await home.route(case)  # queues offer.made

    dns = Resolver({"partner.test": [PUBLIC]})
    sender = ScriptedSender([Answer(status_code=500), Answer(error="ConnectTimeout: slow")])
    async with home.work(open_webhook_sender=sender.open, resolve_host=dns.resolve) as uow:
        assert await webhooks.deliver_due_webhooks(uow) == 1
    async with home.work() as uow:
        (first,) = await webhooks.delivery_log(uow, partner)
    assert (first.status, first.attempts, first.last_error) == (
        DeliveryStatus.PENDING,
        1,
        "answered 500",
    )
    async with home.work(open_webhook_sender=sender.open, resolve_host=dns.resolve) as uow:
        assert await webhooks.deliver_due_webhooks(uow) == 0  # backing off
    async with home.engine.begin() as connection:
        await connection.execute(text("UPDATE deliveries SET next_attempt_at = now()"))
    for _ in range(2):
        async with home.work(open_webhook_sender=sender.open, resolve_host=dns.resolve) as uow:
            assert await webhooks.deliver_due_webhooks(uow) == 1
        async with home.engine.begin() as connection:
            await connection.execute(text("UPDATE deliveries SET next_attempt_at = now()"))
    async with home.work() as uow:
        (delivered,) = await webhooks.delivery_log(uow, partner)
    assert (delivered.status, delivered.attempts, delivered.last_error) == (
        DeliveryStatus.DELIVERED,
        3,
        None,
    )
    url, body, headers = sender.sent[-1]
    assert url == "https://partner.test/upstream" and headers["Upstream-Event"] == "offer.made"
    assert sender.connected_to == [PUBLIC] * 3 and dns.asked[-1] == ("partner.test", 443)
    now = int(utc_now().timestamp())
    assert verify(registered.secret, headers[SIGNATURE_HEADER], body, now=now)
    assert json.loads(body)["packet"]["first_name"] == "Amina"

    async with home.work() as uow:
        rotated = await webhooks.rotate_webhook_secret(uow, partner)
    assert rotated.previous_secret_valid_until is not None
    async with home.work() as uow:
        await placement.stop_case(uow, case.case_id, "the council closed the case", at=utc_now())
    async with home.work(open_webhook_sender=sender.open, resolve_host=dns.resolve) as uow:
        assert await webhooks.deliver_due_webhooks(uow) == 1
    _, body, headers = sender.sent[-1]
    assert json.loads(body)["event"] == "offer.withdrawn"
    for secret in (registered.secret, rotated.secret):  # both sign during the overlap
        assert verify(secret, headers[SIGNATURE_HEADER], body, now=now)


async def test_registration_refuses_a_webhook_that_could_reach_inward(home: Directory) -> None:
    await home.add_partner("stratford-food-bank")
    partner = home.organizations["stratford-food-bank"]
    strict = PartnersSettings(database_url=home.settings.database_url)
    refused = {
        "https://127.0.0.1/hook": "127.0.0.1 is a loopback address",
        "https://2130706433/hook": "127.0.0.1 is a loopback address",
        "https://0x7f.1/hook": "127.0.0.1 is a loopback address",
        "https://localhost:8443/hook": "localhost is the loopback name",
        "https://[::1]/hook": "::1 is a loopback address",
        "https://[::ffff:10.0.0.1]/hook": "::ffff:a00:1 is a private address",
        "https://0.0.0.0/hook": "0.0.0.0 is an unspecified address",
        "https://169.254.169.254/latest": "169.254.169.254 is a link-local address",
        "https://192.168.1.20:6379/": "192.168.1.20 is a private address",
        "https://100.64.0.1/": "100.64.0.1 is a shared (carrier-grade NAT) address",
        "https://224.0.0.1/": "224.0.0.1 is a multicast address",
    }
    for url, reason in refused.items():
        async with work_on(home.engine, strict) as uow:
            with pytest.raises(Invalid) as caught:
                await webhooks.register_webhook(uow, partner, url)
        assert caught.value.errors == [("url", f"must be a public address: {reason}")], url
    # The development setting lets a receiver on this machine in, and nothing else inward.
    async with home.work() as uow:
        await webhooks.register_webhook(uow, partner, "http://127.0.0.1:9/hook")
    async with home.work() as uow:
        with pytest.raises(Invalid, match=r"10\.0\.0\.5 is a private address"):
            await webhooks.register_webhook(uow, partner, "http://10.0.0.5/hook")
    # An operator names an on-premises partner's private host.
    on_premises = PartnersSettings(
        database_url=home.settings.database_url, webhook_allowed_private_hosts=["10.0.0.5"]
    )
    async with work_on(home.engine, on_premises) as uow:
        await webhooks.register_webhook(uow, partner, "https://10.0.0.5/hook")
    assert await home.rows("SELECT url FROM webhooks") == [{"url": "https://10.0.0.5/hook"}]


async def test_delivery_refuses_a_name_that_resolves_inward_without_connecting(
    home: Directory,
) -> None:
    """Registered while it resolved to a public address; by delivery it resolves inward.
    The delivery fails at once with the reason, nothing is sent and it is not retried."""
    await home.add_partner("stratford-food-bank")
    partner = home.organizations["stratford-food-bank"]
    strict = PartnersSettings(database_url=home.settings.database_url)
    async with work_on(home.engine, strict) as uow:
        await webhooks.register_webhook(uow, partner, "https://rebind.partner.test/hook")
    await home.route(home.case())  # queues offer.made

    dns = Resolver({"rebind.partner.test": [PUBLIC, "10.0.0.5"]})
    sender = ScriptedSender([])
    async with work_on(
        home.engine, strict, open_webhook_sender=sender.open, resolve_host=dns.resolve
    ) as uow:
        assert await webhooks.deliver_due_webhooks(uow) == 1
    assert sender.sent == []  # no connection made
    async with home.work() as uow:
        (refused,) = await webhooks.delivery_log(uow, partner)
    assert (refused.status, refused.attempts, refused.last_status_code) == (
        DeliveryStatus.FAILED,
        1,
        None,
    )
    assert refused.last_error == (
        "refused, not sent: must be a public address: "
        "rebind.partner.test resolves to 10.0.0.5, a private address"
    )
    async with home.engine.begin() as connection:
        await connection.execute(text("UPDATE deliveries SET next_attempt_at = now()"))
    dns.names["rebind.partner.test"] = ["::ffff:127.0.0.1"]
    async with work_on(
        home.engine, strict, open_webhook_sender=sender.open, resolve_host=dns.resolve
    ) as uow:
        assert await webhooks.deliver_due_webhooks(uow) == 0  # not retried
    assert sender.sent == [] and len(dns.asked) == 1


async def test_delivery_follows_the_rules_in_force_and_retries_a_name_that_does_not_resolve(
    home: Directory,
) -> None:
    await home.add_partner("stratford-food-bank")
    partner = home.organizations["stratford-food-bank"]
    on_premises = PartnersSettings(
        database_url=home.settings.database_url,
        webhook_allowed_private_hosts=["hooks.partner.internal"],
    )
    async with work_on(home.engine, on_premises) as uow:
        await webhooks.register_webhook(uow, partner, "https://hooks.partner.internal:8443/h")
    await home.route(home.case())

    dns = Resolver()
    sender = ScriptedSender([])

    async def deliver(settings: PartnersSettings) -> Delivery:
        async with work_on(
            home.engine, settings, open_webhook_sender=sender.open, resolve_host=dns.resolve
        ) as uow:
            assert await webhooks.deliver_due_webhooks(uow) == 1
        async with home.work() as uow:
            (delivery,) = await webhooks.delivery_log(uow, partner)
        async with home.engine.begin() as connection:
            await connection.execute(text("UPDATE deliveries SET next_attempt_at = now()"))
        return delivery

    # DNS down: retried with backoff like any failure to reach the partner.
    unresolved = await deliver(on_premises)
    assert (unresolved.status, unresolved.attempts) == (DeliveryStatus.PENDING, 1)
    assert unresolved.last_error is not None
    assert unresolved.last_error.startswith("could not resolve hooks.partner.internal")
    assert sender.sent == []
    # A named private host: sent to the private address it resolves to.
    dns.names["hooks.partner.internal"] = ["10.20.30.40"]
    delivered = await deliver(on_premises)
    assert (delivered.status, delivered.attempts) == (DeliveryStatus.DELIVERED, 2)
    assert sender.connected_to == ["10.20.30.40"]
    assert dns.asked[-1] == ("hooks.partner.internal", 8443)
    # Once the operator no longer names it, the next delivery is refused.
    await home.route(home.case())  # another offer.made
    strict = PartnersSettings(database_url=home.settings.database_url)
    async with work_on(
        home.engine, strict, open_webhook_sender=sender.open, resolve_host=dns.resolve
    ) as uow:
        assert await webhooks.deliver_due_webhooks(uow) == 1
    async with home.work() as uow:
        latest = (await webhooks.delivery_log(uow, partner))[0]
    assert latest.status is DeliveryStatus.FAILED and latest.last_error is not None
    assert latest.last_error.endswith(
        "hooks.partner.internal resolves to 10.20.30.40, a private address"
    )
    assert len(sender.sent) == 1


async def test_a_partner_not_in_the_directory_cannot_register_a_webhook(home: Directory) -> None:
    for organization in (str(uuid.uuid4()), "not-an-organization-id"):
        async with home.work() as uow:
            with pytest.raises(Forbidden, match="not in the partner directory"):
                await webhooks.register_webhook(uow, organization, "https://partner.test/hook")
    assert await home.rows("SELECT * FROM webhooks") == []
