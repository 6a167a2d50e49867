"""`make demo`, as the README says, at a small scale: it finishes, and what it prints adds up
(each number is read from the services' APIs: here they must agree with each other)."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.conftest import REPO
from tests.support.ports import stack_ports_held

pytestmark = pytest.mark.e2e


def test_make_demo_finishes_and_its_summary_adds_up() -> None:
    env = {**os.environ, "UPSTREAM_DEMO_REFERRALS": "24", "UPSTREAM_DEMO_HOUSEHOLDS": "600"}
    with stack_ports_held():  # the demo picks its stack's ports inside
        result = subprocess.run(
            ["make", "demo"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(re.search(r"^\{.*^\}", result.stdout, re.MULTILINE | re.DOTALL)[0])

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
