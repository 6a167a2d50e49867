"""The closed loop through the partner web inbox, in a real browser: a caseworker's referral
posted to the referrals API is assessed (risk), routed (partners) and reaches the partner's
web inbox; the partner signs in with a link read from the real SMTP server, accepts and
records an outcome in Chromium; the caseworker's case (the referrals API) then shows it.

One stack for the module, in-process but over the real broker and PostgreSQL: each of the
three services' real worker (outbox relay, consumer group, timers; ``shared.worker``) and
migrations; the referrals API in-process, the partners app served by uvicorn for the browser.
Every page passes axe-core (no serious or critical violation); screenshots go to
tests/artifacts/screens/ (``loop-*.png``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn

from devtools.embedded import drop_database, ensure_database, free_port, with_database
from devtools.mail import MailFolderServer
from devtools.stack import load_service
from services.partners.settings import PartnersSettings
from services.referrals.settings import ReferralsSettings
from services.risk.settings import RiskSettings
from shared.auth import OrganisationKind, Role, mint_token
from shared.http import create_app
from shared.migrations import upgrade
from shared.service import ServiceDefinition
from shared.settings import ServiceSettings
from shared.worker import run_worker
from tests.e2e.browser import Checked, launched_browser, new_page
from tests.support.infrastructure import Broker
from tests.support.scanning import mentions
from tests.support.services import serve

pytestmark = pytest.mark.e2e

T = TypeVar("T")

# The resident as the caseworker refers them: none of this but the first name and the
# contact route may reach the partner, and none of it any email.
RESIDENT = {
    "given_name": "Ottoline",
    "family_name": "Marchbanks",
    "date_of_birth": "1958-09-23",
    "contact": {"phone": "07700 900777", "preferred": "phone"},
    "address": {"line": "31 Tidal Basin Road", "postcode": "E16 1AD"},
}
PERSONAL = ["Ottoline", "Marchbanks", "1958", "07700 900777", "900777", "Tidal Basin", "E16 1AD"]


def _council() -> str:
    return f"E0{uuid.uuid4().int % 3 + 7}{uuid.uuid4().int % 1_000_000:06d}"


def _own_groups(definition: ServiceDefinition) -> ServiceDefinition:
    """The service under consumer group ids of this module's own: the broker is shared."""
    suffix = uuid.uuid4().hex[:8]
    return dataclasses.replace(
        definition,
        consumers=[
            type(c)(f"{c.group_id}-loop-{suffix}", c.handlers) for c in definition.consumers
        ],
    )


async def until(condition: Callable[[], Awaitable[T | None]], what: str, timeout: float = 60) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


@dataclass
class Loop:
    council: str
    referrals: httpx.AsyncClient  # the referrals API, in-process
    partners_url: str  # the partners app, served for the browser
    settings: PartnersSettings
    mail: MailFolderServer
    http: httpx.AsyncClient

    def _bearer(self, org: str, kind: OrganisationKind, *roles: Role) -> dict[str, str]:
        token = mint_token(
            self.settings, subject=f"loop-{org}", organisation=org, kind=kind, roles=roles
        )
        return {"Authorization": f"Bearer {token}"}

    @property
    def caseworker(self) -> dict[str, str]:
        return self._bearer(self.council, OrganisationKind.COUNCIL, Role.CASEWORKER, Role.REFERRER)

    @property
    def operator(self) -> dict[str, str]:
        return self._bearer("operator", OrganisationKind.OPERATOR, Role.OPERATOR)

    async def partners(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = await self.http.request(
            method, self.partners_url + path, headers=self.operator, **kwargs
        )
        assert response.status_code == expect, f"{method} {path}: {response.text}"
        return response.json()

    async def partner_api(self, org: str, method: str, path: str, **kwargs: Any) -> Any:
        """The partners JSON API as the partner's own staff (a vcs token, role partner)."""
        headers = self._bearer(org, OrganisationKind.VCS, Role.PARTNER)
        response = await self.http.request(
            method, self.partners_url + path, headers=headers, **kwargs
        )
        assert response.status_code == 200, f"{method} {path}: {response.text}"
        return response.json()

    async def add_partner(self, name: str, needs: list[str], address: str) -> str:
        org = await self.partners(
            "POST",
            "/v1/organizations",
            201,
            json={
                "name": name,
                "description": f"{name}, a local charity",
                "kind": "food",
                "agreements": [
                    {
                        "council": self.council,
                        "reference": f"DSA {name}",
                        "needs": needs,
                        "lawful_bases": ["consent"],
                        "starts_on": "2020-01-01",
                    }
                ],
            },
        )
        await self.partners(
            "POST",
            "/v1/services",
            201,
            json={
                "organization_id": org["id"],
                "name": f"{name} service",
                "description": "what it offers",
                "needs": needs,
                "councils": [self.council],
                "capacity": 5,
            },
        )
        await self.partners(
            "PUT", f"/v1/organizations/{org['id']}/inbox-addresses", json={"addresses": [address]}
        )
        return str(org["id"])

    async def case(self, case_id: str) -> dict[str, Any]:
        response = await self.referrals.get(f"/v1/cases/{case_id}", headers=self.caseworker)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def until_case(self, case_id: str, status: str) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            case = await self.case(case_id)
            return case if case["status"] == status else None

        return await until(reached, f"the case to be {status}")

    def mails_to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.mail.messages() if m["To"] == address]

    async def mail_matching(self, address: str, pattern: str) -> tuple[EmailMessage, str]:
        """The newest email to ``address`` whose body matches, and the match (the worker's
        delivery timer sends it within a second or so)."""

        async def found() -> tuple[EmailMessage, str] | None:
            for message in reversed(self.mails_to(address)):
                body = message.get_body(("plain",))
                if body is not None and (hit := re.search(pattern, body.get_content())):
                    return message, hit.group(0)
            return None

        return await until(found, f"an email to {address} matching {pattern}")


