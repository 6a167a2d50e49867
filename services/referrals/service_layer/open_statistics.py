"""The monthly open-statistics export of a council, for the London Datastore: each count
table protected (``domain/open_statistics.py``) and written as a tidy CSV, with a Frictionless
``datapackage.json`` that describes every file and field, the licence (OGL v3), the source
and the disclosure control. Only aggregate counts leave: no resident, no case, and no sign
of which withheld counts were small (every withheld value carries the same marker)."""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from services.referrals.domain.open_statistics import (
    ALL,
    MARKER,
    PROTECTION,
    THRESHOLD,
    CountTable,
    Dimension,
    Entry,
    ProtectedTable,
    protect_package,
)
from services.referrals.domain.reporting import LONDON, NEED_STATES, UNKNOWN
from services.referrals.service_layer import reporting
from services.referrals.service_layer.reporting import ReportQuery
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared.auth import Principal
from shared.errors import Invalid
from shared.events.envelope import utc_now
from shared.vocabulary import GSS_CODE, Need, Outcome

MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
RESOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
FIELDS = ("month", "council", "area", "need", "measure", "value", "marker")
OGL_V3 = {
    "name": "OGL-UK-3.0",
    "path": "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/",
    "title": "Open Government Licence v3.0",
}
METHOD = (
    "Statistical disclosure control: every count (a cell or a total) that 1 to {small} "
    "distinct residents are behind is withheld, however many needs, referrals or offers it "
    "counts; a zero is published. Further counts are withheld so that none of those can be "
    "worked out from the published cells and totals of the whole package: each withheld "
    "count lies on a rectangle of withheld entries along which it can move by at least "
    "{protection} without changing any published figure (the hypercube method), and where "
    "tables share a total (the grand totals; each need's total of the referrals and "
    "outcomes tables) they are protected together, as if the shared totals were known to be "
    "equal: a shared total is published in every table or in none. The smallest counts are "
    "chosen, keeping totals where possible. A withheld count has an empty value and the "
    "marker '{marker}' (confidential), whatever the reason it was withheld. Counts are not "
    "rounded: published cells add up to the published totals. Counts are of the month only "
    "(not cumulative)."
)


@dataclass(frozen=True)
class TableSummary:
    name: str
    path: Path
    published: int
    withheld: int


@dataclass(frozen=True)
class OpenStatistics:
    """What was written: the package descriptor and each table's file."""

    descriptor: Path
    tables: tuple[TableSummary, ...]


def _month_title(month: str) -> str:
    return datetime.strptime(month, "%Y-%m").strftime("%B %Y")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _check(council: str, month: str, tables: Sequence[CountTable]) -> None:
    if not council.strip():
        raise ValueError("council: required, the council's GSS code (or its name if it has none)")
    if not MONTH.fullmatch(month):
        raise ValueError(f"month: {month!r} is not a month as YYYY-MM")
    if not tables:
        raise ValueError("tables: at least one count table is needed")
    names = [t.name for t in tables]
    if len(set(names)) != len(names):
        raise ValueError(f"tables: names repeat: {names}")
    for name in names:
        if not RESOURCE_NAME.fullmatch(name):
            raise ValueError(f"tables: {name!r} is not a lower-case name (a-z, 0-9, _ and -)")


def _rows(published: ProtectedTable, month: str, council: str) -> Iterable[list[str]]:
    table = published.table
    for entry in published.cells:
        labels = {Dimension.AREA: ALL, Dimension.NEED: ALL, Dimension.MEASURE: table.measure}
        labels[table.rows] = entry.row
        labels[table.columns] = entry.column
        withheld = entry.value is None
        yield [
            month,
            council,
            str(labels[Dimension.AREA]),
            str(labels[Dimension.NEED]),
            str(labels[Dimension.MEASURE]),
            "" if withheld else str(entry.value),
            MARKER if withheld else "",
        ]


def _labels(tables: Sequence[CountTable], dimension: Dimension) -> list[str]:
    found = {ALL}
    for table in tables:
        if table.rows == dimension:
            found.update(table.row_labels)
        elif table.columns == dimension:
            found.update(table.column_labels)
        elif dimension is Dimension.MEASURE and table.measure is not None:
            found.add(table.measure)
    return sorted(found)


