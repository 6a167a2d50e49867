"""The GOV.UK Notify backend for real: the real ``notifications-python-client`` sends to a
real local HTTP server standing where Notify's API stands (``UPSTREAM_NOTIFY_BASE_URL``).
The server checks what the client sends — the Bearer JWT signed with the API key's secret
and naming the service, the template, the address, a personalisation of subject and body
with none of the resident's data — and answers as Notify does, including with refusals,
which the delivery sweep logs and retries like an SMTP failure."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest

from devtools.embedded import drop_database, ensure_database, free_port, with_database
from services.partners.bootstrap import SERVICE
from shared.db import create_engine
from shared.migrations import upgrade
from tests.integration.partners.web_world import (
    RESIDENT,
    WebWorld,
    mail_settings,
    start_mail_server,
)

pytestmark = pytest.mark.integration

SERVICE_ID = str(uuid.uuid4())
SECRET = str(uuid.uuid4())
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
API_KEY = f"upstream_test-{SERVICE_ID}-{SECRET}"  # Notify's key: name, service id, secret
TEMPLATE_ID = str(uuid.uuid4())


@dataclass
class NotifyApi:
    """A real HTTP server answering ``POST /v2/notifications/email`` as Notify does. Each
    request is checked and kept; ``answers`` are the statuses to give next (201 after)."""

    port: int
    received: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def check(self, path: str, headers: Any, body: bytes) -> dict[str, Any]:
        if path != "/v2/notifications/email":
            self.problems.append(f"path {path}")
        bearer = headers.get("Authorization", "")
        if not bearer.startswith("Bearer "):
            self.problems.append("no Bearer token")
            return {}
        try:
            claims = jwt.decode(bearer[len("Bearer ") :], SECRET, algorithms=["HS256"])
        except jwt.InvalidTokenError as exc:
            self.problems.append(f"token not signed with the key's secret: {exc}")
            return {}
        if claims.get("iss") != SERVICE_ID:
            self.problems.append(f"iss {claims.get('iss')!r} is not the service id")
        if abs(time.time() - int(claims.get("iat", 0))) > 30:
            self.problems.append("iat is not now")
        if headers.get("Content-Type", "").split(";")[0] != "application/json":
            self.problems.append("not JSON")
        return dict(json.loads(body))


@pytest.fixture(scope="module")
def notify() -> Iterator[NotifyApi]:
    api = NotifyApi(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            api.received.append(api.check(self.path, self.headers, body))
            status = api.answers.pop(0) if api.answers else 201
            if status == 201:
                answer: dict[str, Any] = {
                    "id": str(uuid.uuid4()),
                    "content": {"subject": "(rendered)", "body": "(rendered)"},
                    "template": {"id": TEMPLATE_ID, "version": 1, "uri": "(uri)"},
                }
            else:  # as Notify refuses: errors with a class and a message quoting the input
                answer = {
                    "status_code": status,
                    "errors": [
                        {
                            "error": "BadRequestError" if status == 400 else "Exception",
                            "message": "Can't send to this recipient: " + self.path,
                        }
                    ],
                }
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", api.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
async def world(
    postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory, notify: NotifyApi
) -> AsyncIterator[WebWorld]:
    name = f"test_partners_notify_{uuid.uuid4().hex[:10]}"
    await ensure_database(postgres_admin_url, name)
    smtp = start_mail_server(Path(tmp_path_factory.mktemp("mail")))  # must stay empty
    engine = None
    try:
        settings = mail_settings(
            with_database(postgres_admin_url, name),
            smtp.port,
            mail_backend="notify",
            notify_api_key=API_KEY,
            notify_template_id=TEMPLATE_ID,
            notify_base_url=notify.url,
            mail_max_attempts=3,
        )
        upgrade(SERVICE, settings.database_url.get_secret_value())
        engine = create_engine(settings.database_url.get_secret_value())
        yield WebWorld(engine, settings, smtp)
    finally:
        if engine is not None:
            await engine.dispose()
        smtp.stop()
        await drop_database(postgres_admin_url, name)


async def delivery(world: WebWorld, offer_id: str) -> dict[str, Any]:
    (row,) = await world.rows(
        "SELECT status, attempts, last_error, next_attempt_at > now() AS later "
        "FROM email_deliveries WHERE offer_id = :o",
        o=offer_id,
    )
    return dict(row)


async def test_an_offer_email_goes_through_notify_signed_and_without_personal_data(
    world: WebWorld, notify: NotifyApi
) -> None:
    await world.add_partner("Eastside Pantry", "pantry@eastside.example", need="food")
    offer_id = await world.route("food", urgency="crisis")
    notify.received.clear()

    assert await world.deliver() == 1

    assert notify.problems == []
    (sent,) = notify.received
    assert set(sent) == {"email_address", "template_id", "personalisation"}
    assert sent["email_address"] == "pantry@eastside.example"
    assert sent["template_id"] == TEMPLATE_ID
    personalisation = sent["personalisation"]
    assert set(personalisation) == {"subject", "body"}
    assert personalisation["subject"] == "New referral offer: food, urgency crisis"
    assert f"/inbox/offers/{offer_id}/accept" in personalisation["body"]
    # Ids are no one's personal data, and a random one may hold "e15" by chance.
    sent_text = _UUID.sub("<id>", json.dumps(sent).lower())
    for word in (
        RESIDENT["first_name"],
        RESIDENT["contact"]["value"],  # type: ignore[index]
        RESIDENT["postcode_district"],
        "Quarry Lane",
        "arrears",
    ):
        assert str(word).lower() not in sent_text, f"{word!r} was sent to Notify"
    assert await delivery(world, offer_id) == {
        "status": "delivered",
        "attempts": 1,
        "last_error": None,
        "later": False,
    }
    assert world.mail.messages() == []  # nothing went by SMTP


async def test_a_refusal_by_notify_is_a_failed_attempt_logged_and_retried(
    world: WebWorld, notify: NotifyApi, caplog: pytest.LogCaptureFixture
) -> None:
    await world.add_partner("Westside Advice", "advice@westside.example", need="benefits")
    offer_id = await world.route("benefits")
    notify.answers[:] = [500]

    with caplog.at_level(logging.WARNING):
        assert await world.deliver() == 1
    failed = await delivery(world, offer_id)
    assert failed == {
        "status": "pending",
        "attempts": 1,
        "last_error": "GOV.UK Notify answered 500 (Exception)",
        "later": True,  # backed off, as an SMTP failure is
    }
    (logged,) = [r for r in caplog.records if r.getMessage() == "email not sent"]
    assert logged.error == "GOV.UK Notify answered 500 (Exception)"  # type: ignore[attr-defined]
    # Notify's message (which may quote what was sent) is logged by no one.
    assert not [r for r in caplog.records if "Can't send" in r.getMessage()]

    # Due again: a 400 is one more failed attempt, then Notify takes it.
    notify.answers[:] = [400]
    await world.execute(
        "UPDATE email_deliveries SET next_attempt_at = now() WHERE offer_id = :o", o=offer_id
    )
    await world.deliver()
    assert (await delivery(world, offer_id))["last_error"] == (
        "GOV.UK Notify answered 400 (BadRequestError)"
    )
    await world.execute(
        "UPDATE email_deliveries SET next_attempt_at = now() WHERE offer_id = :o", o=offer_id
    )
    await world.deliver()
    delivered = await delivery(world, offer_id)
    assert delivered["status"] == "delivered" and delivered["attempts"] == 3
    assert notify.problems == []


async def test_notify_failing_every_time_is_given_up_after_the_last_attempt(
    world: WebWorld, notify: NotifyApi
) -> None:
    await world.add_partner("Southside Carers", "carers@southside.example", need="carers_support")
    offer_id = await world.route("carers_support")
    notify.answers[:] = [503, 503, 503]
    for _ in range(3):
        await world.execute(
            "UPDATE email_deliveries SET next_attempt_at = now() WHERE offer_id = :o", o=offer_id
        )
        await world.deliver()
    given_up = await delivery(world, offer_id)
    assert (given_up["status"], given_up["attempts"], given_up["last_error"]) == (
        "failed",
        3,
        "GOV.UK Notify answered 503 (Exception)",
    )