@pytest.fixture(scope="module")
async def loop(
    postgres_admin_url: str, kafka: Broker, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Loop]:
    council = _council()
    mail = MailFolderServer(Path(tmp_path_factory.mktemp("loop-mail")), port=free_port())
    mail.start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    names = {s: f"test_{s}_loop_{uuid.uuid4().hex[:8]}" for s in ("referrals", "risk", "partners")}
    broker: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka.bootstrap_servers,
        "kafka_broker_profile": kafka.profile,
        "outbox_poll_interval_ms": 200,
    }
    stop = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(mail.stop)
        for name in names.values():
            await ensure_database(postgres_admin_url, name)
            stack.push_async_callback(drop_database, postgres_admin_url, name)
        url = {s: with_database(postgres_admin_url, n) for s, n in names.items()}
        settings: dict[str, ServiceSettings] = {
            "referrals": ReferralsSettings(
                database_url=url["referrals"], councils=[council], **broker
            ),
            "risk": RiskSettings(database_url=url["risk"], **broker),
            "partners": PartnersSettings(
                database_url=url["partners"],
                smtp_host="127.0.0.1",
                smtp_port=mail.port,
                public_base_url=base,
                **broker,
            ),
        }
        for service in names:  # alembic is not thread-safe: one after another
            upgrade(load_service(service), url[service])

        workers = [
            asyncio.create_task(run_worker(_own_groups(load_service(s)), settings[s], stop))
            for s in names
        ]

        async def stop_workers() -> None:
            stop.set()
            await asyncio.gather(*workers)

        stack.push_async_callback(stop_workers)

        partners_app = create_app(load_service("partners"), settings["partners"])
        server = uvicorn.Server(
            uvicorn.Config(partners_app, host="127.0.0.1", port=port, log_level="warning")
        )
        serving = asyncio.create_task(server.serve())

        async def stop_serving() -> None:
            server.should_exit = True
            await serving

        stack.push_async_callback(stop_serving)
        while not server.started:
            assert not serving.done(), "the partners app did not start"
            await asyncio.sleep(0.05)

        referrals, _ = await stack.enter_async_context(
            serve(load_service("referrals"), settings["referrals"])
        )
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        partners_settings = settings["partners"]
        assert isinstance(partners_settings, PartnersSettings)
        yield Loop(council, referrals, base, partners_settings, mail, http)
        for worker in workers:  # a worker that died would have failed the test already
            assert not worker.done() or worker.exception() is None


@pytest.fixture(scope="module")
async def browser(loop: Loop) -> AsyncIterator[Any]:
    async with launched_browser() as launched:
        yield launched


def referral(needs: list[str]) -> dict[str, Any]:
    return {
        "resident": RESIDENT,
        "needs": needs,
        "urgency": "high",
        "circumstances_text": "Rent is behind since the job at the depot ended.",
        "sharing": {
            "lawful_basis": "consent",
            "consent": {
                "given_by": "the resident",
                "method": "verbal",
                "given_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                "partner_kinds": ["any_voluntary"],
            },
        },
    }


def no_personal_data(message: EmailMessage) -> None:
    body = message.get_body(("plain",))
    assert body is not None
    headers = "\n".join(f"{k}: {v}" for k, v in message.items())
    for where in (message.as_string(), body.get_content(), headers):  # encoded and decoded
        for word in PERSONAL:
            assert not mentions(where, word), f"{word!r} is in an email"