def _schema(council: str, table: CountTable) -> dict[str, Any]:
    council_field: dict[str, Any] = {
        "name": "council",
        "type": "string",
        "constraints": {"required": True},
    }
    if GSS_CODE.fullmatch(council):
        council_field["description"] = "The council's GSS code (ONS), e.g. E09000025 for Newham."
        council_field["constraints"]["pattern"] = GSS_CODE.pattern.strip("^$")
    else:
        council_field["description"] = "The council's name (it has no GSS code in Upstream)."
    return {
        "fields": [
            {
                "name": "month",
                "type": "yearmonth",
                "description": "The calendar month counted (YYYY-MM); counts are of that month.",
                "constraints": {"required": True},
            },
            council_field,
            {
                "name": "area",
                "type": "string",
                "description": f"The area within the council, or '{ALL}' for every area.",
                "constraints": {"required": True, "enum": _labels([table], Dimension.AREA)},
            },
            {
                "name": "need",
                "type": "string",
                "description": (
                    f"The resident's need (Upstream's vocabulary), or '{ALL}' for every need."
                ),
                "constraints": {"required": True, "enum": _labels([table], Dimension.NEED)},
            },
            {
                "name": "measure",
                "type": "string",
                "description": f"What is counted, or '{ALL}' for the total over the measures.",
                "constraints": {"required": True, "enum": _labels([table], Dimension.MEASURE)},
            },
            {
                "name": "value",
                "type": "integer",
                "description": (
                    f"The count; empty where withheld (see marker). Not rounded. A total "
                    f"('{ALL}') is the sum of its cells."
                ),
                "constraints": {"minimum": 0},
            },
            {
                "name": "marker",
                "type": "string",
                "description": (
                    f"'{MARKER}' where the value is withheld to protect confidentiality "
                    "(GSS convention), empty otherwise."
                ),
                "constraints": {"enum": [MARKER]},
            },
        ],
        "missingValues": [""],
        "primaryKey": ["month", "council", "area", "need", "measure"],
    }


def fresh_output(output: Path) -> None:
    """Refuse to write a package into a folder that holds anything: the folder is what is
    uploaded, and an earlier export's files (a table since dropped, a month's other
    release) would go with it. Raises ValueError naming the folder."""
    if output.exists() and not output.is_dir():
        raise ValueError(f"output: {output} is a file, not a folder")
    if output.is_dir() and (held := sorted(p.name for p in output.iterdir())):
        shown = ", ".join(held[:5]) + (", …" if len(held) > 5 else "")
        raise ValueError(
            f"output: {output} is not empty ({shown}); export into a new folder, so that no "
            "file of another export is published with this one"
        )


