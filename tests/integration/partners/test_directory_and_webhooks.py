"""The public Open Referral UK endpoints against the ORUK 3.0 schemas, directory import and
export, and signed webhooks that are retried and logged."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema
import pytest

from services.partners.domain.webhooks import SIGNATURE_HEADER, verify
from services.partners.service_layer.placement import CaseToRoute, route_case
from services.partners.timers import deliver_webhooks, expire_offers
from shared.auth import OrganisationKind, Role
from shared.events.envelope import utc_now
from shared.vocabulary import LawfulBasis, PartnerKind
from tests.conftest import REPO
from tests.integration.partners.conftest import PartnersApi, work_on
from tests.support.infrastructure import standards_dir

pytestmark = pytest.mark.integration

ORUK = standards_dir() / "oruk"
needs_standards = pytest.mark.skipif(not ORUK.is_dir(), reason=f"{ORUK} is absent")


async def seeded(partners: PartnersApi) -> None:
    await partners.add_partner(
        "stratford-food-bank",
        capacity=10,
        url="https://stratfordfoodbank.example.org",
        minimum_age=16,
        contacts=[{"name": "Grace", "title": "Coordinator"}],
    )
    await partners.add_partner(
        "hackney-advice",
        kind="advice",
        needs=("money_and_debt", "benefits"),
        languages=("en", "tr"),
        interpretation=True,
        postcode_districts=["E8"],
    )


def schema(name: str) -> dict[str, Any]:
    return json.loads(
        (ORUK / "uk-profile-3.0" / "schema" / "compiled" / f"{name}.json").read_text()
    )


def page_schema(item: dict[str, Any]) -> dict[str, Any]:
    openapi = json.loads(
        (ORUK / "oruk-website-specifications" / "3.0" / "openapi.json").read_text()
    )
    page = openapi["components"]["schemas"]["Page"]
    return {
        "allOf": [
            page,
            {
                "type": "object",
                "required": ["contents"],
                "properties": {"contents": {"type": "array", "items": item}},
            },
        ]
    }


def valid(document: Any, against: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(against, format_checker=jsonschema.FormatChecker()).validate(
        document
    )


@needs_standards
async def test_the_public_oruk_endpoints_validate_against_the_oruk_schemas(
    partners: PartnersApi,
) -> None:
    await seeded(partners)
    details = await partners.client.get("/")
    assert details.headers["access-control-allow-origin"] == "*"
    assert details.json()["version"] == "3.0"

    listed = await partners.client.get("/services?per_page=1")
    assert listed.status_code == 200 and listed.headers["access-control-allow-origin"] == "*"
    valid(listed.json(), page_schema(schema("service_list")))
    assert (listed.json()["total_items"], listed.json()["total_pages"]) == (2, 2)
    assert listed.json()["first_page"] and not listed.json()["last_page"]

    for service_id in partners.services.values():
        full = (await partners.client.get(f"/services/{service_id}")).json()
        valid(full, schema("service"))
        assert None not in full.values() and [] not in full.values()  # empty fields omitted
    advice = (await partners.client.get(f"/services/{partners.services['hackney-advice']}")).json()
    assert {a["extent"] for a in advice["service_areas"]} == {partners.council, "E8"}
    assert {a["taxonomy_term"]["name"] for a in advice["attributes"]} == {
        "money_and_debt",
        "benefits",
    }

    taxonomies = (await partners.client.get("/taxonomies")).json()
    terms = (await partners.client.get("/taxonomy_terms")).json()
    taxonomy_schema = json.loads((ORUK / "uk-profile-3.0" / "schema" / "taxonomy.json").read_text())
    term_schema = json.loads(
        (ORUK / "uk-profile-3.0" / "schema" / "taxonomy_term.json").read_text()
    )
    valid(taxonomies, page_schema(taxonomy_schema))
    valid(terms, page_schema(term_schema))
    assert terms["total_items"] == 14
    term = next(t for t in terms["contents"] if t["name"] == "benefits")
    by_term = (await partners.client.get(f"/services?taxonomy_term_id={term['id']}")).json()
    assert [s["name"] for s in by_term["contents"]] == ["hackney-advice service"]
    assert (await partners.client.get("/services/not-a-uuid")).status_code == 404
    # The words searched for as written: a % or _ in them is no wildcard.
    for wildcard in ("%", "_", "\\"):
        found = (await partners.client.get("/services", params={"search": wildcard})).json()
        assert found["total_items"] == 0, wildcard
    assert (await partners.client.get("/services?search=advice")).json()["total_items"] == 1


async def test_export_and_import_round_trip_in_oruk_shape(partners: PartnersApi) -> None:
    await seeded(partners)
    exported = await partners.client.get("/v1/directory/export", headers=partners.operator())
    assert exported.status_code == 200 and len(exported.json()) == 2
    again = await partners.client.post(
        "/v1/directory/import", json=exported.json(), headers=partners.operator()
    )
    assert again.json() == {
        "organizations": 2,
        "services": 2,
        "skipped": [],
        "ignored": [],
    }
    assert (await partners.client.get("/services")).json()["total_items"] == 2  # no duplicates
    foreign = {
        "id": "ac148810-d857-441c-9679-408f346de14b",
        "name": "Community Counselling",
        "status": "active",
    }
    report = await partners.client.post(
        "/v1/directory/import", json={"contents": [foreign]}, headers=partners.operator()
    )
    assert report.json()["skipped"] == [
        "ac148810-d857-441c-9679-408f346de14b: not an ORUK service with an organization"
    ]


async def test_an_import_takes_or_skips_each_document_whatever_it_holds(
    partners: PartnersApi,
) -> None:
    """An ORUK file is someone else's: each document is taken or skipped saying why, the
    body as a whole refused naming what is wrong; never a 500, nothing half written."""
    await seeded(partners)
    exported = await partners.client.get("/v1/directory/export", headers=partners.operator())
    good = exported.json()[0]

    def altered(**changes: object) -> dict[str, object]:
        return {**good, **changes}

    hostile: list[object] = [
        1,
        "a service",
        altered(id=5),
        altered(organization="x"),
        altered(attributes=["food"]),
        altered(service_areas=["E09000025"]),
        altered(name="n" * 300),
        altered(status="open"),
        altered(minimum_age=500),
        altered(organization={**good["organization"], "name": 5}),
        altered(organization={**good["organization"], "name": ""}),
    ]
    report = await partners.client.post(
        "/v1/directory/import", json={"contents": hostile}, headers=partners.operator()
    )
    assert report.status_code == 200, report.text
    assert (report.json()["services"], len(report.json()["skipped"])) == (0, len(hostile))
    skipped = report.json()["skipped"]
    assert skipped[:3] == [
        "#1: not an ORUK service (not an object)",
        "#2: not an ORUK service (not an object)",
        "#3: not an ORUK service with an organization",  # its id, 5, is no id
    ]
    assert any(
        reason.endswith("name: String should have at most 200 characters") for reason in skipped
    )
    assert any("minimum_age: Input should be less than or equal to 120" in r for r in skipped)
    for body, field in (({"contents": "abc"}, "contents"), ({"contents": 5}, "contents")):
        refused = await partners.client.post(
            "/v1/directory/import", json=body, headers=partners.operator()
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == field
    # An organisation only named, not described, must be one the directory holds; a way to
    # reach it that cannot be read is left out, said so, and the service still goes in.
    named_only = {k: v for k, v in good.items() if k != "organization"}
    named_only["organization_id"] = good["organization"]["id"]
    unknown = {**named_only, "organization_id": "0b7c3a52-6f0e-4c2b-9a51-2d3e4f5a6b7c"}
    odd_website = altered(organization={**good["organization"], "website": "www.canal.org"})
    taken = await partners.client.post(
        "/v1/directory/import",
        json=[named_only, unknown, odd_website],
        headers=partners.operator(),
    )
    assert taken.status_code == 200, taken.text
    assert taken.json()["services"] == 2
    assert taken.json()["skipped"] == [
        f"{good['id']}: its organization_id names no organization here "
        "(describe it under organization)"
    ]
    assert [note.split(":")[1].strip() for note in taken.json()["ignored"]] == [
        "left out organization.website"
    ]
    too_many = await partners.client.post(
        "/v1/directory/import?capacity=20000", json=[good], headers=partners.operator()
    )
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "query.capacity"
    assert (await partners.client.get("/services")).json()["total_items"] == 2  # unchanged


class Receiver:
    """A partner's webhook endpoint: answers from a script of statuses (or stalls)."""

    def __init__(self, script: list[int | str]) -> None:
        self.script, self.received = list(script), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                answer = receiver.script.pop(0) if receiver.script else 200
                if answer == "stall":
                    time.sleep(2)
                    answer = 200
                self.send_response(int(answer))
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/upstream"


