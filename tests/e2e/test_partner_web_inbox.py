"""The partner web inbox in a real browser: Playwright for Python driving Debian's
Chromium against the partners app served by uvicorn on a real database, with a real SMTP
server (aiosmtpd) receiving the emails. Every page is checked with axe-core: no serious or
critical violation. Screenshots go to tests/artifacts/screens/ (git-ignored); the browser
helpers are in tests/e2e/browser.py. The whole loop, from a referral through the referrals
API to the caseworker's case, is tests/e2e/test_partner_web_loop.py.

No browser here: the tests skip, saying so; under CI=true they fail instead."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from devtools.embedded import drop_database, ensure_database, free_port, with_database
from services.partners.bootstrap import SERVICE
from services.partners.service_layer import placement
from shared.http import create_app
from shared.migrations import upgrade
from tests.e2e.browser import Checked, launched_browser, new_page
from tests.integration.partners.web_world import (
    RESIDENT,
    WebWorld,
    mail_settings,
    start_mail_server,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def served(
    postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[WebWorld, str]]:
    name = f"test_partners_browser_{uuid.uuid4().hex[:10]}"
    await ensure_database(postgres_admin_url, name)
    mail = start_mail_server(Path(tmp_path_factory.mktemp("mail")))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        settings = mail_settings(
            with_database(postgres_admin_url, name), mail.port, public_base_url=base
        )
        upgrade(SERVICE, settings.database_url.get_secret_value())
        app = create_app(SERVICE, settings)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
            await asyncio.sleep(0.05)
        try:
            yield WebWorld(app.state.engine, settings, mail), base
        finally:
            server.should_exit = True
            await task
    finally:
        mail.stop()
        await drop_database(postgres_admin_url, name)


@pytest.fixture(scope="module")
async def browser(served: tuple[WebWorld, str]) -> AsyncIterator[Any]:
    async with launched_browser() as launched:
        yield launched


async def sign_in(world: WebWorld, base: str, checked: Checked, email: str) -> None:
    page = checked.page
    await page.goto(f"{base}/inbox/sign-in")
    await checked.axe("sign-in")
    await checked.shot("sign-in")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Email me a link").click()
    await page.get_by_role("heading", name="Check your email").wait_for()
    await checked.axe("check your email")
    link = await world.sign_in_link(email)
    await page.goto(link)
    await checked.axe("confirm sign-in")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r".*/inbox/offers$"))


async def test_sign_in_accept_and_record_an_outcome(
    served: tuple[WebWorld, str], browser: Any
) -> None:
    world, base = served
    await world.add_partner("Canal Food Bank", "help@canal.example", need="food")
    offer_id = await world.route("food")
    checked = await new_page(browser)
    page = checked.page
    await sign_in(world, base, checked, "help@canal.example")
    await checked.axe("offers")
    await checked.shot("inbox")

    await page.get_by_role("link", name=re.compile("^Food")).first.click()
    await page.wait_for_url(f"{base}/inbox/offers/{offer_id}")
    assert RESIDENT["first_name"] in await page.inner_text("#packet")
    await checked.axe("offer")
    await checked.shot("offer")

    await page.get_by_role("link", name="Accept").click()
    await checked.axe("confirm accept")
    await page.get_by_role("button", name="Yes, accept it").click()
    await page.get_by_text("You accepted the offer").wait_for()
    await checked.axe("offer accepted")

    # Keyboard alone: the outcome's first choice, then the form's button.
    await page.get_by_label("Support provided").focus()
    await page.keyboard.press("Space")
    await page.get_by_role("button", name="Record the outcome").focus()
    await page.keyboard.press("Enter")
    await page.get_by_text("Outcome recorded. Thank you.").wait_for()
    await checked.axe("outcome recorded")
    await checked.shot("outcome-recorded")
    rows = await world.rows("SELECT status, outcome FROM offers WHERE id = :o", o=offer_id)
    assert dict(rows[0]) == {"status": "outcome_recorded", "outcome": "support_provided"}

    await page.goto(f"{base}/inbox/services")
    await checked.axe("services")
    await checked.shot("services")
    await page.get_by_role("button", name=re.compile("Pause intake")).click()
    await page.get_by_text("Intake paused").wait_for()
    await checked.axe("service paused")


async def test_decline_from_the_email_link(served: tuple[WebWorld, str], browser: Any) -> None:
    world, base = served
    await world.add_partner("Debt Advice Hub", "team@debt.example", need="money_and_debt")
    offer_id = await world.route("money_and_debt")
    checked = await new_page(browser, {"width": 390, "height": 844})  # a phone
    page = checked.page
    await sign_in(world, base, checked, "team@debt.example")
    await world.deliver()
    offer_mail = [m for m in world.mails_to("team@debt.example") if offer_id in m.as_string()]
    body = offer_mail[-1].get_body(("plain",))
    assert body is not None
    decline = re.search(r"Decline it: (\S+)", body.get_content())
    assert decline is not None
    await page.goto(decline.group(1))  # a GET: a page that asks, nothing declined yet
    await checked.axe("decline")
    await checked.shot("decline-phone")
    rows = await world.rows("SELECT status FROM offers WHERE id = :o", o=offer_id)
    assert rows[0]["status"] == "offered"
    await page.get_by_label("No capacity").check()
    await page.get_by_role("button", name="Decline the offer").click()
    await page.get_by_text("You declined the offer").wait_for()
    await checked.axe("declined")
    await page.goto(f"{base}/inbox/offers/{offer_id}")
    await page.get_by_role("heading", name="You declined this offer").wait_for()
    assert RESIDENT["first_name"] not in await page.content()
    await checked.axe("declined offer")


async def test_refusals_have_clear_pages(served: tuple[WebWorld, str], browser: Any) -> None:
    world, base = served
    await world.add_partner("Riverside Pantry", "pantry@riverside.example", need="housing")
    await world.add_partner("Hillside Larder", "larder@hillside.example", need="benefits")
    theirs = await world.route("benefits")
    mine = await world.route("housing")
    checked = await new_page(browser)
    page = checked.page
    await sign_in(world, base, checked, "pantry@riverside.example")

    # The link again: used once, refused.
    link = re.search(
        r"http\S+/inbox/sign-in/\S+", (await _last_body(world, "pantry@riverside.example"))
    )
    assert link is not None
    await page.goto(link.group(0))
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name="That sign-in link cannot be used").wait_for()
    await checked.axe("link refused")
    await checked.shot("link-refused")

    # An expired link: refused too.
    await world.execute("UPDATE sign_in_links SET expires_at = now() - interval '1 second'")
    other = await new_page(browser)
    await other.page.goto(f"{base}/inbox/sign-in")
    await other.page.get_by_label("Email address").fill("pantry@riverside.example")
    await other.page.get_by_role("button", name="Email me a link").click()
    await other.page.get_by_role("heading", name="Check your email").wait_for()
    fresh = await world.sign_in_link("pantry@riverside.example")
    await world.execute("UPDATE sign_in_links SET expires_at = now() - interval '1 second'")
    await other.page.goto(fresh)
    await other.page.get_by_role("button", name="Sign in").click()
    await other.page.get_by_role("heading", name="That sign-in link cannot be used").wait_for()

    # Another partner's offer: not found, as if it did not exist.
    response = await page.goto(f"{base}/inbox/offers/{theirs}")
    assert response is not None and response.status == 404
    await checked.axe("not found")

    # An expired offer: a clear page, nothing of the case.
    await world.execute(
        "UPDATE offers SET respond_by = now() - interval '1 minute' WHERE id = :o", o=mine
    )
    async with world.work() as uow:
        assert await placement.expire_due_offers(uow) >= 1
    response = await page.goto(f"{base}/inbox/offers/{mine}")
    assert response is not None and response.status == 410
    await page.get_by_role("heading", name="This offer has expired").wait_for()
    assert RESIDENT["first_name"] not in await page.content()
    await checked.axe("expired offer")
    await checked.shot("offer-expired")


async def _last_body(world: WebWorld, address: str) -> str:
    body = world.mails_to(address)[-1].get_body(("plain",))
    assert body is not None
    return str(body.get_content())