def write_open_statistics(
    output: Path,
    *,
    council: str,
    month: str,
    tables: Sequence[CountTable],
    links: Sequence[Sequence[Entry]] = (),
    council_name: str | None = None,
    created: datetime | None = None,
) -> OpenStatistics:
    """Protect the tables together (``links``: the totals they share, see
    ``protect_package``) and write the package into ``output``, a new or empty folder
    (``fresh_output``): one ``<table>.csv`` per table and ``datapackage.json``.
    ``council`` is its GSS code, or its name if it has none."""
    _check(council, month, tables)
    fresh_output(output)
    output.mkdir(parents=True, exist_ok=True)
    name = council_name or council
    summaries: list[TableSummary] = []
    resources: list[dict[str, Any]] = []
    for published in protect_package(tables, links):
        table = published.table
        path = output / f"{table.name}.csv"
        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file, lineterminator="\n")
            writer.writerow(FIELDS)
            writer.writerows(_rows(published, month, council))
        withheld = len(published.withheld)
        summaries.append(TableSummary(table.name, path, len(published.cells) - withheld, withheld))
        resources.append(
            {
                "name": table.name,
                "path": path.name,
                "profile": "tabular-data-resource",
                "title": table.title,
                "description": table.description,
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": _schema(council, table),
            }
        )
    method = METHOD.format(small=THRESHOLD - 1, protection=PROTECTION, marker=MARKER)
    descriptor = {
        "profile": "tabular-data-package",
        "name": f"upstream-open-statistics-{_slug(council)}-{month}",
        "title": f"Upstream open statistics: {name}, {_month_title(month)}",
        "description": (
            f"Monthly counts of referrals to help and what became of them, for {name}, "
            f"from the council's Upstream service (aggregate counts only). {method}"
        ),
        "version": "1.0.0",
        "created": (created or utc_now()).isoformat(),
        "keywords": ["Upstream", "referrals", "early help", "open statistics", name],
        "licenses": [OGL_V3],
        "sources": [
            {
                "title": (
                    f"{name}: Upstream referrals service, reporting model (the council's "
                    "record of referrals, offers and outcomes)"
                )
            }
        ],
        "contributors": [{"title": name, "role": "publisher"}],
        "resources": resources,
    }
    path = output / "datapackage.json"
    path.write_text(json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return OpenStatistics(path, tuple(summaries))


# -- a council's month from the reporting model --------------------------------------------


def month_period(month: str) -> tuple[date, date]:
    """The first and last day of a month given as YYYY-MM."""
    if not MONTH.fullmatch(month):
        raise Invalid("month", f"{month!r} is not a month as YYYY-MM")
    if not 2000 <= int(month[:4]) <= 2100:
        raise Invalid("month", f"{month} is not between 2000 and 2100")
    first = datetime.strptime(month, "%Y-%m").date()
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return first, last


def _labels_of(vocabulary: Iterable[str], seen: Iterable[str]) -> tuple[str, ...]:
    """The vocabulary's labels (a table's columns stay the same from month to month, zeros
    published), then any other label the figures hold."""
    known = list(dict.fromkeys(vocabulary))
    return (*known, *sorted(set(seen) - set(known)))


# Who refers: a council's staff, a voluntary partner, or a data signal (an outreach case).
SOURCES = ("council", "vcs", "flag")
REFERRALS = "referrals_by_need_and_source"
NEEDS = "needs_by_area_and_status"
OUTCOMES = "outcomes_by_need"


def _union(groups: Iterable[frozenset[str]]) -> frozenset[str]:
    return frozenset().union(*groups)


async def month_tables(
    uow: ReferralsUnitOfWork, principal: Principal, council: str, month: str
) -> list[CountTable]:
    """The month's count tables of a council, from the reporting model: the cohort of cases
    opened (and referrals received) in the month, followed to whatever became of them. Each
    cell knows the residents behind it (pseudonymous references, for the threshold only).

    The area is in the needs table only: a referrals-by-area table's area totals would be
    the needs referred from each area, which the needs table's area totals count too. The
    totals the tables still share are linked (``month_links``) and protected together. A
    case with no known area counts under ``unknown``."""
    period_from, period_to = month_period(month)
    if period_from > uow.now().astimezone(LONDON).date():
        raise Invalid("month", f"{month} has not begun")
    query = ReportQuery(period_from=period_from, period_to=period_to)
    figures = await reporting.open_statistics_figures(uow, principal, council, query)
    outcomes, residents = figures.outcomes, figures.residents

    referrals: Counter[tuple[str, str]] = Counter()
    for referred in outcomes.referrals_by_source_and_need:
        referrals[(referred.need, referred.source)] += referred.referral_needs
    referral_people = {(n, s): p for (s, n), p in residents.referral_needs.items()}
    areas = [*sorted({r.area for r in outcomes.needs_by_area} - {UNKNOWN}), UNKNOWN]
    needs = {
        (row.area, state): getattr(row, state)
        for row in outcomes.needs_by_area
        for state in NEED_STATES
        if getattr(row, state)
    }
    outcome_counts: Counter[tuple[str, str]] = Counter()
    outcome_people: dict[tuple[str, str], set[frozenset[str]]] = {}
    for outcome in outcomes.outcomes_by_need_and_partner:
        outcome_counts[(outcome.need, outcome.outcome)] += outcome.offers
    for (need, _, outcome_name), people in residents.outcomes.items():
        outcome_people.setdefault((need, outcome_name), set()).add(people)
    every_need = [n.value for n in Need]
    return [
        CountTable(
            name=REFERRALS,
            title="Referrals by need and source",
            description=(
                "Referrals received in the month, one for each need they name, by who "
                "referred: council staff (council), a voluntary and community sector "
                "partner (vcs), or a data signal that opened an outreach case (flag)."
            ),
            rows=Dimension.NEED,
            columns=Dimension.MEASURE,
            row_labels=_labels_of(every_need, (n for n, _ in referrals)),
            column_labels=_labels_of(SOURCES, (s for _, s in referrals)),
            counts=dict(referrals),
            residents=referral_people,
        ),
        CountTable(
            name=NEEDS,
            title="Needs met, not met, unroutable and waiting, by area",
            description=(
                "Each need of each case opened in the month, by the postcode district of "
                "the case ('unknown' where it has none yet) and where the need stands now: "
                "met (a positive outcome), not_met (outcomes, none positive), unroutable (no "
                "partner could take it), waiting (for a place with a partner), in_progress, "
                "closed (the case closed before an outcome) or withdrawn (the case, or the "
                "resident's consent, withdrawn before one)."
            ),
            rows=Dimension.AREA,
            columns=Dimension.MEASURE,
            row_labels=tuple(areas),
            column_labels=NEED_STATES,
            counts=needs,
            residents=dict(residents.needs_by_area),
        ),
        CountTable(
            name=OUTCOMES,
            title="Outcomes by need",
            description=(
                "Offers to partners with a recorded outcome, for the cases opened in the "
                "month, by the need offered for and the outcome the partner recorded."
            ),
            rows=Dimension.NEED,
            columns=Dimension.MEASURE,
            row_labels=_labels_of(every_need, (n for n, _ in outcome_counts)),
            column_labels=_labels_of((o.value for o in Outcome), (o for _, o in outcome_counts)),
            counts=dict(outcome_counts),
            residents={at: _union(groups) for at, groups in outcome_people.items()},
        ),
    ]


def month_links(tables: Sequence[CountTable]) -> list[tuple[Entry, ...]]:
    """The totals the month's tables share, as ``protect_package`` takes them: the grand
    totals (the needs referred in the month, nearly, and the outcomes recorded for them),
    and each need's total of the referrals and the outcomes tables (the needs referred, and
    the outcomes recorded, equal when each need referred had one outcome). They differ by
    a little or a lot, but an attacker might know by how much, so they are treated as known
    to be equal: each is published in every table or in none."""
    by_name = {t.name: t for t in tables}
    links: list[tuple[Entry, ...]] = []
    grand = tuple((name, ALL, ALL) for name in (REFERRALS, NEEDS, OUTCOMES) if name in by_name)
    if len(grand) > 1:
        links.append(grand)
    if REFERRALS in by_name and OUTCOMES in by_name:
        outcome_needs = set(by_name[OUTCOMES].row_labels)
        links.extend(
            ((REFERRALS, need, ALL), (OUTCOMES, need, ALL))
            for need in by_name[REFERRALS].row_labels
            if need in outcome_needs
        )
    return links


async def export_month(
    uow: ReferralsUnitOfWork,
    principal: Principal,
    council: str,
    month: str,
    output: Path,
    *,
    council_name: str | None = None,
) -> OpenStatistics:
    """The month's tables of a council, protected together and written as a package into
    ``output`` (a new or empty folder)."""
    tables = await month_tables(uow, principal, council, month)
    return write_open_statistics(
        output,
        council=council,
        month=month,
        tables=tables,
        links=month_links(tables),
        council_name=council_name,
        created=uow.now(),
    )


async def export_month_archive(
    uow: ReferralsUnitOfWork, principal: Principal, council: str, month: str
) -> bytes:
    """The package of ``export_month`` as one zip: ``datapackage.json`` and the CSVs at its
    root, as they go on the Datastore."""
    with tempfile.TemporaryDirectory(prefix="open-statistics-") as folder:
        written = await export_month(uow, principal, council, month, Path(folder))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(written.descriptor, written.descriptor.name)
            for table in written.tables:
                archive.write(table.path, table.path.name)
    return buffer.getvalue()
