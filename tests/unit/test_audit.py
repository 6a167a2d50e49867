"""The shared audit trail's pure parts: one row per council a read showed, a search that
must name someone or something, and the CSV export."""

from __future__ import annotations

import csv
import importlib
import inspect
import io
from datetime import UTC, datetime

import pytest

from shared.audit import (
    PERSONAL_DATA,
    AuditEntry,
    Category,
    Seen,
    TrailQuery,
    entries_csv,
    personal_data,
    reads,
    trail,
)
from shared.errors import Invalid


def test_a_read_is_one_row_per_council_it_showed() -> None:
    seen = [
        Seen("E09000025", "r1", "c1"),
        Seen("E09000012", None, "c2"),
        Seen("E09000025", "r2", "c3"),
    ]
    rows = reads("case_queue", [Category.IDENTITY], seen, purpose="case work", own_council=None)
    assert [(r.council, r.resident_ids, r.case_ids) for r in rows] == [
        ("E09000025", ("r1", "r2"), ("c1", "c3")),
        ("E09000012", (), ("c2",)),
    ]
    (empty,) = reads("list_offers", [Category.PROGRESS], [], purpose="x", own_council="E09000025")
    assert (empty.council, empty.resident_ids, empty.data_categories) == (
        "E09000025",
        (),
        ("case_progress",),
    )


def test_the_declaration_names_categories_or_none() -> None:
    assert personal_data(Category.CONTACT, Category.NEEDS) == {PERSONAL_DATA: ["contact", "needs"]}
    assert personal_data() == {PERSONAL_DATA: []}


def test_a_search_names_a_resident_a_case_a_user_or_an_organisation() -> None:
    with pytest.raises(Invalid):
        TrailQuery(since=datetime.now(UTC)).narrowed()
    for named in ({"resident_id": "r"}, {"case_id": "c"}, {"subject": "s"}, {"organisation": "o"}):
        assert TrailQuery(**named).narrowed()


def test_the_csv_export_has_a_header_lists_joined_and_no_formulas() -> None:
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    entry = AuditEntry(
        at=at,
        subject='=HYPERLINK("http://x")',
        organisation="E09000025",
        organisation_kind="council",
        roles=["caseworker"],
        operation="case_detail",
        purpose="case work",
        council=None,
        resident_ids=["r1", "r2"],
        case_ids=[],
        data_categories=["identity", "contact"],
    )
    (row,) = list(csv.DictReader(io.StringIO(entries_csv([entry]))))
    assert row["at"] == "2026-12-01T10:00:00+00:00"
    assert row["subject"].startswith("'=")  # a spreadsheet shows it, never runs it
    assert (row["resident_ids"], row["case_ids"], row["council"]) == ("r1;r2", "", "")
    assert row["data_categories"] == "identity;contact"


@pytest.mark.parametrize("service", ["referrals", "partners", "risk"])
def test_every_service_records_reads_with_the_shared_mechanism(service: str) -> None:
    # one ``Seen`` and one per-council grouping (``reads``), not a copy in each service
    # (the grouping is shared.audit.record_read's, which each service's adapter calls)
    module = importlib.import_module(f"services.{service}.service_layer.audit")
    assert getattr(module, "Seen", Seen) is Seen
    source = inspect.getsource(module)
    assert "class Seen" not in source and "reads(" not in source
    adapter = inspect.getsource(importlib.import_module(f"services.{service}.adapters.audit"))
    assert "audit.record_read(" in adapter and "audit.read_trail(" in adapter


def test_the_trail_is_searched_one_way_only() -> None:
    assert list(inspect.signature(trail).parameters) == ["session", "table", "councils", "query"]
