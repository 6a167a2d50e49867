"""`make demo`, as the README says, at a small scale: it finishes, prints its tables and the
addresses to open, and what it reports adds up (each number is read from the services' APIs:
here they must agree with each other). The numbers are read from the JSON it writes too."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.ports import stack_ports_held

pytestmark = pytest.mark.e2e

COUNCILS = ("E09000025", "E09000012")


def test_make_demo_finishes_and_its_summary_adds_up(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "UPSTREAM_DEMO_REFERRALS": "24",
        "UPSTREAM_DEMO_HOUSEHOLDS": "600",
        "COLUMNS": "200",  # rich sizes its tables to the terminal; the test has none
    }
    written = tmp_path / "summary.json"
    with stack_ports_held():  # the demo picks its stack's ports inside
        result = subprocess.run(
            ["make", "demo", f"JSON={written}"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(written.read_text())

    assert summary["signals"]["rows_read"] == 600 and summary["signals"]["rows_rejected"] == 0
    assert summary["referrals_sent"] == 24
    # Referrals about the same person share a case, so there are at most as many cases.
    assert 0 < summary["cases_from_referrals"] <= 24
    assert summary["cases_by_origin"].get("flag", 0) <= summary["signals"]["flagged"]
    assert sum(summary["cases_by_status"].values()) == summary["cases"]
    assert sum(summary["cases_by_risk_level"].values()) == summary["cases"]
    assert sum(summary["offers_per_partner"].values()) == summary["offers"]
    assert sum(summary["offers_by_status"].values()) == summary["offers"]
    statuses = summary["offers_by_status"]
    assert summary["hand_ons"] == statuses.get("declined", 0) + statuses.get("expired", 0)
    assert summary["offers"] > 0 and statuses.get("outcome_recorded", 0) > 0
    # Nothing is left waiting on a partner once the demo says it is done.
    assert not {"offered", "accepted", "in_progress"} & set(statuses)

    # The councils' parts add up to the whole.
    parts = summary["councils"]
    assert set(parts) == set(COUNCILS)
    assert sum(p["cases"] for p in parts.values()) == summary["cases"]
    assert sum(p["signals"]["flagged"] for p in parts.values()) == summary["signals"]["flagged"]
    for status, count in statuses.items():
        assert sum(p["offers_by_status"].get(status, 0) for p in parts.values()) == count
    for part in parts.values():
        assert sum(part["cases_by_status"].values()) == part["cases"]
        assert sum(sum(by.values()) for by in part["offers_per_partner"].values()) == sum(
            part["offers_by_status"].values()
        )
    assert (
        sum(sum(p["offers_by_status"].values()) for p in summary["partners"]) == summary["offers"]
    )

    # What a person reads: tables, not JSON, then the addresses to open.
    out = result.stdout
    assert not out.lstrip().startswith("{") and '"cases_by_status"' not in out
    for title in ("cases by status", "needs by status", "offers by partner", "the signal feed"):
        assert f"Newham (E09000025): {title}" in out and f"Hackney (E09000012): {title}" in out
    assert "Partners' load at the end of the day" in out
    for council in COUNCILS:
        assert f"/v1/transparency/{council}?format=html" in out
        assert f"/reports/{council}" in out
    assert "/docs" in out and "/inbox" in out and "upstream inbox-link" in out
    assert "make demo KEEP=1" in out  # without --keep the stack stops, and says how to keep it