async def test_webhooks_are_signed_retried_after_a_500_or_a_timeout_and_logged(
    partners: PartnersApi,
) -> None:
    await seeded(partners)
    receiver = Receiver([500, "stall", 200])
    me = partners.partner("stratford-food-bank")
    registered = await partners.client.put(
        "/v1/inbox/webhook", json={"url": receiver.url}, headers=me
    )
    secret = registered.json()["secret"]
    # An offer made by the same use case the consumer runs.
    ready = partners.ready()
    async with work_on(partners.engine, partners.settings) as uow:
        await route_case(
            uow,
            CaseToRoute(
                case_id=ready.case_id,
                council=ready.council,
                packet=ready.packet.model_dump(mode="json"),
                lawful_basis=LawfulBasis.CONSENT,
                consent_kinds=[PartnerKind.ANY_VOLUNTARY],
                ready_at=utc_now(),
            ),
        )

    async def deliver_due() -> int:
        async with work_on(partners.engine, partners.settings) as uow:
            return await deliver_webhooks(uow)

    async def expire_due() -> int:
        async with work_on(partners.engine, partners.settings) as uow:
            return await expire_offers(uow)

    async def log() -> list[dict[str, Any]]:
        return (await partners.client.get("/v1/inbox/webhook/deliveries", headers=me)).json()

    assert await deliver_due() == 1  # answered 500
    first = (await log())[0]
    assert (first["status"], first["attempts"], first["last_status_code"]) == ("pending", 1, 500)
    await partners.sql("UPDATE deliveries SET next_attempt_at = now()")  # skip the backoff wait
    assert await deliver_due() == 1  # stalls past the 0.5 s timeout
    second = (await log())[0]
    assert second["attempts"] == 2 and "Timeout" in second["last_error"]
    await partners.sql("UPDATE deliveries SET next_attempt_at = now()")
    await asyncio.sleep(2)  # let the stalled request finish on the receiver's side
    assert await deliver_due() == 1
    delivered = (await log())[0]
    assert (delivered["status"], delivered["attempts"]) == ("delivered", 3)
    assert await deliver_due() == 0

    headers, body = receiver.received[-1]
    assert verify(secret, headers[SIGNATURE_HEADER], body, now=int(time.time()))
    assert not verify("whsec_wrong", headers[SIGNATURE_HEADER], body, now=int(time.time()))
    assert not verify(secret, headers[SIGNATURE_HEADER], body + b" ", now=int(time.time()))
    payload = json.loads(body)
    assert payload["event"] == "offer.made" and payload["packet"]["first_name"] == "Amina"
    # The receiver a partner copies from docs/partners.md accepts the real delivery and
    # refuses a tampered one or a stale one.
    documented = documented_python_receiver()
    assert documented(secret, headers[SIGNATURE_HEADER], body)
    assert not documented(secret, headers[SIGNATURE_HEADER], body.replace(b"Amina", b"Anita"))
    assert not documented(secret, headers[SIGNATURE_HEADER], body, now=time.time() + 600)
    assert headers["Upstream-Delivery"], "a receiver deduplicates by the delivery id"

    # Rotation without a gap: for a day, deliveries carry both signatures.
    rotated = (await partners.client.post("/v1/inbox/webhook/rotate", headers=me)).json()
    await partners.sql("UPDATE offers SET respond_by = now() - interval '1 minute'")
    assert await expire_due() == 1
    await deliver_due()
    headers, body = receiver.received[-1]
    assert json.loads(body)["event"] == "offer.expired"
    for key in (secret, rotated["secret"]):
        assert verify(key, headers[SIGNATURE_HEADER], body, now=int(time.time()))
        assert documented(key, headers[SIGNATURE_HEADER], body)
    receiver.server.shutdown()


