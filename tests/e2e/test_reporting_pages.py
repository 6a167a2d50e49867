"""The council's reporting pages in a real browser: Playwright for Python driving Debian's
Chromium against the referrals app served by uvicorn on a real, migrated database, its
reporting model written by its real ``referrals-reporting`` consumer group from real events
on the broker (the day the reporting model's own tests send:
tests/integration/referrals/test_reporting.py).

A manager signs in by pasting a token into the form; every figure the pages show equals the
JSON API's for the same filters; a filter is applied; a CSV link is followed and its file
equals the API's CSV; bad filters are errors on the page naming the field; another
council's page is refused; a bearer header (a council's SSO proxy) also admits. Every page
passes axe-core with no violation at all; screenshots go to tests/artifacts/screens/
(``reports-*.png``).

No browser here: the tests skip, saying so; under CI=true they fail instead."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from devtools.embedded import free_port
from services.referrals.bootstrap import SERVICE
from services.referrals.reporting_handlers import REPORTING_GROUP
from services.referrals.settings import ReferralsSettings
from shared.auth import OrganisationKind, Role, mint_token
from shared.events.envelope import utc_now
from shared.events.payloads import RuleReach, RulesetDryRunCompleted
from shared.http import create_app
from shared.vocabulary import RiskLevel
from tests.e2e.browser import Checked, launched_browser, new_page
from tests.integration.messaging_helpers import wait_for
from tests.integration.referrals.conftest import module_database, unique_council
from tests.integration.referrals.reporting_world import (
    RULESET,
    Day,
    a_day,
    expected_outcomes,
    observed_outcomes,
    period,
    send,
)
from tests.support.infrastructure import Broker
from tests.support.services import publisher, running_consumer

pytestmark = pytest.mark.e2e

TABLES = {
    "outcomes": [
        "referrals_by_source_and_need",
        "referrals_by_source",
        "durations",
        "offer_responses",
        "outcomes_by_need_and_partner",
        "needs_by_area",
        "repeat_referrals",
        "partner_load",
    ],
    "rules": ["rules", "assessment_levels", "dry_runs", "dry_run_levels"],
    "reach": ["reach"],
}


def dry_run_of(council: str) -> RulesetDryRunCompleted:
    """A dry run of a candidate for the day's council, against the day's ruleset in force:
    the rules table's ``dry_runs`` shows it beside the day's flags of the same rules."""
    return RulesetDryRunCompleted(
        council=council,
        candidate_version="earlier-help@e2e",
        in_force_version=RULESET,
        ran_at=utc_now().replace(microsecond=0) - timedelta(minutes=5),
        residents=40,
        residents_changing_level=6,
        levels_in_force={RiskLevel.NONE: 30, RiskLevel.LOW: 6, RiskLevel.HIGH: 4},
        levels_candidate={RiskLevel.NONE: 28, RiskLevel.LOW: 4, RiskLevel.HIGH: 8},
        rules=[
            RuleReach(rule_id="arrears", in_force=4, candidate=7),
            RuleReach(rule_id="fuel", in_force=2, candidate=1),
        ],
    )


@dataclass
class Served:
    base: str
    council: str
    other: str
    settings: ReferralsSettings
    http: httpx.AsyncClient
    day: Day

    def token(
        self,
        role: Role = Role.MANAGER,
        council: str | None = None,
        kind: OrganisationKind = OrganisationKind.COUNCIL,
    ) -> str:
        organisation = "operator" if kind is OrganisationKind.OPERATOR else council or self.council
        return mint_token(
            self.settings,
            subject="a-service-manager",
            name="Sam Manager",
            organisation=organisation,
            kind=kind,
            roles=[role],
        )

    def bearer(self, *args: Any, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*args, **kwargs)}"}

    async def api(self, name: str, query: dict[str, str] | None = None) -> dict[str, Any]:
        response = await self.http.get(
            f"{self.base}/v1/reports/{self.council}/{name}",
            params=query or {},
            headers=self.bearer(),
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def api_csv(self, name: str, table: str, query: dict[str, str]) -> str:
        response = await self.http.get(
            f"{self.base}/v1/reports/{self.council}/{name}",
            params={**query, "format": "csv", "table": table},
            headers=self.bearer(),
        )
        assert response.status_code == 200, response.text
        return response.text


@pytest.fixture(scope="module")
async def served(postgres_admin_url: str, kafka: Broker) -> AsyncIterator[Served]:
    council, other = unique_council(), unique_council()
    async with module_database(postgres_admin_url) as url:
        settings = ReferralsSettings(database_url=SecretStr(url), councils=[council, other])
        app = create_app(SERVICE, settings)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:  # uvicorn offers a flag, not an event
            assert not serving.done(), "the referrals app did not start"
            await asyncio.sleep(0.05)
        # Only the reporting consumer group: the figures come from its projection.
        (spec,) = [c for c in SERVICE.consumers if c.group_id == REPORTING_GROUP]
        reporting_only = dataclasses.replace(SERVICE, consumers=[spec])
        try:
            async with (
                running_consumer(reporting_only, app.state.engine, settings, kafka),
                publisher(kafka.bootstrap_servers) as sender,
                httpx.AsyncClient(timeout=30) as http,
            ):
                day = a_day(council, settings.resident_key_secret.get_secret_value())
                world = Served(f"http://127.0.0.1:{port}", council, other, settings, http, day)
                await send(sender, day)
                await sender.send(dry_run_of(council), subject=council)

                async def caught_up() -> bool:
                    report = await world.api("outcomes", period(day))
                    dry_runs = (await world.api("rules"))["dry_runs"]
                    return observed_outcomes(report) == expected_outcomes(day) and bool(dry_runs)

                await wait_for(caught_up, timeout=90, interval=0.3, what="the reporting model")
                yield world
        finally:
            server.should_exit = True
            await serving


@pytest.fixture(scope="module")
async def browser(served: Served) -> AsyncIterator[Any]:
    async with launched_browser() as launched:
        yield launched


# -- reading the pages back ------------------------------------------------------------------


async def axe_clean(checked: Checked, label: str) -> None:
    """No axe-core violation of any impact (stricter than Checked.axe's serious-or-worse)."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(checked.page)
    bad = [f"{v['id']} ({v['impact']}): {v['help']}" for v in results.response["violations"]]
    assert not bad, f"{label}: {bad}"
    checked.checked.append(label)


async def shown_tables(page: Any) -> dict[str, list[dict[str, str]]]:
    """Every table's rows as the page shows them, by the report table it shows (the reach
    page shows one report table in three parts: their rows together)."""
    found: list[tuple[str, list[dict[str, str]]]] = await page.evaluate(
        """() => [...document.querySelectorAll('table[data-table]')].map(t => [
            t.dataset.table,
            [...t.querySelectorAll('tbody tr')].map(tr => Object.fromEntries(
                [...tr.querySelectorAll('td[data-field]')].map(
                    td => [td.dataset.field, td.textContent.trim()])))])"""
    )
    tables: dict[str, list[dict[str, str]]] = {}
    for key, rows in found:
        tables.setdefault(key, []).extend(rows)
    return tables


async def shown_headlines(page: Any) -> dict[str, str]:
    found: dict[str, str] = await page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('[data-figure]')].map(
            d => [d.dataset.figure, d.querySelector('dd').textContent.trim()]))"""
    )
    return found


def same_figure(text: str, value: Any) -> bool:
    """A cell's text is the API's value: none for null, shares as percentages, codes as
    words."""
    if value is None:
        return text == "none"
    if isinstance(value, bool):
        return text == ("yes" if value else "no")
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-][\d:]+)", value):
        # A time (a dry run's): the page shows it in London, to the minute.
        shown = datetime.fromisoformat(value).astimezone(ZoneInfo("Europe/London"))
        return text == shown.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, int | float):
        if text.endswith("%"):
            return abs(float(text[:-1]) / 100 - value) < 0.0005
        return float(text) == value
    return text in (str(value), str(value).replace("_", " "))


def assert_tables_match(shown: dict[str, list[dict[str, str]]], report: dict[str, Any]) -> None:
    for key, rows in shown.items():
        expected = report[key]
        if key == "reach":  # the page's sections: age band, language, area
            order = {"age_band": 0, "language": 1, "area": 2}
            expected = sorted(expected, key=lambda r: order[r["dimension"]])
        assert len(rows) == len(expected), f"{key}: {len(rows)} rows shown, {len(expected)}"
        for row, want in zip(rows, expected, strict=True):
            for field_name, text in row.items():
                assert same_figure(text, want[field_name]), (key, field_name, text, want)


def expected_headlines(report: dict[str, Any]) -> dict[str, Any]:
    """The outcome page's headline figures, counted from the API's JSON."""
    (repeats,) = report["repeat_referrals"]
    durations = {d["measure"]: d for d in report["durations"]}
    return {
        "referrals": repeats["referrals"],
        "residents": repeats["residents"],
        "offers": sum(r["offers"] for r in report["offer_responses"]),
        "accepted": sum(
            r["offers"] for r in report["offer_responses"] if r["response"] == "accepted"
        ),
        "helped": sum(
            r["offers"]
            for r in report["outcomes_by_need_and_partner"]
            if r["outcome"] in ("support_provided", "partly_resolved")
        ),
        "median_hours_to_first_offer": durations["time_to_first_offer"]["median_hours"],
        "needs_met": sum(a["met"] for a in report["needs_by_area"]),
        "repeat_share": repeats["share"],
    }


async def assert_page_matches_api(page: Any, served: Served, name: str) -> dict[str, Any]:
    """The page's tables (and headlines) equal the API's report for the page's filters."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    report = await served.api(name, query)
    shown = await shown_tables(page)
    assert set(shown) <= set(TABLES[name])
    assert shown, f"{name}: no table shown"
    assert_tables_match(shown, report)
    if name == "outcomes":
        headlines = await shown_headlines(page)
        for key, value in expected_headlines(report).items():
            assert same_figure(headlines[key], value), (key, headlines[key], value)
    # A CSV link for every table of the report.
    links = await page.locator("a.download").evaluate_all("els => els.map(e => e.href)")
    tables = {re.sub(r"\.csv$", "", urlsplit(href).path.rsplit("/", 1)[1]) for href in links}
    assert tables == set(TABLES[name])
    return report


