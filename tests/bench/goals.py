"""The table a benchmark prints: each scenario's Upstream figure beside its bare baseline
from the same run, the ratio, the goal and whether it is met. Printed past pytest's capture
(``make bench`` shows it); benchmarks measure, they never fail a build on a noisy machine.

A row that measures one of issue 13's goals says which (``goal``); ``make bench`` ends with
one table of every such goal (``tests/bench/conftest.py``), "not measured" where no
scenario of this run measured it."""

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
    goal_of_issue_13: int | None = None  # which of issue 13's goals this row measures


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


# Issue 13's goals, in its order: what the closing table lists, measured or not.
ISSUE_13_GOALS = {
    1: "import 1,000,000 signal rows",
    2: "intake beside a bare endpoint",
    3: "referral -> offer in the inbox",
    4: "referral -> offer while a feed's flags are processed",
    5: "idle cost of each process",
    6: "scale out: two worker replicas against one",
}

# Every row shown in this session, for the closing table.
SHOWN: list[Measured] = []


def summary() -> list[str]:
    """One table of every goal of issue 13: the rows that measured it, or "not measured"."""
    rows: list[Measured] = []
    for number, goal in ISSUE_13_GOALS.items():
        measured = [r for r in SHOWN if r.goal_of_issue_13 == number]
        rows += [
            Measured(f"{number}. {r.scenario}", r.upstream, r.baseline, r.ratio, r.goal, r.met)
            for r in measured
        ] or [Measured(f"{number}. {goal}", "not measured", "", "", "", None)]
    return ["", "Issue 13: every goal, from the scenarios of this run", *table(rows)]


def append_to_report(lines: Sequence[str]) -> None:
    """Add to the file named by ``UPSTREAM_BENCH_REPORT``, if set."""
    if report := os.environ.get("UPSTREAM_BENCH_REPORT"):
        with Path(report).open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")


def show(request: pytest.FixtureRequest, title: str, rows: Sequence[Measured]) -> None:
    """Print the table on the terminal (past capture), and add it to the file named by
    ``UPSTREAM_BENCH_REPORT`` if set; keep its rows for the closing table."""
    SHOWN.extend(rows)
    lines = ["", title, *table(rows)]
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print("\n".join(lines), flush=True)
    append_to_report(lines)