async def test_a_referral_reaches_the_web_inbox_and_its_outcome_the_caseworker(
    loop: Loop, browser: Any
) -> None:
    canal = await loop.add_partner("Canal Food Bank", ["food"], "help@canal.example")
    # Able to take food too but ranked lower (it meets two needs, so specialises less); the
    # only one for money and debt, so it gets that need and answers through the JSON API.
    riverside = await loop.add_partner(
        "Riverside Hub", ["food", "money_and_debt"], "desk@riverside.example"
    )

    created = await loop.referrals.post(
        "/v1/referrals", json=referral(["food", "money_and_debt"]), headers=loop.caseworker
    )
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]

    async def both_offered() -> dict[str, Any] | None:
        case = await loop.case(case_id)
        return case if len(case["offers"]) == 2 else None

    offered = await until(both_offered, "an offer for each need")

    # The caseworker sees why this partner, for every offer of the case.
    offers = {o["need"]: o for o in offered["offers"]}
    assert (offers["food"]["partner_id"], offers["money_and_debt"]["partner_id"]) == (
        canal,
        riverside,
    )
    assert all(o["routing_reasons"]["passed"] for o in offered["offers"])
    assert all(o["routing_reasons"]["ranking"] for o in offered["offers"])
    offer = offers["food"]
    why = offer["routing_reasons"]
    assert any("Riverside Hub" in line for line in why["excluded"]), why

    # The offer's email: need, urgency, deadline and links; nothing about the resident.
    offer_mail, _ = await loop.mail_matching(
        "help@canal.example", rf"/inbox/offers/{offer['id']}\b"
    )
    no_personal_data(offer_mail)

    checked = await new_page(browser)
    page = checked.page
    await sign_in(loop, checked, "help@canal.example")
    await checked.axe("loop: offers")
    await checked.shot("loop-inbox")

    await page.get_by_role("link", name=re.compile("^Food")).first.click()
    await page.wait_for_url(f"{loop.partners_url}/inbox/offers/{offer['id']}")
    packet = await page.inner_text("#packet")
    assert RESIDENT["given_name"] in packet and "07700 900777" in packet
    assert RESIDENT["family_name"] not in await page.content()
    # "Why this came to you": the same words as the case's, where they are about this partner.
    await page.get_by_text("Why this came to you").click()
    shown = [line.strip() for line in await page.locator("details.details li").all_inner_texts()]
    assert shown == [*why["passed"], *why["ranking"]]
    content = await page.content()
    assert "Riverside" not in content and not any(line in content for line in why["excluded"])
    await checked.axe("loop: offer")
    await checked.shot("loop-offer")

    await page.get_by_role("link", name="Accept").click()
    await checked.axe("loop: confirm accept")
    await page.get_by_role("button", name="Yes, accept it").click()
    await page.get_by_text("You accepted the offer").wait_for()
    await checked.axe("loop: offer accepted")

    async def food_accepted() -> bool:
        case = await loop.case(case_id)
        return any(o["need"] == "food" and o["status"] == "accepted" for o in case["offers"])

    await until(food_accepted, "the caseworker to see the acceptance")

    await page.get_by_label("Support provided").check()
    await page.get_by_role("button", name="Record the outcome").click()
    await page.get_by_text("Outcome recorded. Thank you.").wait_for()
    await checked.axe("loop: outcome recorded")
    await checked.shot("loop-outcome-recorded")

    # The other need's partner answers through the JSON API; then the case can close.
    money = offers["money_and_debt"]["id"]
    for action, body in (("accept", None), ("outcome", {"outcome": "referred_on"})):
        await loop.partner_api(riverside, "POST", f"/v1/inbox/offers/{money}/{action}", json=body)

    # The caseworker's case shows it: each offer's outcome, and the case closed on them.
    closed = await loop.until_case(case_id, "closed")
    done = {o["need"]: o for o in closed["offers"]}
    assert done["food"]["status"] == "outcome_recorded"
    assert done["food"]["outcome"] == "support_provided"
    assert done["food"]["routing_reasons"] == why
    assert done["money_and_debt"]["outcome"] == "referred_on"
    actions = [entry["action"] for entry in closed["timeline"]]
    (offered_line,) = [a for a in actions if "offered to Canal Food Bank" in a] or [actions]
    assert why["ranking"][0] in offered_line and why["excluded"][0] in offered_line
    assert any("outcome recorded: support_provided" in a for a in actions), actions
    for address in ("help@canal.example", "desk@riverside.example"):
        for message in loop.mails_to(address):
            if "/inbox/sign-in/" not in message.as_string():
                no_personal_data(message)


async def sign_in(loop: Loop, checked: Checked, email: str) -> None:
    page = checked.page
    await page.goto(f"{loop.partners_url}/inbox/sign-in")
    await checked.axe("loop: sign-in")
    await checked.shot("loop-sign-in")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Email me a link").click()
    await page.get_by_role("heading", name="Check your email").wait_for()
    await checked.axe("loop: check your email")
    _, link = await loop.mail_matching(email, r"https?://\S+/inbox/sign-in/\S+")
    await page.goto(link)
    await checked.axe("loop: confirm sign-in")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r".*/inbox/offers$"))
