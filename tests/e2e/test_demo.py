"""`make demo`, as the README says, at a small scale: it finishes, prints its tables and the
addresses to open, and what it reports adds up (each number is read from the services' APIs:
here they must agree with each other).

While its stack is still up (the demo's ``show`` step, where ``make demo`` prints): the
reporting model's figures for each council equal a count over the operational APIs (every
case, its referrals, needs and offers); then the referrals worker is stopped, more households'
signals flag residents while it is down, and once it is started again the reporting model
has caught up from those events: the figures are equal again, with the new outreach cases.
The month's open statistics are exported with ``upstream open-statistics`` from the same
stack and validate.
The demo runs in this process (``devtools.demo``, as ``make demo`` calls it) so the test can
reach its stack; the printout is recorded from the same ``show_summary``."""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from frictionless import validate
from rich.console import Console
from typer.testing import CliRunner

from devtools.cli import app
from devtools.demo import Demo, DemoStack, manager_token, show_summary
from services.referrals.domain.reporting import NEED_STATES
from shared.auth import OrganisationKind, Role, mint_token
from shared.settings import AuthSettings
from tests.conftest import REPO
from tests.support.ports import stack_ports_held

pytestmark = pytest.mark.e2e

COUNCILS = ("E09000025", "E09000012")
DEFAULT_RULES = {
    rule["id"]
    for rule in yaml.safe_load((REPO / "services/risk/rulesets/default.yaml").read_text())["rules"]
}
# A need's status in the operational API, as the reporting model names where it stands.
AS_REPORTED = {
    "met": "met",
    "not_met": "not_met",
    "unroutable": "unroutable",
    "waiting_for_capacity": "waiting",
    "closed": "closed",
    "withdrawn": "withdrawn",
}
ACCEPTED = {"accepted", "in_progress", "outcome_recorded"}


class Figures:
    """One council's figures, from the reporting model or counted over the APIs."""

    def __init__(self) -> None:
        self.referrals: Counter[tuple[str, str]] = Counter()  # (source, need)
        self.offers: Counter[tuple[str, str]] = Counter()  # (response, reason)
        self.needs: Counter[str] = Counter()  # where each need stands
        self.outcomes: Counter[tuple[str, str, str]] = Counter()  # (need, partner, outcome)
        self.outreach_cases = 0

    def as_dict(self) -> dict[str, Any]:
        # Unary plus drops zero counts: a report's row of zeros counts nothing.
        return {
            "referrals": dict(+self.referrals),
            "offers": dict(+self.offers),
            "needs": dict(+self.needs),
            "outcomes": dict(+self.outcomes),
        }


def operator(auth: AuthSettings) -> dict[str, str]:
    token = mint_token(
        auth,
        subject="test-operator",
        organisation="operator",
        kind=OrganisationKind.OPERATOR,
        roles=[Role.OPERATOR],
    )
    return {"Authorization": f"Bearer {token}"}


def counted_over_the_apis(http: httpx.Client, url: str, auth: AuthSettings) -> dict[str, Figures]:
    """Every case (paged), each with its referrals, needs and offers: the counts the
    reporting model should give."""
    headers = operator(auth)
    cases: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = http.get(f"{url}/v1/cases", headers=headers, params=params).json()
        cases += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    figures = {council: Figures() for council in COUNCILS}
    for case in cases:
        mine = figures[case["council"]]
        detail = http.get(f"{url}/v1/cases/{case['id']}", headers=headers).json()
        if case["origin"] == "flag":
            mine.outreach_cases += 1
            mine.referrals.update(("flag", need) for need in case["needs"])
        for referral in detail["referrals"]:
            mine.referrals.update((referral["referrer_kind"], n) for n in referral["needs"])
        for status in case["need_statuses"].values():
            mine.needs[AS_REPORTED.get(status, "in_progress")] += 1
        for offer in detail["offers"]:
            if offer["status"] in ACCEPTED:
                mine.offers[("accepted", "")] += 1
            elif offer["status"] == "declined":
                mine.offers[("declined", offer["decline_reason"] or "unknown")] += 1
            elif offer["status"] == "offered":
                mine.offers[("open", "")] += 1
            else:
                mine.offers[(offer["status"], "")] += 1
            if offer["outcome"]:
                mine.outcomes[(offer["need"], offer["partner_id"], offer["outcome"])] += 1
    return figures


def from_the_reporting_model(
    http: httpx.Client, url: str, auth: AuthSettings
) -> dict[str, Figures]:
    figures = {}
    for council in COUNCILS:
        headers = {"Authorization": f"Bearer {manager_token(auth, council)}"}
        report = http.get(f"{url}/v1/reports/{council}/outcomes", headers=headers).json()
        mine = figures[council] = Figures()
        for row in report["referrals_by_source_and_need"]:
            mine.referrals[(row["source"], row["need"])] += row["referral_needs"]
        for row in report["offer_responses"]:
            mine.offers[(row["response"], row["reason"])] += row["offers"]
        for row in report["needs_by_area"]:
            for state in NEED_STATES:
                mine.needs[state] += row[state]
        for row in report["outcomes_by_need_and_partner"]:
            mine.outcomes[(row["need"], row["partner_id"], row["outcome"])] += row["offers"]
    return figures


