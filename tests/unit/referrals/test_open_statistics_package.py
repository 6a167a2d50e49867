"""The open-statistics export: tidy CSVs and a datapackage.json that frictionless validates
(every field's type and constraints checked against every row), withheld counts marked
[c] with an empty value, the licence, source and method stated, bad input refused, and a
folder holding files refused (they would be uploaded with the package)."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from frictionless import Package, validate

from devtools.open_statistics import export
from services.referrals.domain.open_statistics import ALL, MARKER, CountTable, Dimension
from services.referrals.service_layer.open_statistics import write_open_statistics

NEWHAM = "E09000025"
AREAS = ("E13", "E15", "E6", "E7")


def referrals_by_area_and_need() -> CountTable:
    grid = {
        "E13": {"food": 14, "housing": 3, "money_and_debt": 22},
        "E15": {"food": 31, "housing": 12, "money_and_debt": 0},
        "E6": {"food": 8, "housing": 19, "money_and_debt": 40},
        "E7": {"food": 25, "housing": 16, "money_and_debt": 11},
    }
    return CountTable(
        name="referrals_by_area_and_need",
        title="Referrals by area and need",
        description="Needs referred in the month, by the resident's area.",
        rows=Dimension.AREA,
        columns=Dimension.NEED,
        row_labels=AREAS,
        column_labels=("food", "housing", "money_and_debt"),
        counts={(a, n): v for a, row in grid.items() for n, v in row.items()},
        measure="referrals",
    )


def needs_by_area_and_status() -> CountTable:
    grid = {
        "E13": {"met": 20, "not_met": 4, "unroutable": 0, "waiting": 15},
        "E15": {"met": 26, "not_met": 10, "unroutable": 2, "waiting": 5},
        "E6": {"met": 40, "not_met": 12, "unroutable": 1, "waiting": 14},
        "E7": {"met": 30, "not_met": 11, "unroutable": 0, "waiting": 11},
    }
    return CountTable(
        name="needs_by_area_and_status",
        title="Needs met, not met, unroutable and waiting, by area",
        description="Each need referred, by what had become of it at the end of the month.",
        rows=Dimension.AREA,
        columns=Dimension.MEASURE,
        row_labels=AREAS,
        column_labels=("met", "not_met", "unroutable", "waiting"),
        counts={(a, m): v for a, row in grid.items() for m, v in row.items()},
    )


def outcomes_by_need() -> CountTable:
    return CountTable(
        name="outcomes_by_need",
        title="Outcomes by need",
        description="Outcomes partners recorded in the month, by need.",
        rows=Dimension.NEED,
        columns=Dimension.MEASURE,
        row_labels=("food", "housing"),
        column_labels=("support_provided", "declined", "uncontactable"),
        counts={
            ("food", "support_provided"): 50,
            ("food", "declined"): 6,
            ("food", "uncontactable"): 12,
            ("housing", "support_provided"): 21,
            ("housing", "declined"): 13,
            ("housing", "uncontactable"): 2,
        },
    )


TABLES = (referrals_by_area_and_need(), needs_by_area_and_status(), outcomes_by_need())


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_the_package_validates_as_frictionless_data(tmp_path: Path) -> None:
    written = write_open_statistics(
        tmp_path / "out",
        council=NEWHAM,
        council_name="London Borough of Newham",
        month="2026-11",
        tables=TABLES,
        created=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
    )
    report = validate(str(written.descriptor))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    package = Package(str(written.descriptor))
    assert [r.name for r in package.resources] == [t.name for t in TABLES]
    for resource in package.resources:
        assert resource.schema.field_names == [
            "month",
            "council",
            "area",
            "need",
            "measure",
            "value",
            "marker",
        ]
        assert all(field.description for field in resource.schema.fields)
    descriptor = json.loads(written.descriptor.read_text())
    assert descriptor["licenses"][0]["name"] == "OGL-UK-3.0"
    assert descriptor["sources"] and "withheld" in descriptor["description"]
    assert "not rounded" in descriptor["description"]


def test_the_validation_catches_a_file_that_breaks_its_schema(tmp_path: Path) -> None:
    written = write_open_statistics(tmp_path, council=NEWHAM, month="2026-11", tables=TABLES)
    path = tmp_path / "outcomes_by_need.csv"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace(",50,", ",-50,")  # food, support provided
    path.write_text("\n".join(lines) + "\n")
    report = validate(str(written.descriptor))
    assert not report.valid
    assert [e.type for e in report.tasks[2].errors] == ["constraint-error"]


def test_a_withheld_count_has_no_value_and_the_confidential_marker(tmp_path: Path) -> None:
    written = write_open_statistics(tmp_path, council=NEWHAM, month="2026-11", tables=TABLES)
    rows = read_rows(tmp_path / "referrals_by_area_and_need.csv")
    by_key = {(r["area"], r["need"]): r for r in rows}
    assert len(rows) == (4 + 1) * (3 + 1)
    assert {r["month"] for r in rows} == {"2026-11"} and {r["council"] for r in rows} == {NEWHAM}
    assert {r["measure"] for r in rows} == {"referrals"}
    assert (
        by_key[("E13", "housing")]["value"] == "" and by_key[("E13", "housing")]["marker"] == MARKER
    )
    assert by_key[("E6", "food")]["marker"] == MARKER  # 8
    assert by_key[("E15", "money_and_debt")]["value"] == "0"  # a true zero is published
    assert by_key[(ALL, ALL)]["value"] == "201"
    for row in rows:
        assert (row["value"] == "") == (row["marker"] == MARKER)
        assert row["value"] == "" or int(row["value"]) == 0 or int(row["value"]) >= 10
    withheld = {s.name: s.withheld for s in written.tables}
    assert withheld["referrals_by_area_and_need"] == sum(1 for r in rows if r["marker"])
    # A table by need and measure covers every area.
    outcomes = read_rows(tmp_path / "outcomes_by_need.csv")
    assert {r["area"] for r in outcomes} == {ALL}
    assert {r["measure"] for r in outcomes} == {
        "support_provided",
        "declined",
        "uncontactable",
        ALL,
    }


def test_a_council_without_a_gss_code_is_named(tmp_path: Path) -> None:
    written = write_open_statistics(
        tmp_path, council="Borough of Example", month="2026-11", tables=TABLES[:1]
    )
    assert validate(str(written.descriptor)).valid
    assert {r["council"] for r in read_rows(tmp_path / "referrals_by_area_and_need.csv")} == {
        "Borough of Example"
    }
    assert json.loads(written.descriptor.read_text())["name"] == (
        "upstream-open-statistics-borough-of-example-2026-11"
    )


@pytest.mark.parametrize(
    ("month", "field"),
    [("2026-13", "month"), ("November 2026", "month"), ("2026-1", "month")],
)
def test_a_month_not_given_as_yyyy_mm_is_refused(tmp_path: Path, month: str, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        write_open_statistics(tmp_path, council=NEWHAM, month=month, tables=TABLES)


def test_tables_need_distinct_lower_case_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^tables: names repeat"):
        write_open_statistics(tmp_path, council=NEWHAM, month="2026-11", tables=TABLES[:1] * 2)
    with pytest.raises(ValueError, match=r"^tables: at least one"):
        write_open_statistics(tmp_path, council=NEWHAM, month="2026-11", tables=())


def test_the_devtools_export_names_a_demo_council_in_the_title(tmp_path: Path) -> None:
    written = export(NEWHAM, "2026-11", tmp_path, TABLES)
    descriptor = json.loads(written.descriptor.read_text())
    assert (
        descriptor["title"] == "Upstream open statistics: London Borough of Newham, November 2026"
    )
    assert validate(str(written.descriptor)).valid


def test_an_export_goes_into_a_new_or_empty_folder_and_refuses_one_holding_files(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "2026-11"
    write_open_statistics(folder, council=NEWHAM, month="2026-11", tables=TABLES)
    # Again into the same folder: its files (and any other) would be uploaded with it.
    with pytest.raises(
        ValueError, match=f"^output: {re.escape(str(folder))} is not empty \\(datapackage.json"
    ):
        write_open_statistics(folder, council=NEWHAM, month="2026-11", tables=TABLES[:1])
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "referrals_by_area_and_need.csv").write_text("an older export\n")
    with pytest.raises(ValueError, match=r"referrals_by_area_and_need\.csv"):
        write_open_statistics(stale, council=NEWHAM, month="2026-11", tables=TABLES[1:])
    assert sorted(p.name for p in stale.iterdir()) == ["referrals_by_area_and_need.csv"]
    empty = tmp_path / "empty"
    empty.mkdir()
    written = write_open_statistics(empty, council=NEWHAM, month="2026-11", tables=TABLES)
    assert validate(str(written.descriptor)).valid


def test_the_command_refuses_a_folder_holding_files_before_asking_the_service(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from devtools.cli import app

    (tmp_path / "old.csv").write_text("an older export\n")
    arguments = ["--council", NEWHAM, "--month", "2026-11", "--output", str(tmp_path)]
    # No service answers at this address: the refusal comes first.
    result = CliRunner().invoke(
        app, ["open-statistics", *arguments, "--url", "http://127.0.0.1:9", "--token", "x"]
    )
    assert result.exit_code == 1
    assert "not empty" in result.output and "old.csv" in result.output


def test_linked_tables_are_written_with_each_shared_total_in_all_or_none(
    tmp_path: Path,
) -> None:
    referrals = CountTable(
        name="referrals_by_need_and_source",
        title="Referrals by need and source",
        description="Needs referred, by who referred.",
        rows=Dimension.NEED,
        columns=Dimension.MEASURE,
        row_labels=("food", "housing"),
        column_labels=("council", "vcs"),
        counts={("food", "council"): 25, ("food", "vcs"): 15, ("housing", "council"): 2},
    )
    outcomes = outcomes_by_need()
    links = [
        (("referrals_by_need_and_source", ALL, ALL), ("outcomes_by_need", ALL, ALL)),
        *(
            (("referrals_by_need_and_source", n, ALL), ("outcomes_by_need", n, ALL))
            for n in ("food", "housing")
        ),
    ]
    written = write_open_statistics(
        tmp_path, council=NEWHAM, month="2026-11", tables=(referrals, outcomes), links=links
    )
    assert validate(str(written.descriptor)).valid
    rows = {
        name: {(r["need"], r["measure"]): r for r in read_rows(tmp_path / f"{name}.csv")}
        for name in ("referrals_by_need_and_source", "outcomes_by_need")
    }
    for link in links:
        markers = {rows[name][(need, measure)]["marker"] for name, need, measure in link}
        assert len(markers) == 1, link
    # The housing total is 2 referrals: withheld, and so is the outcomes table's.
    assert rows["outcomes_by_need"][("housing", ALL)]["marker"] == MARKER
