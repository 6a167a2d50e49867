"""Each council's transparency record over HTTP: complete against the ATRS v3.0 field list
beside the repository (``../shared/standards/atrs/atrs-v3.0-fields.csv``), as JSON and as a
page; public, with no personal data; made from the ruleset in force for that council."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import pytest

from devtools.demo_councils import DEMO_COUNCILS, NEWHAM, describe_demo_councils
from services.risk.domain.atrs import section_key
from shared.auth import OrganisationKind, Role, mint_token
from tests.integration.risk.conftest import RiskApi
from tests.integration.risk.test_signals_and_rules import CANDIDATE
from tests.integration.risk.test_use_cases_signals import RECENT

pytestmark = pytest.mark.integration

DETAILS = DEMO_COUNCILS[NEWHAM].model_dump(mode="json")


def bearer(risk: RiskApi, organisation: str, kind: OrganisationKind, *roles: Role) -> dict:
    token = mint_token(
        risk.settings, subject="someone", organisation=organisation, kind=kind, roles=roles
    )
    return {"Authorization": f"Bearer {token}"}


def ig_team(risk: RiskApi, council: str | None = None) -> dict:
    return bearer(
        risk, council or risk.council, OrganisationKind.COUNCIL, Role.INFORMATION_GOVERNANCE
    )


def required_fields(standards: Path) -> list[tuple[str, str]]:
    """(section key, attribute) of every attribute the standard marks required."""
    with (standards / "atrs" / "atrs-v3.0-fields.csv").open(newline="") as fields:
        return [
            (section_key(row["section"]), row["attribute"])
            for row in csv.DictReader(fields)
            if row["required"].strip().upper() == "TRUE"
        ]


def _filled(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list):
        return bool(value) and all(_filled(item) for item in value)
    return value is not None


async def test_every_required_atrs_attribute_is_present_and_filled(
    risk: RiskApi, standards: Path
) -> None:
    required = required_fields(standards)
    assert len(required) > 50  # the list was read
    put = await risk.client.put(
        f"/v1/councils/{risk.council}/transparency", json=DETAILS, headers=ig_team(risk)
    )
    assert put.status_code == 200, put.text

    response = await risk.client.get(f"/v1/transparency/{risk.council}")  # no token
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    record = response.json()
    missing = [
        f"{section}.{attribute}"
        for section, attribute in required
        if not _filled(record.get(section, {}).get(attribute))
    ]
    assert missing == []
    # The rules-derived fields come from the ruleset in force; the organisational from the
    # council's details.
    assert record["model_specification"]["model_version"].startswith("default@")
    assert "rent-arrears-8-weeks" in record["model_specification"]["model_architecture"]
    assert record["owner_and_responsibility"]["team"] == DETAILS["team"]
    assert record["metadata"]["standard_version"] == "3.0"

    page = await risk.client.get(f"/v1/transparency/{risk.council}?format=html")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    html = page.text
    for section, attribute in required:
        shown = re.search(
            rf'<dd data-attribute="{attribute}">\s*(.*?)\s*</dd>', html, flags=re.DOTALL
        )
        assert shown is not None and shown.group(1).strip(), f"{section}.{attribute}"
        assert "Not applicable." not in shown.group(1), f"{section}.{attribute}"
    assert '<html lang="en">' in html and '<main id="main"' in html
    assert html.count("<h2") >= 10  # one heading a section, then the rules
    # A browser asking for HTML gets the page, a client asking for JSON the JSON.
    browser = await risk.client.get(
        f"/v1/transparency/{risk.council}",
        headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
    )
    assert browser.headers["content-type"].startswith("text/html")
    client = await risk.client.get(
        f"/v1/transparency/{risk.council}", headers={"Accept": "application/json"}
    )
    assert client.headers["content-type"].startswith("application/json")


async def test_the_record_follows_the_councils_own_ruleset_and_no_other_councils(
    risk: RiskApi,
) -> None:
    other = "E09000012"
    operator = risk.token("operator")
    for council in (risk.council, other):
        put = await risk.client.put(
            f"/v1/councils/{council}/transparency", json=DETAILS, headers=operator
        )
        assert put.status_code == 200, put.text
    proposed = await risk.client.post(
        "/v1/rulesets",
        content=CANDIDATE,
        headers={**operator, "content-type": "application/yaml"},
    )
    version = proposed.json()["version"]
    # Only an operator chooses a council's rules.
    for refused in (risk.token("caseworker"), ig_team(risk)):
        answer = await risk.client.put(
            f"/v1/councils/{risk.council}/ruleset", json={"version": version}, headers=refused
        )
        assert answer.status_code == 403
    chosen = await risk.client.put(
        f"/v1/councils/{risk.council}/ruleset", json={"version": version}, headers=operator
    )
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["own"] is True and chosen.json()["ruleset"]["version"] == version

    own = (await risk.client.get(f"/v1/transparency/{risk.council}")).json()
    default = (await risk.client.get(f"/v1/transparency/{other}")).json()
    assert own["model_specification"]["model_version"] == version
    assert own["upstream"]["ruleset_is_the_councils_own"] is True
    assert [r["id"] for r in own["upstream"]["rules"]] == [
        "rent-arrears-4-weeks",
        "council-tax-any-stage",
    ]
    assert "weeks >= 4" in own["model_specification"]["model_architecture"]  # thresholds
    assert default["model_specification"]["model_version"].startswith("default@")
    assert default["upstream"]["ruleset_is_the_councils_own"] is False

    seen = await risk.client.get(f"/v1/councils/{other}/ruleset", headers=risk.token("caseworker"))
    assert seen.status_code == 200 and seen.json()["own"] is False
    back = await risk.client.delete(f"/v1/councils/{risk.council}/ruleset", headers=operator)
    assert back.status_code == 200 and back.json()["own"] is False
    again = await risk.client.delete(f"/v1/councils/{risk.council}/ruleset", headers=operator)
    assert again.status_code == 404
    unknown = await risk.client.put(
        f"/v1/councils/{risk.council}/ruleset",
        json={"version": "no-such@000000000000"},
        headers=operator,
    )
    assert unknown.status_code == 404


async def test_who_sets_a_councils_details_and_what_they_must_hold(risk: RiskApi) -> None:
    path = f"/v1/councils/{risk.council}/transparency"
    # Another council's IG team, the council's own caseworker, a partner: refused.
    for refused in (
        ig_team(risk, "E09000001"),
        risk.token("caseworker"),
        bearer(risk, "a-partner", OrganisationKind.VCS, Role.PARTNER),
    ):
        assert (await risk.client.put(path, json=DETAILS, headers=refused)).status_code == 403
    assert (await risk.client.put(path, json=DETAILS)).status_code == 401
    incomplete = {k: v for k, v in DETAILS.items() if k != "senior_responsible_owner"}
    refused_body = await risk.client.put(path, json=incomplete, headers=ig_team(risk))
    assert refused_body.status_code == 422
    not_https = {**DETAILS, "website_url": "http://example.org"}
    assert (await risk.client.put(path, json=not_https, headers=ig_team(risk))).status_code == 422
    # No details, no record (rather than an incomplete one); a code that is no council: 422.
    assert (await risk.client.get(f"/v1/transparency/{risk.council}")).status_code == 404
    assert (await risk.client.get("/v1/transparency/newham")).status_code == 422


async def test_the_record_holds_no_personal_data_and_reading_it_writes_nothing(
    risk: RiskApi,
) -> None:
    await risk.client.put(
        f"/v1/councils/{risk.council}/transparency", json=DETAILS, headers=ig_team(risk)
    )
    imported = await risk.upload(
        "type,council,given_name,family_name,date_of_birth,postcode,source,observed_on,"
        "notice_type,notice_date\n"
        f"eviction_notice,{risk.council},Zebedee,Quartermaine,1984-03-02,E15 4HT,court,"
        f"{RECENT},section_21,{RECENT}\n"
    )
    assert imported["rows_stored"] == 1 and imported["flagged"] == 1
    audit_rows = await risk.count("audit_log")
    outbox = await risk.count("outbox")
    for fmt in ("json", "html"):
        response = await risk.client.get(f"/v1/transparency/{risk.council}?format={fmt}")
        assert response.status_code == 200
        for identifier in ("Zebedee", "Quartermaine", "1984-03-02", "E15 4HT", "E15"):
            assert identifier not in response.text
    assert await risk.count("audit_log") == audit_rows  # no personal data read: nothing audited
    assert await risk.count("outbox") == outbox


async def test_the_development_stack_describes_the_demo_councils_once(
    risk: RiskApi, standards: Path
) -> None:
    """What ``make run`` does after migrating: Newham and Hackney get complete records, and a
    council's own edits are not overwritten when the stack starts again."""
    assert await describe_demo_councils(risk.engine) == 2
    edited = {**DETAILS, "team": "Our own team"}
    put = await risk.client.put(
        f"/v1/councils/{NEWHAM}/transparency", json=edited, headers=ig_team(risk, NEWHAM)
    )
    assert put.status_code == 200
    assert await describe_demo_councils(risk.engine) == 0
    for council in DEMO_COUNCILS:
        record = (await risk.client.get(f"/v1/transparency/{council}")).json()
        assert [
            f"{s}.{a}" for s, a in required_fields(standards) if not _filled(record[s][a])
        ] == []
    newham = (await risk.client.get(f"/v1/transparency/{NEWHAM}")).json()
    assert newham["owner_and_responsibility"]["team"] == "Our own team"
