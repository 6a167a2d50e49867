"""The month's open statistics from the reporting model, on real events: the
``referrals-reporting`` consumer group on the real broker writes the model, and
``GET /v1/reports/{council}/open-statistics/{month}`` answers with a zipped package that
frictionless validates, whose published counts equal the true ones and never fall between
1 and 9, nor come from 1 to 9 residents, and which the package attacker (linear programming
over every table with the totals they share) cannot narrow.

The day of events is test_reporting's (seven cases in two areas and none, every kind of
response and outcome), sent ten times in the middle of last month, and one referral from a
third area: most counts reach 10, a few stay small (and withhold what would reveal them)."""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from frictionless import validate

from services.referrals.bootstrap import SERVICE
from services.referrals.domain.open_statistics import (
    ALL,
    MARKER,
    PROTECTION,
    THRESHOLD,
    CountTable,
    Dimension,
    ProtectedTable,
    PublishedCell,
)
from services.referrals.service_layer.open_statistics import NEED_STATES, month_links
from services.referrals.settings import ReferralsSettings
from shared.auth import Role
from shared.events.envelope import utc_now
from tests.integration.messaging_helpers import wait_for
from tests.integration.referrals.conftest import module_database, unique_council
from tests.integration.referrals.reporting_world import Case, Day, Reporting, a_day, new_group, send
from tests.support.infrastructure import Broker
from tests.support.services import Publisher, serve
from tests.support.services import publisher as start_publisher
from tests.unit.referrals.open_statistics_attacker import package_bounds

pytestmark = pytest.mark.integration

COPIES = 10


@pytest.fixture(scope="module")
async def service(postgres_admin_url: str, kafka: Broker) -> AsyncIterator[Reporting]:
    async with module_database(postgres_admin_url) as url:
        settings = ReferralsSettings(database_url=url, councils=[])
        async with serve(SERVICE, settings) as (client, engine):
            yield Reporting(client, engine, settings, kafka)


@pytest.fixture(scope="module")
async def sender(kafka: Broker) -> AsyncIterator[Publisher]:
    async with start_publisher(kafka.bootstrap_servers) as publisher:
        yield publisher


def last_month() -> tuple[str, datetime]:
    """Last month (a closed one, as a council publishes), and a time in its middle."""
    first_of_this = utc_now().date().replace(day=1)
    month = (first_of_this - timedelta(days=1)).replace(day=1)
    return month.strftime("%Y-%m"), datetime(month.year, month.month, 14, 9, tzinfo=UTC)


def true_referrals(days: list[Day]) -> Counter[tuple[str, str]]:
    """Referral needs by (need, source), counted from the events sent: the referrer's kind,
    or ``flag`` for an outreach case."""
    counts: Counter[tuple[str, str]] = Counter()
    for day in days:
        for case in day.cases:
            for need in case.needs:
                counts[(need, case.source or "flag")] += 1
    return counts


def true_people(days: list[Day]) -> dict[str, dict[tuple[str, str], set[str]]]:
    """The residents behind each cell of the referrals and outcomes tables, from the events
    sent (by resident key; the model knows them by reference)."""
    referrals: dict[tuple[str, str], set[str]] = {}
    outcomes: dict[tuple[str, str], set[str]] = {}
    for day in days:
        for case in day.cases:
            for need in case.needs:
                referrals.setdefault((need, case.source or "flag"), set()).add(case.resident_key)
            for offer in case.offers:
                if offer.outcome:
                    outcomes.setdefault((offer.need, offer.outcome), set()).add(case.resident_key)
    return {"referrals_by_need_and_source": referrals, "outcomes_by_need": outcomes}


def people_with_margins(cells: dict[tuple[str, str], set[str]]) -> Counter[tuple[str, str]]:
    """Distinct residents of each cell and margin (a margin's: the union of its cells')."""
    lines: dict[tuple[str, str], set[str]] = {}
    for (row, column), residents in cells.items():
        for at in ((row, column), (row, ALL), (ALL, column), (ALL, ALL)):
            lines.setdefault(at, set()).update(residents)
    return Counter({at: len(residents) for at, residents in lines.items()})


