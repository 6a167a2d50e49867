"""What a PostgreSQL plan read, from ``EXPLAIN (ANALYZE, FORMAT JSON)``: for tests that a
query reads what is due, not the history a database keeps (asserted by rows, never time)."""

from __future__ import annotations

from typing import Any


def rows_filtered_out(plan: dict[str, Any]) -> int:
    """The rows a plan's nodes read only to throw away (``Rows Removed by Filter``)."""
    here = int(plan.get("Rows Removed by Filter", 0)) * int(plan.get("Actual Loops", 1))
    return here + sum(rows_filtered_out(child) for child in plan.get("Plans", []))


def rows_read(plan: dict[str, Any]) -> int:
    """The rows a plan's scans read: those they kept and those their filters threw away."""
    read = 0
    if "Scan" in plan["Node Type"] and "CTE" not in plan["Node Type"]:
        kept = int(plan.get("Actual Rows", 0)) + int(plan.get("Rows Removed by Filter", 0))
        read = kept * int(plan.get("Actual Loops", 1))
    return read + sum(rows_read(child) for child in plan.get("Plans", []))
