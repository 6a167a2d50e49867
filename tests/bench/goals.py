"""The table a benchmark prints: each scenario's Upstream figure beside its bare baseline
from the same run, the ratio, the goal and whether it is met. Printed past pytest's capture
(``make bench`` shows it); benchmarks measure, they never fail a build on a noisy machine."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Measured:
    scenario: str
    upstream: str
    baseline: str
    ratio: str
    goal: str
    met: bool | None  # None: for information, no goal


def table(rows: Sequence[Measured]) -> list[str]:
    head = ("scenario", "Upstream", "baseline", "ratio", "goal", "")
    cells = [head] + [
        (
            r.scenario,
            r.upstream,
            r.baseline,
            r.ratio,
            r.goal,
            "" if r.met is None else ("pass" if r.met else "FAIL"),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return [line.rstrip() for line in lines]


def show(request: pytest.FixtureRequest, title: str, rows: Sequence[Measured]) -> None:
    """Print the table on the terminal (past capture), and add it to the file named by
    ``UPSTREAM_BENCH_REPORT`` if set."""
    lines = ["", title, *table(rows)]
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print("\n".join(lines), flush=True)
    if report := os.environ.get("UPSTREAM_BENCH_REPORT"):
        with Path(report).open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