def as_published(
    rows: list[dict[str, str]], name: str, truth: Counter[tuple[str, str]], fields: tuple[str, str]
) -> ProtectedTable:
    """A package's table as the attacker sees it, beside the true counts (the attacker
    check's worst case: it knows how the shared totals differ)."""
    row_field, column_field = fields
    row_labels = tuple(dict.fromkeys(r[row_field] for r in rows if r[row_field] != ALL))
    column_labels = tuple(dict.fromkeys(r[column_field] for r in rows if r[column_field] != ALL))
    table = CountTable(
        name=name,
        title=name,
        description=name,
        rows=Dimension(row_field),
        columns=Dimension(column_field),
        row_labels=row_labels,
        column_labels=column_labels,
        counts={(r, c): truth[(r, c)] for r in row_labels for c in column_labels if truth[(r, c)]},
    )
    return ProtectedTable(
        table,
        tuple(
            PublishedCell(
                r[row_field], r[column_field], int(r["value"]) if r["value"] else None, None
            )
            for r in rows
        ),
    )


def with_margins(cells: Counter[tuple[str, str]]) -> Counter[tuple[str, str]]:
    counts = Counter(cells)
    for (row, column), count in cells.items():
        counts[(row, ALL)] += count
        counts[(ALL, column)] += count
        counts[(ALL, ALL)] += count
    return counts


def read_package(archive: bytes, folder: Path) -> dict[str, list[dict[str, str]]]:
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        opened.extractall(folder)
    return {
        path.stem: list(csv.DictReader(path.open(newline="", encoding="utf-8")))
        for path in sorted(folder.glob("*.csv"))
    }