def until_equal(
    http: httpx.Client,
    url: str,
    auth: AuthSettings,
    ready: Callable[[dict[str, Figures]], bool] = lambda _: True,
    timeout: float = 90,
) -> dict[str, Figures]:
    """The counts over the APIs once the reporting model (a consumer group of its own, a
    little behind) gives the same, and ``ready`` holds of them."""
    deadline = time.monotonic() + timeout
    while True:
        counted = counted_over_the_apis(http, url, auth)
        reported = from_the_reporting_model(http, url, auth)
        same = all(counted[c].as_dict() == reported[c].as_dict() for c in COUNCILS)
        if same and ready(counted):
            return counted
        if time.monotonic() > deadline:
            for council in COUNCILS:  # shows the difference
                assert reported[council].as_dict() == counted[council].as_dict(), council
            raise AssertionError("the figures are equal, but the stack did not get ready")
        time.sleep(2)


def test_make_demo_finishes_its_summary_adds_up_and_the_reporting_model_agrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo sets how long partners have to answer, for its own stack: undone after.
    monkeypatch.setenv("UPSTREAM_RESPONSE_HOURS", "{}")
    auth = AuthSettings()
    recorded = io.StringIO()
    console = Console(file=recorded, width=200, record=True)
    demo = Demo(referrals=24, households=600, echo=lambda _: None)
    checked: dict[str, Any] = {}

    def show(summary: dict[str, Any], stack: DemoStack) -> None:
        show_summary(console, summary, stack, keep=False, auth=auth)
        url = stack.urls["referrals"]
        with httpx.Client(timeout=60) as http:
            before = until_equal(http, url, auth)
            assert sum(f.offers.total() for f in before.values()) == summary["offers"]
            assert any(f.outcomes for f in before.values())
            # The month's open statistics through the CLI, from this stack's API.
            package = tmp_path / "open-statistics"
            month = date.today().strftime("%Y-%m")
            arguments = ["--council", COUNCILS[0], "--month", month, "--output", str(package)]
            exported = CliRunner().invoke(app, ["open-statistics", *arguments, "--url", url])
            assert exported.exit_code == 0, exported.output
            assert "withheld" in exported.output
            assert validate(str(package / "datapackage.json")).valid

            # The reporting consumer is down while risk flags more residents; started again,
            # it catches up from those events.
            def more_households() -> None:
                demo.household_count = 900
                checked["flagged"] = demo.import_signals()["flagged"]

            assert stack.restart is not None
            stack.restart("referrals-worker", while_stopped=more_households)
            outreach = sum(f.outreach_cases for f in before.values())

            def new_cases_opened(counted: dict[str, Figures]) -> bool:
                return sum(f.outreach_cases for f in counted.values()) > outreach

            after = until_equal(http, url, auth, ready=new_cases_opened)
        checked["before"], checked["after"] = before, after

    with stack_ports_held():  # the demo picks its stack's ports inside
        summary = demo.run(show=show)
    assert checked["flagged"] > 0
    assert sum(f.outreach_cases for f in checked["after"].values()) > sum(
        f.outreach_cases for f in checked["before"].values()
    )

    assert summary["signals"]["rows_read"] == 600 and summary["signals"]["rows_rejected"] == 0
    assert summary["referrals_sent"] == 24
    # Referrals about the same person share a case, so there are at most as many cases.
    assert 0 < summary["cases_from_referrals"] <= 24
    assert summary["cases_by_origin"].get("flag", 0) <= summary["signals"]["flagged"]
    assert sum(summary["cases_by_status"].values()) == summary["cases"]
    assert sum(summary["cases_by_risk_level"].values()) == summary["cases"]
    assert sum(summary["offers_per_partner"].values()) == summary["offers"]
    assert sum(summary["offers_by_status"].values()) == summary["offers"]
    statuses = summary["offers_by_status"]
    assert summary["hand_ons"] == statuses.get("declined", 0) + statuses.get("expired", 0)
    assert summary["offers"] > 0 and statuses.get("outcome_recorded", 0) > 0
    # Nothing is left waiting on a partner once the demo says it is done.
    assert not {"offered", "accepted", "in_progress"} & set(statuses)

    # The councils' parts add up to the whole.
    parts = summary["councils"]
    assert set(parts) == set(COUNCILS)
    assert sum(p["cases"] for p in parts.values()) == summary["cases"]
    assert sum(p["signals"]["flagged"] for p in parts.values()) == summary["signals"]["flagged"]
    for status, count in statuses.items():
        assert sum(p["offers_by_status"].get(status, 0) for p in parts.values()) == count
    for part in parts.values():
        assert sum(part["cases_by_status"].values()) == part["cases"]
        assert sum(sum(by.values()) for by in part["offers_per_partner"].values()) == sum(
            part["offers_by_status"].values()
        )
    assert (
        sum(sum(p["offers_by_status"].values()) for p in summary["partners"]) == summary["offers"]
    )

    # What a person reads: tables, not JSON, then the addresses to open.
    out = console.export_text()
    assert not out.lstrip().startswith("{") and '"cases_by_status"' not in out
    for title in (
        "cases by status",
        "needs by status",
        "offers by partner",
        "the signal feed",
        "offers by response (reporting model)",
        "rule evaluation (flag to help, per rule)",
    ):
        assert f"Newham (E09000025): {title}" in out and f"Hackney (E09000012): {title}" in out
    assert "Partners' load at the end of the day" in out
    # The rule evaluation names the default ruleset's rules, and only those.
    evaluation = out.split("rule evaluation (flag to help, per rule)", 1)[1]
    named = {rule for rule in DEFAULT_RULES if rule in evaluation}
    assert named, evaluation[:2000]
    assert "default" in evaluation
    for council in COUNCILS:
        assert f"/v1/transparency/{council}?format=html" in out
        assert f"/reports/{council}" in out
    assert "/docs" in out and "/inbox" in out and "upstream inbox-link" in out
    assert "make demo KEEP=1" in out  # without --keep the stack stops, and says how to keep it
