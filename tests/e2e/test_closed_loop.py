"""The closed loop end to end: the three services as separate processes (``upstream up``)
over the real broker and PostgreSQL, driven through their HTTP APIs only, each step seen
through the API of the right service by the right principal."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from devtools.embedded import free_port
from shared.auth import OrganisationKind, Role, mint_token
from shared.settings import AuthSettings
from tests.conftest import REPO
from tests.support.ports import stack_ports_held

pytestmark = pytest.mark.e2e
NEWHAM = "E09000025"


class Stack:
    def __init__(self, ports: dict[str, int]) -> None:
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        self.http = httpx.Client(timeout=30)
        self.auth = AuthSettings()

    def token(self, organisation: str, kind: OrganisationKind, *roles: Role) -> dict[str, str]:
        token = mint_token(
            self.auth,
            subject=f"e2e-{organisation}",
            organisation=organisation,
            kind=kind,
            roles=roles,
        )
        return {"Authorization": f"Bearer {token}"}

    @property
    def caseworker(self) -> dict[str, str]:
        return self.token(NEWHAM, OrganisationKind.COUNCIL, Role.CASEWORKER, Role.REFERRER)

    @property
    def operator(self) -> dict[str, str]:
        return self.token("operator", OrganisationKind.OPERATOR, Role.OPERATOR)

    def partner(self, organisation_id: str) -> dict[str, str]:
        return self.token(organisation_id, OrganisationKind.VCS, Role.PARTNER, Role.REFERRER)

    def call(
        self,
        method: str,
        service: str,
        path: str,
        headers: dict[str, str],
        expect: int = 200,
        **kwargs: Any,
    ) -> Any:
        response = self.http.request(method, self.urls[service] + path, headers=headers, **kwargs)
        assert response.status_code == expect, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    def until(self, condition: Callable[[], Any], what: str, timeout: float = 90) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}")

    def case(self, case_id: str) -> dict[str, Any]:
        return self.call("GET", "referrals", f"/v1/cases/{case_id}", self.caseworker)

    def until_status(self, case_id: str, status: str) -> dict[str, Any]:
        return self.until(
            lambda: (c := self.case(case_id))["status"] == status and c, f"case to be {status}"
        )

    def add_partner(self, name: str, needs: list[str], kind: str = "advice") -> str:
        org = self.call(
            "POST",
            "partners",
            "/v1/organizations",
            self.operator,
            expect=201,
            json={
                "name": name,
                "description": f"{name} (e2e)",
                "kind": kind,
                "agreement": {"lawful_bases": ["consent", "public_task"]},
            },
        )["id"]
        self.call(
            "POST",
            "partners",
            "/v1/services",
            self.operator,
            expect=201,
            json={
                "organization_id": org,
                "name": f"{name} service",
                "description": "e2e",
                "needs": needs,
                "councils": [NEWHAM],
                "capacity": 5,
            },
        )
        return org

    def inbox(self, organisation_id: str) -> list[dict[str, Any]]:
        return self.call("GET", "partners", "/v1/inbox/offers", self.partner(organisation_id))

    def offered_to(self, organisation_id: str) -> dict[str, Any]:
        return self.until(
            lambda: next(
                (o for o in self.inbox(organisation_id) if o["status"] == "offered"), None
            ),
            f"an offer to {organisation_id}",
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    picking = contextlib.ExitStack()  # no other stack picks ports until ours are bound
    picking.enter_context(stack_ports_held())
    ports = {name: free_port() for name in ("referrals", "risk", "partners")}
    state = tmp_path_factory.mktemp("closed-loop")
    env = {
        **os.environ,
        "UPSTREAM_STATE_DIR": str(state / "state"),
        "UPSTREAM_REFERRALS_PORT": str(ports["referrals"]),
        "UPSTREAM_RISK_PORT": str(ports["risk"]),
        "UPSTREAM_PARTNERS_PORT": str(ports["partners"]),
        "UPSTREAM_BROKER_PORT": str(free_port()),
        "UPSTREAM_WORKER_METRICS_PORT_OFFSET": "1",
        # Low-urgency offers lapse after about four seconds, so expiry can be seen here.
        "UPSTREAM_RESPONSE_HOURS": json.dumps(
            {"crisis": 4, "high": 24, "medium": 72, "low": 0.001, "none": 120}
        ),
    }
    log = state / "stack.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "devtools.cli", "up"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while "Upstream is running." not in log.read_text():
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        picking.close()
        yield Stack(ports)
    finally:
        picking.close()
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    # Checked once every test of the module has used the stack, whatever order they ran in:
    # a failure here reports as an error in the last test's teardown.
    logs = list((state / "state" / "logs").glob("*.log"))
    assert logs, "the stack wrote no service logs"
    errors = [line for p in logs for line in p.read_text().splitlines() if '"ERROR"' in line]
    assert errors == [], "the services logged errors"


def referral(given: str, needs: list[str], urgency: str = "high", **extra: Any) -> dict[str, Any]:
    return {
        "resident": {
            "given_name": given,
            "family_name": "Adeyemi",
            "date_of_birth": "1979-05-14",
            "contact": {"phone": "07700 900456", "preferred": "phone"},
            "address": {"line": "4 Barking Road", "postcode": "E13 8HL"},
        },
        "needs": needs,
        "urgency": urgency,
        "sharing": {
            "lawful_basis": "consent",
            "consent": {
                "given_by": "the resident",
                "method": "verbal",
                "given_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                "partner_kinds": ["any_voluntary"],
            },
        },
        **extra,
    }


def test_a_council_referral_goes_round_the_whole_loop(stack: Stack) -> None:
    advice = stack.add_partner("newham-benefits-advice", ["benefits"])
    created = stack.call(
        "POST",
        "referrals",
        "/v1/referrals",
        stack.caseworker,
        expect=201,
        json=referral("Bola", ["benefits"]),
    )
    case_id = created["case_id"]
    assessed = stack.until_status(case_id, "offered")
    assert assessed["assessment"]["ruleset_version"].startswith("default@")
    why = stack.call("GET", "risk", f"/v1/cases/{case_id}/assessment", stack.caseworker)
    assert why["level"] == assessed["assessment"]["level"] and why["explanation"]

    offer = stack.offered_to(advice)
    assert offer["packet"]["first_name"] == "Bola" and "Adeyemi" not in json.dumps(offer)
    stack.call("POST", "partners", f"/v1/inbox/offers/{offer['id']}/accept", stack.partner(advice))
    stack.until_status(case_id, "accepted")
    stack.call(
        "POST",
        "partners",
        f"/v1/inbox/offers/{offer['id']}/outcome",
        stack.partner(advice),
        json={"outcome": "support_provided"},
    )
    closed = stack.until_status(case_id, "closed")
    assert closed["outcome"] == "support_provided"
    assert set(closed["status_times"]) >= {
        "received",
        "assessed",
        "ready_for_routing",
        "offered",
        "accepted",
        "closed",
    }
    # The referrer follows it without seeing the assessment.
    progress = stack.call(
        "GET", "referrals", f"/v1/referrals/{created['referral_id']}", stack.caseworker
    )
    assert progress["case_status"] == "closed" and "assessment" not in progress


def test_a_food_bank_referral_joins_the_case_the_council_has(stack: Stack) -> None:
    council = stack.call(
        "POST",
        "referrals",
        "/v1/referrals",
        stack.caseworker,
        expect=201,
        json=referral("Chidi", ["digital_inclusion"]),
    )
    food_bank = stack.call(
        "POST",
        "referrals",
        "/v1/referrals",
        stack.token("e2e-food-bank", OrganisationKind.VCS, Role.REFERRER),
        expect=201,
        json=referral("chidi", ["food"], council=NEWHAM),
    )
    # The food bank learns nothing of the council's case (no id, no status): its referral
    # joining the case shows on the council's side only.
    assert set(food_bank) == {"referral_id", "sharing"}
    case = stack.case(council["case_id"])
    assert [r["referrer_org"] for r in case["referrals"]] == [NEWHAM, "e2e-food-bank"]


def test_a_decline_and_an_expiry_hand_on_and_then_the_council_sees_why(stack: Stack) -> None:
    first = stack.add_partner("fuel-poverty-action", ["fuel_and_utilities"])
    second = stack.add_partner("warm-homes-hub", ["fuel_and_utilities", "housing"])
    case_id = stack.call(
        "POST",
        "referrals",
        "/v1/referrals",
        stack.caseworker,
        expect=201,
        json=referral("Dami", ["fuel_and_utilities"], urgency="low"),
    )["case_id"]
    offer = stack.offered_to(first)
    stack.call(
        "POST",
        "partners",
        f"/v1/inbox/offers/{offer['id']}/decline",
        stack.partner(first),
        expect=204,
        json={"reason": "no_capacity"},
    )
    assert stack.inbox(first) == []
    stack.offered_to(second)  # …which nobody answers in time
    unroutable = stack.until_status(case_id, "unroutable")
    assert "already been offered this case" in unroutable["unroutable_reasons"][0]
    offers = {o["partner_id"]: o["status"] for o in unroutable["offers"]}
    assert offers == {first: "declined", second: "expired"}
    queue = stack.call("GET", "referrals", "/v1/cases?status=unroutable", stack.caseworker)
    assert case_id in [item["id"] for item in queue["items"]]


def test_a_signal_feed_flags_a_resident_consent_is_recorded_and_the_case_is_routed(
    stack: Stack,
) -> None:
    housing = stack.add_partner("newham-housing-advice", ["housing"], kind="housing")
    observed = (date.today() - timedelta(days=2)).isoformat()
    feed = (
        "type,council,given_name,family_name,date_of_birth,postcode,source,observed_on,"
        "notice_type,notice_date\n"
        f"eviction_notice,{NEWHAM},Efe,Okonkwo,1990-01-20,E16 1AB,newham-housing,"
        f"{observed},section_21,{observed}\n"
    )
    report = stack.call(
        "POST",
        "risk",
        "/v1/signals/import",
        {
            **stack.token(NEWHAM, OrganisationKind.COUNCIL, Role.DATA_FEED),
            "content-type": "text/csv",
        },
        content=feed.encode(),
    )
    assert report["flagged"] == 1

    def outreach() -> list[dict[str, Any]]:
        items = stack.call("GET", "referrals", "/v1/cases?origin=flag", stack.caseworker)["items"]
        return [i for i in items if i["resident_name"] == "Efe Okonkwo"]

    case_id = stack.until(outreach, "an outreach case")[0]["id"]
    case = stack.case(case_id)
    assert (case["status"], case["lawful_basis"]) == ("awaiting_consent", "public_task")
    assert case["assessment"]["level"] == "crisis"
    stack.call(
        "POST",
        "referrals",
        f"/v1/cases/{case_id}/consent",
        stack.caseworker,
        json={
            "given_by": "the resident",
            "method": "verbal",
            "given_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            "partner_kinds": ["housing"],
            "needs": ["housing"],
        },
    )
    offer = stack.offered_to(housing)
    assert offer["case_id"] == case_id and offer["packet"]["first_name"] == "Efe"


def test_consent_withdrawn_mid_flow_withdraws_offers_and_partners_lose_access(
    stack: Stack,
) -> None:
    befriending = stack.add_partner("newham-befriending", ["social_isolation"], kind="community")
    case_id = stack.call(
        "POST",
        "referrals",
        "/v1/referrals",
        stack.caseworker,
        expect=201,
        json=referral("Femi", ["social_isolation"]),
    )["case_id"]
    offer = stack.offered_to(befriending)
    stack.call(
        "POST",
        "referrals",
        f"/v1/cases/{case_id}/consent/withdraw",
        stack.caseworker,
        json={"reason": "the resident asked us to stop"},
    )
    stack.until(lambda: stack.inbox(befriending) == [] or None, "the offer to disappear")
    stack.call(
        "GET", "partners", f"/v1/inbox/offers/{offer['id']}", stack.partner(befriending), expect=404
    )
    case = stack.until(
        lambda: (
            (c := stack.case(case_id))["offers"] and c["offers"][0]["status"] == "withdrawn" and c
        ),
        "the withdrawal",
    )
    assert case["status"] == "awaiting_consent"