async def test_a_months_export_validates_and_publishes_no_small_count(
    service: Reporting, sender: Publisher, tmp_path: Path
) -> None:
    council = unique_council()
    service.settings.councils.append(council)
    secret = service.settings.resident_key_secret.get_secret_value()
    month, middle = last_month()
    days = [
        replace(a_day(council, secret), start=middle + timedelta(hours=copy))
        for copy in range(COPIES)
    ]
    days.append(Day(council, middle, [Case("council", ["food"], 40, "E12", "en", True)]))
    referred = sum(len(c.needs) for d in days for c in d.cases)
    first = middle.date().replace(day=1)
    period = {"from": str(first), "to": str(middle.date() + timedelta(days=3))}

    async with service.consumer(new_group()):
        for day in days:
            await send(sender, day)

        async def caught_up() -> dict[str, Any] | None:
            report = (await service.report(council, "outcomes", period)).json()
            counted = sum(r["referral_needs"] for r in report["referrals_by_source_and_need"])
            outcomes = sum(r["offers"] for r in report["outcomes_by_need_and_partner"])
            return report if counted == referred and outcomes == 3 * COPIES else None

        model = await wait_for(caught_up, timeout=90, interval=0.3, what="the reporting model")

    response = await service.client.get(
        f"/v1/reports/{council}/open-statistics/{month}", headers=service.token(council)
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    tables = read_package(response.content, tmp_path)
    report = validate(str(tmp_path / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    assert set(tables) == {
        "referrals_by_need_and_source",
        "needs_by_area_and_status",
        "outcomes_by_need",
    }

    # The true counts, each table's cells and margins: from the events sent (referrals) and
    # from the reporting API's JSON for the month (needs and outcomes).
    needs: Counter[tuple[str, str]] = Counter()
    for row in model["needs_by_area"]:
        for state in NEED_STATES:
            needs[(row["area"], state)] += row[state]
    outcomes: Counter[tuple[str, str]] = Counter()
    for row in model["outcomes_by_need_and_partner"]:
        outcomes[(row["need"], row["outcome"])] += row["offers"]
    truth = {
        "referrals_by_need_and_source": with_margins(true_referrals(days)),
        "needs_by_area_and_status": with_margins(needs),
        "outcomes_by_need": with_margins(outcomes),
    }
    positions = {
        "referrals_by_need_and_source": ("need", "measure"),
        "needs_by_area_and_status": ("area", "measure"),
        "outcomes_by_need": ("need", "measure"),
    }
    people = {name: people_with_margins(cells) for name, cells in true_people(days).items()}
    published = withheld = 0
    for name, rows in tables.items():
        row_field, column_field = positions[name]
        for row in rows:
            at = (row[row_field], row[column_field])
            if name in people and 0 < people[name][at] < THRESHOLD:
                assert row["marker"] == MARKER, (name, row, "residents", people[name][at])
            assert row["month"] == month and row["council"] == council
            true = truth[name][(row[row_field], row[column_field])]
            if row["marker"] == MARKER:
                assert row["value"] == ""
                withheld += 1
            else:
                # Published: the true count, and never a small one.
                assert row["value"] == str(true), (name, row)
                assert true == 0 or true >= THRESHOLD, (name, row)
                published += true > 0
            if 0 < true < THRESHOLD:
                assert row["marker"] == MARKER, (name, row)
    assert published and withheld  # the data held both kinds
    # 20 needs of food referred by council staff come from 10 residents (each referred
    # twice) and one more: 11 residents, published.
    assert people["referrals_by_need_and_source"][("food", "council")] == COPIES + 1

    # The attacker, over the whole package with the totals its tables share.
    package = [
        as_published(rows, name, truth[name], positions[name]) for name, rows in tables.items()
    ]
    links = month_links([p.table for p in package])
    assert links  # the grand totals, and the needs' totals of referrals and outcomes
    for (name, row, column), (low, high) in package_bounds(package, links).items():
        true = truth[name][(row, column)]
        assert low - 1e-6 <= true <= high + 1e-6, (name, row, column)
        assert high - low >= PROTECTION - 1e-6, (name, row, column, true, low, high)
    by_name = {p.table.name: p for p in package}
    for link in links:  # a shared total is published in every table or in none
        assert len({by_name[n].cell(r, c).value is None for n, r, c in link}) == 1
    needs_by_area = {(r["area"], r["measure"]): r for r in tables["needs_by_area_and_status"]}
    assert needs_by_area[("E12", "in_progress")]["marker"] == MARKER  # 1: withheld
    assert needs_by_area[("E15", "met")]["value"] == str(COPIES)  # 10: published
    referrals = {(r["need"], r["measure"]): r for r in tables["referrals_by_need_and_source"]}
    assert referrals[("food", "council")]["value"] == str(2 * COPIES + 1)
    assert referrals[(ALL, ALL)]["value"] == str(referred)


async def test_the_export_is_the_councils_own_and_refuses_a_bad_month(
    service: Reporting,
) -> None:
    council, other = unique_council(), unique_council()
    month, _ = last_month()
    path = f"/v1/reports/{council}/open-statistics"
    others = await service.client.get(f"{path}/{month}", headers=service.token(other))
    assert others.status_code == 404, others.text
    caseworker = await service.client.get(
        f"{path}/{month}", headers=service.token(council, Role.CASEWORKER)
    )
    assert caseworker.status_code == 403
    ig = await service.client.get(
        f"{path}/{month}", headers=service.token(council, Role.INFORMATION_GOVERNANCE)
    )
    # A month with nothing in it is still a package: every count a published zero.
    assert ig.status_code == 200 and ig.headers["content-type"] == "application/zip"
    next_year = date.today().year + 1
    for bad in ("2026-13", "2026-1", "November", f"{next_year}-01"):
        response = await service.client.get(f"{path}/{bad}", headers=service.token(council))
        assert response.status_code == 422, (bad, response.text)
        assert "month" in response.text
