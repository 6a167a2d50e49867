"""The partner web inbox over HTTP on a real database, with emails through a real SMTP
server (aiosmtpd): sign-in by email link (single use, expiry, the same answer for unknown
addresses, rate limit), sessions and CSRF, offers answered through the same use cases as the
API, another partner's offer not found, and no personal data in any email."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from devtools.embedded import drop_database, ensure_database, with_database
from services.partners.bootstrap import SERVICE
from services.partners.service_layer import notifications, placement, web_access
from shared.http import create_app
from shared.migrations import upgrade
from tests.integration.partners.web_world import (
    RESIDENT,
    WebWorld,
    mail_settings,
    start_mail_server,
)
from tests.support.scanning import mentions

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def world(
    postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[WebWorld, httpx.AsyncClient]]:
    name = f"test_partners_web_{uuid.uuid4().hex[:10]}"
    await ensure_database(postgres_admin_url, name)
    mail = start_mail_server(Path(tmp_path_factory.mktemp("mail")))
    try:
        settings = mail_settings(with_database(postgres_admin_url, name), mail.port)
        upgrade(SERVICE, settings.database_url.get_secret_value())
        app = create_app(SERVICE, settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://partners") as c:
                yield WebWorld(app.state.engine, settings, mail), c
    finally:
        mail.stop()
        await drop_database(postgres_admin_url, name)


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


async def ask_for_link(client: httpx.AsyncClient, email: str) -> httpx.Response:
    form = await client.get("/inbox/sign-in")
    return await client.post("/inbox/sign-in", data={"csrf": csrf_of(form), "email": email})


async def signed_in(world: WebWorld, email: str) -> httpx.AsyncClient:
    """A client of its own (its own cookies) signed in as ``email``."""
    client = httpx.AsyncClient(transport=world_transport(world), base_url="https://partners")
    await ask_for_link(client, email)
    link = await world.sign_in_link(email)
    path = link.split("https://partners", 1)[1]
    confirm = await client.get(path)
    done = await client.post(path, data={"csrf": csrf_of(confirm)})
    assert done.status_code == 303, done.text
    return client


_TRANSPORTS: dict[int, httpx.ASGITransport] = {}


def world_transport(world: WebWorld) -> httpx.ASGITransport:
    return _TRANSPORTS[id(world)]


@pytest.fixture(autouse=True, scope="module")
def _remember_transport(world: tuple[WebWorld, httpx.AsyncClient]) -> None:
    web, client = world
    _TRANSPORTS[id(web)] = client._transport  # type: ignore[assignment]


async def test_a_link_signs_in_once_and_the_answer_never_says_if_an_address_is_known(
    world: tuple[WebWorld, httpx.AsyncClient],
) -> None:
    web, client = world
    await web.add_partner("Riverside Pantry", "volunteers@riverside.example", need="benefits")
    known = await ask_for_link(client, "Volunteers@Riverside.example ")
    unknown = await ask_for_link(client, "nobody@nowhere.example")
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text
    link = await web.sign_in_link("volunteers@riverside.example")
    assert not web.mails_to("nobody@nowhere.example")
    # The email's body is not kept once sent.
    bodies = await web.rows("SELECT body FROM email_deliveries WHERE kind = 'sign-in'")
    assert all(row["body"] == "(erased: it held a sign-in link)" for row in bodies)

    path = link.split("https://partners", 1)[1]
    confirm = await client.get(path)  # opening the link (a mail scanner may) signs nothing in
    assert "upstream_inbox" not in client.cookies
    first = await client.post(path, data={"csrf": csrf_of(confirm)})
    assert first.status_code == 303
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie
    assert "Max-Age=28800" in cookie
    assert (await client.get("/inbox/offers")).status_code == 200

    confirm = await client.get(path)
    again = await client.post(path, data={"csrf": csrf_of(confirm)})
    assert again.status_code == 400
    assert "cannot be used" in again.text

    signed_out = await client.post("/inbox/sign-out", data={"csrf": csrf_of(confirm)})
    assert signed_out.status_code == 403  # not the session's CSRF token: still signed in
    offers_page = await client.get("/inbox/offers")
    out = await client.post("/inbox/sign-out", data={"csrf": csrf_of(offers_page)})
    assert out.status_code == 200
    client.cookies.clear()
    assert (await client.get("/inbox/offers")).status_code == 303


async def test_addresses_replaced_at_the_same_moment_take_turns(
    world: tuple[WebWorld, httpx.AsyncClient],
) -> None:
    """Each replacement replaces them all: two at once end as one of them, never a 409."""
    web, _ = world
    organization_id = await web.add_partner(
        "Northside Pantry", "a@northside.example", need="carers_support"
    )
    choices = [[f"{n}@northside.example", "shared@northside.example"] for n in "bcdef"]

    async def replace(addresses: list[str]) -> list[str]:
        async with web.work() as uow:
            return await web_access.register_addresses(uow, organization_id, addresses)

    await asyncio.gather(*(replace(addresses) for addresses in choices))
    rows = await web.rows(
        "SELECT email FROM inbox_addresses WHERE organization_id = :o", o=organization_id
    )
    assert sorted(r["email"] for r in rows) in [sorted(addresses) for addresses in choices]


async def test_an_address_removed_loses_its_session_and_its_outstanding_link_at_once(
    world: tuple[WebWorld, httpx.AsyncClient],
) -> None:
    web, _ = world
    staying, leaving = "manager@eastside.example", "volunteer@eastside.example"
    organization_id = await web.add_partner("Eastside Larder", staying, need="digital_inclusion")
    async with web.work() as uow:
        await web_access.register_addresses(uow, organization_id, [staying, leaving])
    leaver = await signed_in(web, leaving)
    stayer = await signed_in(web, staying)
    assert (await leaver.get("/inbox/offers")).status_code == 200
    outstanding = httpx.AsyncClient(transport=world_transport(web), base_url="https://partners")
    await ask_for_link(outstanding, leaving)
    link = await web.sign_in_link(leaving)

    async with web.work() as uow:  # the operator removes the volunteer's address
        await web_access.register_addresses(uow, organization_id, [staying])

    assert (await leaver.get("/inbox/offers")).status_code == 303  # back to sign-in
    path = link.split("https://partners", 1)[1]
    confirm = await outstanding.get(path)
    refused = await outstanding.post(path, data={"csrf": csrf_of(confirm)})
    assert refused.status_code == 400 and "upstream_inbox" not in outstanding.cookies
    assert (await stayer.get("/inbox/offers")).status_code == 200  # the others stay in
    for client in (leaver, stayer, outstanding):
        await client.aclose()


async def test_an_expired_link_is_refused_and_requests_are_rate_limited(
    world: tuple[WebWorld, httpx.AsyncClient],
) -> None:
    web, client = world
    await web.add_partner("Hillside Larder", "larder@hillside.example", need="benefits")
    await ask_for_link(client, "larder@hillside.example")
    link = await web.sign_in_link("larder@hillside.example")
    await web.execute("UPDATE sign_in_links SET expires_at = now() - interval '1 minute'")
    path = link.split("https://partners", 1)[1]
    confirm = await client.get(path)
    refused = await client.post(path, data={"csrf": csrf_of(confirm)})
    assert refused.status_code == 400
    assert "upstream_inbox" not in refused.headers.get("set-cookie", "")

    before = len(web.mails_to("larder@hillside.example"))
    answers = {(await ask_for_link(client, "larder@hillside.example")).text for _ in range(6)}
    await web.deliver()
    assert len(answers) == 1  # the same answer, limited or not
    sent = len(web.mails_to("larder@hillside.example")) - before
    assert sent == web.settings.sign_in_requests_per_window - 1  # one was used above


async def test_a_partner_answers_through_the_inbox_and_sees_only_its_own_offers(
    world: tuple[WebWorld, httpx.AsyncClient],
) -> None:
    web, _ = world
    await web.add_partner("Canal Food Bank", "help@canal.example", need="food")
    await web.add_partner("Debt Advice Hub", "team@debt.example", need="money_and_debt")
    offer_id = await web.route("food")
    other_offer = await web.route("money_and_debt")
    partner = await signed_in(web, "help@canal.example")
    try:
        listing = await partner.get("/inbox/offers")
        assert f"/inbox/offers/{offer_id}" in listing.text
        assert other_offer not in listing.text
        page = await partner.get(f"/inbox/offers/{offer_id}")
        assert RESIDENT["first_name"] in page.text and RESIDENT["summary"] in page.text
        assert "Why this came to you" in page.text
        assert (await partner.get(f"/inbox/offers/{other_offer}")).status_code == 404
        assert (await partner.get("/inbox/offers/not-an-id")).status_code == 404
        # A form without the session's CSRF token changes nothing.
        forged = await partner.post(f"/inbox/offers/{offer_id}/accept", data={"csrf": "x"})
        assert forged.status_code == 403
        # Compared as bytes: a token that is not ASCII is refused as any wrong one is.
        for odd in ("é", "\u00e9" * 32):
            forged = await partner.post(f"/inbox/offers/{offer_id}/accept", data={"csrf": odd})
            assert forged.status_code == 403
        anonymous = httpx.AsyncClient(transport=world_transport(web), base_url="https://partners")
        await anonymous.get("/inbox/sign-in")  # its form cookie set
        refused = await anonymous.post("/inbox/sign-in", data={"csrf": "é", "email": "a@b.org"})
        assert refused.status_code == 403, refused.text
        await anonymous.aclose()
        assert (await web.rows("SELECT status FROM offers WHERE id = :o", o=offer_id))[0][
            "status"
        ] == "offered"
        csrf = csrf_of(page)
        refused = await partner.post(f"/inbox/offers/{other_offer}/accept", data={"csrf": csrf})
        assert refused.status_code == 404
        confirm = await partner.get(f"/inbox/offers/{offer_id}/accept")
        assert "Yes, accept it" in confirm.text
        accepted = await partner.post(f"/inbox/offers/{offer_id}/accept", data={"csrf": csrf})
        assert accepted.status_code == 303
        outcome = await partner.post(
            f"/inbox/offers/{offer_id}/outcome",
            data={"csrf": csrf, "outcome": "support_provided", "note": "food parcel"},
        )
        assert outcome.status_code == 303
        events = await web.rows(
            "SELECT event_type FROM outbox WHERE envelope->'data'->>'offer_id' = :o ORDER BY id",
            o=offer_id,
        )
        kinds = [row["event_type"].split(".")[-2] for row in events]
        assert kinds == ["made", "accepted", "outcome_recorded"], kinds

        # Declined: handed on, and nothing more of it to see. A note longer than the API
        # takes is refused here too, and nothing changes.
        second = await web.route("food")
        too_long = await partner.post(
            f"/inbox/offers/{second}/decline",
            data={"csrf": csrf, "reason": "no_capacity", "note": "n" * 1001},
        )
        assert too_long.status_code == 422 and "longer than 1,000 characters" in too_long.text
        assert (await partner.get(f"/inbox/offers/{second}")).status_code == 200  # still open
        decline = await partner.post(
            f"/inbox/offers/{second}/decline", data={"csrf": csrf, "reason": "no_capacity"}
        )
        assert decline.status_code == 303
        gone = await partner.get(f"/inbox/offers/{second}")
        assert gone.status_code == 410 and "You declined this offer" in gone.text
        assert RESIDENT["first_name"] not in gone.text

        services = await partner.get("/inbox/services")
        service_id = web.services["Canal Food Bank"]
        long_reason = await partner.post(
            f"/inbox/services/{service_id}/pause", data={"csrf": csrf, "reason": "r" * 501}
        )
        assert long_reason.status_code == 422 and "longer than 500" in long_reason.text
        paused = await partner.post(
            f"/inbox/services/{service_id}/pause", data={"csrf": csrf, "reason": "stock out"}
        )
        assert paused.status_code == 303 and "Capacity" in services.text
        other_service = web.services["Debt Advice Hub"]
        assert (
            await partner.post(f"/inbox/services/{other_service}/pause", data={"csrf": csrf})
        ).status_code == 404
        # Capacity from the services page: saved, refused when not a number, and never
        # another organisation's.
        saved = await partner.post(
            f"/inbox/services/{service_id}/capacity", data={"csrf": csrf, "capacity": "12"}
        )
        assert saved.status_code == 303
        (row,) = await web.rows("SELECT capacity FROM services WHERE id = :id", id=service_id)
        assert row["capacity"] == 12
        for not_a_number in ("lots", "²", "9" * 5000, "-1"):
            refused = await partner.post(
                f"/inbox/services/{service_id}/capacity",
                data={"csrf": csrf, "capacity": not_a_number},
            )
            assert refused.status_code == 422 and "whole number" in refused.text, not_a_number
        too_many = await partner.post(
            f"/inbox/services/{service_id}/capacity", data={"csrf": csrf, "capacity": "20000"}
        )
        assert too_many.status_code == 422 and "from 0 to" in too_many.text
        theirs = await partner.post(
            f"/inbox/services/{other_service}/capacity", data={"csrf": csrf, "capacity": "0"}
        )
        assert theirs.status_code == 404
        (row,) = await web.rows("SELECT capacity FROM services WHERE id = :id", id=other_service)
        assert row["capacity"] == 5
    finally:
        await partner.aclose()


async def test_offer_emails_hold_no_personal_data(
    world: tuple[WebWorld, httpx.AsyncClient],
) -> None:
    """Every kind of offer email — made, reminder, handed on — scanned, headers and body."""
    web, _ = world
    await web.add_partner("Northside Kitchen", "kitchen@northside.example", need="housing")
    offer_id = await web.route("housing", urgency="crisis")
    await web.deliver()
    mails = web.mails_to("kitchen@northside.example")
    assert mails, "no offer email was sent"
    offer_mail = mails[-1]
    body = offer_mail.get_body(("plain",))
    assert body is not None
    content = body.get_content()
    assert "Need: housing" in content and "Urgency: crisis" in content and "Answer by:" in content
    assert "/accept" in content and "/decline" in content

    # Its deadline near: a reminder; then past: handed on, and an email saying so.
    await web.execute(
        "UPDATE offers SET respond_by = now() + interval '10 minutes' WHERE id = :o", o=offer_id
    )
    async with web.work() as uow:
        assert await notifications.queue_reminders(uow) >= 1
    await web.execute(
        "UPDATE offers SET respond_by = now() - interval '1 minute' WHERE id = :o", o=offer_id
    )
    async with web.work() as uow:
        assert await placement.expire_due_offers(uow) >= 1
    await web.deliver()
    mails = web.mails_to("kitchen@northside.example")  # this test's partner: its offer only
    subjects = [str(m["Subject"]) for m in mails]
    assert [s.split(":")[0] for s in subjects] == [
        "New referral offer",
        "Reminder",
        "Referral offer handed on",
    ], subjects

    words = [
        RESIDENT["first_name"],
        RESIDENT["contact"]["value"],  # type: ignore[index]
        RESIDENT["postcode_district"],
        "Quarry Lane",
        "arrears",
    ]
    for mail in mails:
        raw = mail.as_string()
        mail_body = mail.get_body(("plain",))
        assert mail_body is not None
        headers = "\n".join(f"{k}: {v}" for k, v in mail.items())
        for word in words:
            for where in (raw, mail_body.get_content(), headers):  # encoded and decoded
                assert not mentions(where, str(word)), f"{word!r} in {mail['Subject']}"


async def test_requests_for_links_sent_all_at_once_are_limited_too(
    world: tuple[WebWorld, httpx.AsyncClient],
) -> None:
    """A burst of requests for one address, each in its own transaction at the same time:
    counted one after another, so no more links go out than the limit."""
    web, client = world
    await web.add_partner("Marsh Pantry", "pantry@marsh.example", need="food")
    limit = web.settings.sign_in_requests_per_window
    answers = await asyncio.gather(
        *(ask_for_link(client, "pantry@marsh.example") for _ in range(limit * 3))
    )
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1
    links = await web.rows("SELECT * FROM sign_in_links WHERE email = 'pantry@marsh.example'")
    assert len(links) == limit
