"""The open-statistics export at the command line (docs/open-statistics.md): ``summary``
prints what ``upstream open-statistics`` fetched from the reporting API; ``export`` writes a
package from count tables in hand (a borough's own figures, or a test's), naming the council
from the demo councils' details when it knows them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from devtools.demo_councils import DEMO_COUNCILS
from services.referrals.domain.open_statistics import CountTable
from services.referrals.service_layer.open_statistics import (
    OpenStatistics,
    write_open_statistics,
)


def export(council: str, month: str, output: Path, tables: Sequence[CountTable]) -> OpenStatistics:
    """Write ``output``/datapackage.json and one CSV per table. ``council`` is the council's
    GSS code (its name is taken from the demo councils' details when known), or its name
    if it has no code; ``month`` is YYYY-MM. Raises ValueError naming the bad argument."""
    details = DEMO_COUNCILS.get(council)
    return write_open_statistics(
        output,
        council=council,
        month=month,
        tables=tables,
        council_name=details.organisation_name if details else None,
    )


def summary(written: OpenStatistics) -> Table:
    """What was written, for the command to print."""
    table = Table(title=f"Open statistics: {written.descriptor}")
    table.add_column("table")
    table.add_column("file")
    table.add_column("published", justify="right")
    table.add_column("withheld [c]", justify="right")
    for each in written.tables:
        table.add_row(each.name, each.path.name, str(each.published), str(each.withheld))
    return table