async def test_a_webhook_that_could_reach_inward_is_refused_with_a_422_naming_the_url(
    partners: PartnersApi,
) -> None:
    """The test stack runs with the development setting: loopback is allowed (a receiver on
    this machine), nothing else inward is."""
    await seeded(partners)
    me = partners.partner("stratford-food-bank")
    refused = {
        "https://10.0.0.5/hook": "10.0.0.5 is a private address",
        "https://169.254.169.254/latest/meta-data": "169.254.169.254 is a link-local address",
        "https://0/hook": "0.0.0.0 is an unspecified address",
        "https://[::]/hook": ":: is an unspecified address",
        "https://[::ffff:192.168.0.1]/hook": "::ffff:c0a8:1 is a private address",
        "https://0xa9.0xfe.0xa9.0xfe/": "169.254.169.254 is a link-local address",
        "https://100.64.0.1/": "100.64.0.1 is a shared (carrier-grade NAT) address",
        "https://[ff02::1]/": "ff02::1 is a multicast address",
    }
    for url, reason in refused.items():
        answer = await partners.client.put("/v1/inbox/webhook", json={"url": url}, headers=me)
        assert answer.status_code == 422, (url, answer.text)
        expected = f"must be a public address: {reason}"
        assert answer.json() == {
            "detail": f"url: {expected}",
            "errors": [{"field": "url", "reason": expected}],
        }
    assert await partners.count("webhooks") == 0
    accepted = await partners.client.put(
        "/v1/inbox/webhook", json={"url": "https://hooks.partner.example/up"}, headers=me
    )
    assert accepted.status_code == 200, accepted.text


