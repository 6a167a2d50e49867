"""A council's ATRS record, made from its ruleset and its details (no I/O)."""

from __future__ import annotations

from datetime import date

import pytest

from devtools.demo_councils import DEMO_COUNCILS, NEWHAM
from services.risk.api.transparency import wants_html
from services.risk.domain.atrs import atrs_record, section_key
from services.risk.domain.rules import load_ruleset

AGE_ONLY = """
label: older
flag_level: high
rules:
  - id: over-75
    description: Aged over 75
    explanation: Aged over 75.
    when: referral.age > 75
    level: medium
    score: 20
"""
DISCHARGE = """
label: discharge
flag_level: high
rules:
  - id: discharge
    description: Discharged without support
    explanation: Discharged without support.
    when: has(signals.hospital_discharge_unsupported)
    level: high
    score: 40
"""


def record(source: str) -> dict:
    return atrs_record(
        load_ruleset(source),
        council=NEWHAM,
        details=DEMO_COUNCILS[NEWHAM],
        completed_on=date(2026, 12, 1),
        updated_on=date(2026, 12, 13),
        own_ruleset=True,
    )


def test_the_rules_derived_attributes_follow_what_the_rules_read() -> None:
    older, discharge = record(AGE_ONLY), record(DISCHARGE)
    assert "age" in older["data_specification"]["sensitive_attributes"]
    assert "special category" not in older["data_specification"]["sensitive_attributes"]
    assert "special category" in discharge["data_specification"]["sensitive_attributes"]
    assert older["model_specification"]["model_input"].startswith("Signals the rules read: none")
    assert "hospital discharge" in discharge["data_specification"]["source_data_name"]
    assert "referral.age > 75" in older["model_specification"]["model_architecture"]
    assert older["upstream"]["rules"] == [
        {
            "id": "over-75",
            "description": "Aged over 75",
            "condition": "referral.age > 75",
            "level": "medium",
            "score": 20,
            "suggests": [],
        }
    ]
    assert older["metadata"]["date_updated"] == "2026-12-13"
    assert older["model_specification"]["model_version"].startswith("older@")


@pytest.mark.parametrize(
    ("fmt", "accept", "html"),
    [
        (None, None, False),
        (None, "application/json", False),
        (None, "text/html,application/xhtml+xml,*/*;q=0.8", True),
        (None, "application/json, text/html;q=0.5", False),
        (None, "text/html;q=0.5, application/json;q=0.9", False),
        (None, "text/html;q=x", False),
        ("html", "application/json", True),
        ("json", "text/html", False),
    ],
)
def test_html_is_served_when_asked_for_or_preferred(
    fmt: str | None, accept: str | None, html: bool
) -> None:
    assert wants_html(fmt, accept) is html


def test_section_keys_are_the_standards_section_names_snake_cased() -> None:
    assert section_key("Risks, mitigations and impact assessments") == (
        "risks_mitigations_and_impact_assessments"
    )
    assert section_key("Decision-making Process") == "decision_making_process"
