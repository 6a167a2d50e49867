"""A council's outcome figures, for its service managers and its information-governance
team (or an operator): outcomes, rule evaluation and reach, as JSON or each table as CSV.
Aggregates from the reporting model only (docs/referrals.md, Reporting): no personal data.
Use cases: ``service_layer/reporting.py``; the month's open statistics, a zipped data
package: ``service_layer/open_statistics.py``."""

from __future__ import annotations

import csv
import dataclasses
import io
import typing
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from services.referrals.api.deps import ReferralsWork
from services.referrals.domain.reporting import OutcomesReport, ReachReport, RulesReport
from services.referrals.service_layer import open_statistics, reporting
from shared.audit import personal_data
from shared.auth import OrganisationKind, Principal, Role, require
from shared.errors import Invalid
from shared.input_policy import IsoDate
from shared.vocabulary import Need

router = APIRouter(prefix="/v1/reports", tags=["reports"])

# A council's service managers or its information-governance team, or an operator.
ReportReader = Annotated[
    Principal,
    Depends(
        require(
            kinds=[OrganisationKind.COUNCIL, OrganisationKind.OPERATOR],
            roles=[Role.MANAGER, Role.INFORMATION_GOVERNANCE, Role.OPERATOR],
        )
    ),
]
Council = Annotated[str, Path(pattern=r"^[ENSWK][0-9]{8}$", description="the council's GSS code")]
From = Annotated[
    IsoDate | None,
    Query(
        alias="from",
        description="the period's first day (Europe/London); default 89 days before to",
    ),
]
To = Annotated[
    IsoDate | None, Query(description="the period's last day (Europe/London); default today")
]
Area = Annotated[
    str | None,
    Query(
        pattern=r"^[A-Za-z]{1,2}[0-9][A-Za-z0-9]?$",
        description="a postcode district, e.g. E15",
    ),
]
NeedFilter = Annotated[Need | None, Query(description="only cases with this need")]
Format = Annotated[
    Literal["json", "csv"], Query(alias="format", description="csv: one table, see table")
]
TableName = Annotated[
    str | None, Query(pattern=r"^[a-z_]{1,64}$", description="with format=csv: which table")
]

_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "no reports for this council (not the caller's)"},
    200: {"content": {"text/csv": {}}, "description": "the report, or one table as CSV"},
}


def _query(
    period_from: From = None, to: To = None, area: Area = None, need: NeedFilter = None
) -> reporting.ReportQuery:
    """The period and filters every report takes, from the query string."""
    return reporting.ReportQuery(
        period_from=period_from, period_to=to, area=area, need=need.value if need else None
    )


Filters = Annotated[reporting.ReportQuery, Depends(_query)]


def _tables(report: Any) -> dict[str, Sequence[Any]]:
    """A report's tables: its fields that are lists of rows."""
    return {
        f.name: getattr(report, f.name)
        for f in dataclasses.fields(report)
        if isinstance(getattr(report, f.name), list)
    }


def respond(report: Any, output: str, table: str | None, name: str) -> Any:
    """A report as JSON, or one of its tables as CSV (the reporting pages' downloads too)."""
    if output == "json":
        return report
    tables = _tables(report)
    if table is None and len(tables) == 1:
        table = next(iter(tables))
    if table not in tables:
        raise Invalid("table", "with format=csv, one of: " + ", ".join(tables))
    return _csv(tables[table], report, table, name)


def _csv(rows: Sequence[Any], report: Any, table: str, name: str) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = _header(rows, report, table)
    writer.writerow(header)
    for row in rows:
        values = dataclasses.asdict(row)
        writer.writerow(["" if values[h] is None else values[h] for h in header])
    filename = f"{report.council}-{name}-{table}-{report.period_from}-{report.period_to}.csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _header(rows: Sequence[Any], report: Any, table: str) -> list[str]:
    if rows:
        return [f.name for f in dataclasses.fields(rows[0])]
    # An empty table still says its columns: the row type from the report's annotation.
    hints = typing.get_type_hints(type(report))
    (row_type,) = typing.get_args(hints[table])
    return [f.name for f in dataclasses.fields(row_type)]


@router.get(
    "/{council}/outcomes",
    response_model=OutcomesReport,
    responses=_RESPONSES,
    summary="Outcome measures: referrals, times to offer and help, offers, needs met, load",
    openapi_extra=personal_data(),  # aggregates only
)
async def outcomes(
    council: Council,
    principal: ReportReader,
    uow: ReferralsWork,
    query: Filters,
    output: Format = "json",
    table: TableName = None,
) -> Any:
    report = await reporting.outcomes(uow, principal, council, query)
    return respond(report, output, table, "outcomes")


@router.get(
    "/{council}/rules",
    response_model=RulesReport,
    responses=_RESPONSES,
    summary="Rule evaluation: what each rule's flags and each assessment level led to",
    openapi_extra=personal_data(),  # aggregates only
)
async def rules(
    council: Council,
    principal: ReportReader,
    uow: ReferralsWork,
    query: Filters,
    output: Format = "json",
    table: TableName = None,
) -> Any:
    report = await reporting.rules(uow, principal, council, query)
    return respond(report, output, table, "rules")


@router.get(
    "/{council}/reach",
    response_model=ReachReport,
    responses=_RESPONSES,
    summary="Reach by age band, language and area, with who is flagged but never reached",
    openapi_extra=personal_data(),  # aggregates only
)
async def reach(
    council: Council,
    principal: ReportReader,
    uow: ReferralsWork,
    query: Filters,
    output: Format = "json",
    table: TableName = None,
) -> Any:
    report = await reporting.reach(uow, principal, council, query)
    return respond(report, output, table, "reach")


Month = Annotated[
    str,
    Path(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="the calendar month, YYYY-MM"),
]


@router.get(
    "/{council}/open-statistics/{month}",
    response_class=Response,
    responses={
        200: {
            "content": {"application/zip": {}},
            "description": "the month's data package (datapackage.json and one CSV per table)",
        },
        404: {"description": "no reports for this council (not the caller's)"},
    },
    summary="The month's open statistics: counts under disclosure control, a Frictionless package",
    openapi_extra=personal_data(),  # aggregate counts, small ones withheld
)
async def open_statistics_package(
    council: Council, month: Month, principal: ReportReader, uow: ReferralsWork
) -> Response:
    # A zip, not JSON: the package is the files the Datastore takes, byte for byte, and
    # validates as it is once unpacked.
    archive = await open_statistics.export_month_archive(uow, principal, council, month)
    filename = f"upstream-open-statistics-{council}-{month}.zip"
    return Response(
        archive,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