async def test_a_partner_not_in_the_directory_gets_a_403_not_a_500(partners: PartnersApi) -> None:
    for organisation in (str(uuid.uuid4()), "not-a-uuid"):
        stranger = partners._bearer(organisation, OrganisationKind.VCS, [Role.PARTNER])
        answer = await partners.client.put(
            "/v1/inbox/webhook", json={"url": "https://hooks.partner.example/"}, headers=stranger
        )
        assert answer.status_code == 403, answer.text
        assert "not in the partner directory" in answer.json()["detail"]
    assert await partners.count("webhooks") == 0
    after = await partners.client.get("/v1/gaps", headers=partners.operator())
    assert after.status_code == 200  # the service carries on


async def test_the_sender_connects_to_the_address_checked_and_speaks_to_the_name(
    partners: PartnersApi,
) -> None:
    """The name is resolved once, checked, and that address connected to: the partner still
    sees its own host name (``Host``; for https, the TLS server name and certificate)."""
    await seeded(partners)
    receiver = Receiver([])
    port = receiver.server.server_address[1]
    url = f"http://hooks.partner.test:{port}/upstream"
    me = partners.partner("stratford-food-bank")
    registered = await partners.client.put("/v1/inbox/webhook", json={"url": url}, headers=me)
    assert registered.status_code == 200, registered.text
    ready = partners.ready()
    async with work_on(partners.engine, partners.settings) as uow:
        await route_case(
            uow,
            CaseToRoute(
                case_id=ready.case_id,
                council=ready.council,
                packet=ready.packet.model_dump(mode="json"),
                lawful_basis=LawfulBasis.CONSENT,
                consent_kinds=[PartnerKind.ANY_VOLUNTARY],
                ready_at=utc_now(),
            ),
        )
    asked: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["127.0.0.1"]  # loopback: allowed by the development setting only

    async with work_on(partners.engine, partners.settings, resolve_host=resolve) as uow:
        assert await deliver_webhooks(uow) == 1
    assert asked == [("hooks.partner.test", port)]
    ((headers, _body),) = receiver.received
    assert headers["Host"] == f"hooks.partner.test:{port}"
    delivered = (await partners.client.get("/v1/inbox/webhook/deliveries", headers=me)).json()
    assert delivered[0]["status"] == "delivered"
    receiver.server.shutdown()


def documented_python_receiver():
    """The Python receiver exactly as docs/partners.md shows it."""
    text = (REPO / "docs" / "partners.md").read_text()
    heading = text.index("### Verifying a delivery: copy-paste receivers")
    code = text[heading:].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/partners.md", "exec"), namespace)
    return namespace["verify_upstream_delivery"]
