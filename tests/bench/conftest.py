"""``make bench`` ends with one table of every goal of issue 13, gathered from the rows the
scenarios of this run showed (``goals.show``); a goal no scenario measured says so."""

from __future__ import annotations

from typing import Any

import pytest

from tests.bench.goals import SHOWN, append_to_report, summary


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if not SHOWN:  # no benchmark ran (``make test`` never collects tests/bench)
        return
    lines = summary()
    for line in lines:
        terminalreporter.write_line(line)
    append_to_report(lines)