# -- the tests -------------------------------------------------------------------------------


async def test_a_manager_signs_in_and_reads_the_same_figures_as_the_api(
    served: Served, browser: Any
) -> None:
    council = served.council
    checked = await new_page(browser)
    page = checked.page

    # Not signed in: the sign-in page, which knows where to go back to.
    await page.goto(f"{served.base}/reports/{council}/rules")
    await page.wait_for_url(re.compile(r".*/reports/sign-in\?next=.*"))
    await axe_clean(checked, "sign-in")
    await checked.shot("reports-sign-in")

    # A token that is not one, and one without a reader's role: errors on the form.
    await page.get_by_label("Access token").fill("not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_text("The access token was refused").first.wait_for()
    await axe_clean(checked, "sign-in: refused")
    await page.get_by_label("Access token").fill(served.token(Role.CASEWORKER))
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_text("does not allow reading reports").first.wait_for()

    await page.get_by_label("Access token").fill(served.token())
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{served.base}/reports/{council}/rules")
    (session,) = [c for c in await page.context.cookies() if c["name"] == "upstream_reports"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert session["path"] == "/reports"

    # Rule evaluation: the table, the flag -> help conversion chart, the levels.
    await assert_page_matches_api(page, served, "rules")
    conversion = page.locator("svg#chart-conversion")
    assert "conversion" in (await conversion.locator("title").first.text_content() or "").lower()
    assert await conversion.locator("rect").count() == len((await served.api("rules"))["rules"])
    # Beside it, the dry run: each rule's reach under the ruleset in force and the candidate.
    assert await page.locator("svg#chart-dry-run rect").count() == 2 * 2
    assert await page.locator("table[data-table=dry_runs] tbody tr").count() == 2
    await axe_clean(checked, "rules")
    await checked.shot("reports-rules")

    # The nav: outcomes, then reach.
    await (
        page.get_by_role("navigation", name="Reports").get_by_role("link", name="Outcomes").click()
    )
    await page.wait_for_url(f"{served.base}/reports/{council}")
    report = await assert_page_matches_api(page, served, "outcomes")
    assert report["offer_responses"] and report["partner_load"]  # the day fills them
    assert await page.locator("svg.chart[role=img]").count() == len(TABLES["outcomes"])
    await axe_clean(checked, "outcomes")
    await checked.shot("reports-outcomes")

    await page.get_by_role("navigation", name="Reports").get_by_role("link", name="Reach").click()
    await page.wait_for_url(f"{served.base}/reports/{council}/reach")
    reach = await assert_page_matches_api(page, served, "reach")
    gaps = await shown_headlines(page)
    area_rows = [r for r in reach["reach"] if r["dimension"] == "area"]
    assert int(gaps["flagged_no_consent"]) == sum(r["flagged_no_consent"] for r in area_rows) > 0
    assert int(gaps["flagged_no_offer"]) == sum(r["flagged_no_offer"] for r in area_rows)
    await axe_clean(checked, "reach")
    await checked.shot("reports-reach")

    # A filter: the day's period, one area, one need; the figures follow, and the nav keeps
    # the filters.
    await (
        page.get_by_role("navigation", name="Reports").get_by_role("link", name="Outcomes").click()
    )
    day = period(served.day)
    filters = page.get_by_role("group", name="Filter the figures")
    await filters.get_by_label("From").fill(day["from"])
    await filters.get_by_label("To", exact=True).fill(day["to"])
    await filters.get_by_label("Area").fill("e15")
    await filters.get_by_label("Need").select_option("food")
    await page.get_by_role("button", name="Apply filters").click()
    await page.wait_for_url(re.compile(r".*/reports/.*\?.*area=e15.*need=food"))
    filtered = await assert_page_matches_api(page, served, "outcomes")
    assert {r["area"] for r in filtered["needs_by_area"]} == {"E15"}
    assert {r["need"] for r in filtered["referrals_by_source_and_need"]} == {"food"}
    assert "area E15" in await page.locator("#period").inner_text()
    await axe_clean(checked, "outcomes: filtered")
    await checked.shot("reports-outcomes-filtered")
    rules_link = page.get_by_role("navigation", name="Reports").get_by_role(
        "link", name="Rule evaluation"
    )
    assert "need=food" in (await rules_link.get_attribute("href") or "")

    # A CSV link followed: the file is the API's CSV of the same table and filters.
    async with page.expect_download() as downloading:
        await page.get_by_role("link", name=re.compile(r"^Download CSV\W+Offers accepted")).click()
    download = await downloading.value
    assert download.suggested_filename.endswith(".csv")
    text = (await asyncio.to_thread(Path(await download.path()).read_bytes)).decode()
    query = {**day, "area": "e15", "need": "food"}
    assert text == await served.api_csv("outcomes", "offer_responses", query)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {(r["response"], r["reason"]): int(r["offers"]) for r in rows} == {
        (r["response"], r["reason"]): r["offers"] for r in filtered["offer_responses"]
    }

    # Bad filters: the page says which field and why, never a 500.
    response = await page.goto(f"{served.base}/reports/{council}?area=Q&need=pizza")
    assert response is not None and response.status == 422
    summary = await page.get_by_role("alert").inner_text()
    assert "Area must be a postcode district" in summary and "Need must be one of" in summary
    await axe_clean(checked, "outcomes: bad filters")
    await checked.shot("reports-filter-error")
    response = await page.goto(
        f"{served.base}/reports/{council}/reach?from=2026-11-30&to=2026-11-01"
    )
    assert response is not None and response.status == 422
    assert (
        "From: the period's start is after its end" in await page.get_by_role("alert").inner_text()
    )
    await axe_clean(checked, "reach: bad period")

    # Another council's pages: not found, as its cases are.
    for path in ("", "/rules", "/reach", "/outcomes/durations.csv"):
        response = await page.goto(f"{served.base}/reports/{served.other}{path}")
        assert response is not None and response.status == 404, path
    await page.get_by_role("heading", name="Page not found").wait_for()
    await axe_clean(checked, "another council")
    await checked.shot("reports-other-council")

    # Signing out ends the session: the pages ask to sign in again.
    await page.goto(f"{served.base}/reports/{council}")
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_text("You have signed out.").wait_for()
    await axe_clean(checked, "signed out")
    await page.goto(f"{served.base}/reports/{council}")
    await page.wait_for_url(re.compile(r".*/reports/sign-in\?next=.*"))


async def test_a_bearer_header_admits_the_apis_readers_only(served: Served) -> None:
    """As a council's SSO proxy sends it: the same principals as the API's reports."""
    page_url = f"{served.base}/reports/{served.council}"
    http = served.http
    manager = await http.get(page_url, headers=served.bearer())
    assert manager.status_code == 200 and manager.headers["content-type"].startswith("text/html")
    assert "Content-Security-Policy" in manager.headers
    ig = await http.get(page_url + "/rules", headers=served.bearer(Role.INFORMATION_GOVERNANCE))
    assert ig.status_code == 200
    operator = served.bearer(Role.OPERATOR, kind=OrganisationKind.OPERATOR)
    assert (await http.get(page_url + "/reach", headers=operator)).status_code == 200
    listing = await http.get(f"{served.base}/reports", headers=operator)
    assert f'href="/reports/{served.council}"' in listing.text
    home = await http.get(f"{served.base}/reports", headers=served.bearer())
    assert home.status_code == 303 and home.headers["location"] == f"/reports/{served.council}"

    caseworker = await http.get(page_url, headers=served.bearer(Role.CASEWORKER))
    assert caseworker.status_code == 403
    other = await http.get(page_url, headers=served.bearer(council=served.other))
    assert other.status_code == 404
    expired = mint_token(
        served.settings,
        subject="m",
        organisation=served.council,
        kind=OrganisationKind.COUNCIL,
        roles=[Role.MANAGER],
        now=utc_now() - timedelta(days=2),
    )
    refused = await http.get(page_url, headers={"Authorization": f"Bearer {expired}"})
    assert refused.status_code == 401 and "expired" in refused.text
    nobody = await http.get(page_url)
    assert nobody.status_code == 303
    assert nobody.headers["location"] == f"/reports/sign-in?next=/reports/{served.council}"

    # The CSV route, with the header too; an unknown table is not found.
    csv_url = f"{page_url}/rules/rules.csv"
    got = await http.get(csv_url, headers=served.bearer())
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert got.text == await served.api_csv("rules", "rules", {})
    assert (
        await http.get(f"{page_url}/rules/nonsense.csv", headers=served.bearer())
    ).status_code == 404


async def test_the_sign_in_form_needs_its_csrf_cookie_and_goes_nowhere_else(
    served: Served,
) -> None:
    async with httpx.AsyncClient(base_url=served.base) as browserless:  # a cookie jar of its own
        forged = await browserless.post(
            "/reports/sign-in", data={"token": served.token(), "csrf": "forged"}
        )
        assert forged.status_code == 403
        assert "upstream_reports=" not in forged.headers.get("set-cookie", "")
        # A next that leaves the reports is dropped (no open redirect).
        form = await browserless.get("/reports/sign-in?next=//evil.example/")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None and 'name="next" value=""' in form.text
        signed = await browserless.post(
            "/reports/sign-in",
            data={"token": served.token(), "csrf": csrf.group(1), "next": "https://evil.example/"},
        )
        assert signed.status_code == 303
        assert signed.headers["location"] == f"/reports/{served.council}"
        assert "upstream_reports=" in signed.headers["set-cookie"]
