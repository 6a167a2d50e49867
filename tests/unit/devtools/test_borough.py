"""`upstream check-borough`: the demo borough's example file passes, and each kind of mistake
a borough can make fails, naming the field at fault; `upstream replicate-docs` renders the
outlines from what the file says. Files only: no service is started."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from devtools.borough import (
    AUTHORITIES,
    Check,
    check_borough,
    check_councils,
    read_config,
    render_outlines,
)
from devtools.cli import app
from services.partners.settings import DEVELOPMENT_TOMBSTONE_SECRET
from shared.settings import DEVELOPMENT_RESIDENT_KEY_SECRET

REPLICATE = Path(__file__).resolve().parents[3] / "docs" / "replicate"
EXAMPLE = REPLICATE / "borough.example.yaml"
GOOD_SECRETS = {
    "UPSTREAM_RESIDENT_KEY_SECRET": "r" * 40,
    "UPSTREAM_TOMBSTONE_SECRET": "t" * 40,
    "UPSTREAM_JWT_SIGNING_KEY": "j" * 40,
    "UPSTREAM_COUNCILS": '["E09000025","E09000012"]',
}
needs_register = pytest.mark.skipif(
    not AUTHORITIES.exists(), reason=f"the register of UK local authorities is not at {AUTHORITIES}"
)


def failures(checks: list[Check]) -> list[Check]:
    return [check for check in checks if not check.passed]


def fails(checks: list[Check], field: str, *words: str) -> bool:
    """Some check of exactly this field failed, its reason holding these words."""
    return any(c.field == field and all(w in c.reason for w in words) for c in failures(checks))


@pytest.fixture
def borough(tmp_path: Path) -> Callable[..., list[Check]]:
    """Writes a changed copy of the example (with its directory file) and checks it."""

    def check(
        change: Callable[[dict[str, Any]], None] = lambda _: None,
        directory: Callable[[list[dict[str, Any]]], None] = lambda _: None,
        environment: dict[str, str] | None = None,
    ) -> list[Check]:
        config = yaml.safe_load(EXAMPLE.read_text())
        change(config)
        documents = json.loads((REPLICATE / "directory.example.json").read_text())
        directory(documents)
        (tmp_path / "directory.example.json").write_text(json.dumps(documents))
        (tmp_path / "borough.yaml").write_text(yaml.safe_dump(config))
        checks, _ = check_borough(
            tmp_path / "borough.yaml",
            environment=GOOD_SECRETS if environment is None else environment,
        )
        return checks

    return check


def test_the_example_file_passes_every_check() -> None:
    checks, borough = check_borough(EXAMPLE, environment=GOOD_SECRETS)
    assert failures(checks) == []
    assert borough is not None and len(borough.agreements) == 16 and len(borough.partners) == 12
    # every kind of check ran
    for field in (
        "councils[0].code",
        "councils[0].areas",
        "councils[1].ruleset",
        "councils[1].transparency",
        "directory.file",
        "agreements[0]",
        "UPSTREAM_RESIDENT_KEY_SECRET",
        "UPSTREAM_COUNCILS",
    ):
        assert any(c.field == field for c in checks), field


def test_a_file_that_is_not_a_borough_configuration_fails(tmp_path: Path) -> None:
    broken = tmp_path / "b.yaml"
    broken.write_text("councils: [\n")
    checks, borough = check_borough(broken, environment=GOOD_SECRETS)
    assert borough is None and "not valid YAML" in checks[0].reason
    broken.write_text(
        yaml.safe_dump({"name": "x", "councils": [], "directory": {"file": "d"}, "partners": []})
    )
    checks, _ = check_borough(broken, environment=GOOD_SECRETS)
    assert fails(checks, "borough.councils") and fails(checks, "borough.partners", "Extra")


@needs_register
def test_a_council_code_not_in_the_register_fails(borough: Callable[..., list[Check]]) -> None:
    def unknown(config: dict[str, Any]) -> None:
        config["councils"][1]["code"] = "E09999999"

    checks = borough(unknown)
    assert fails(checks, "councils[1].code", "E09999999", "not a current UK local authority")


def test_without_the_register_a_code_is_checked_for_its_shape() -> None:
    config, _ = read_config(EXAMPLE)
    assert config is not None
    config.councils[0].code = "Newham"
    checks = check_councils(config, None)
    assert fails(checks, "councils[0].code", "Newham", "shaped as a GSS code")
    assert not fails(checks, "councils[1].code")


def test_areas_must_be_postcode_districts(borough: Callable[..., list[Check]]) -> None:
    def full_postcodes(config: dict[str, Any]) -> None:
        config["councils"][0]["areas"] = ["E15 4HT", "e6", "E7", "E7"]

    checks = borough(full_postcodes)
    assert fails(checks, "councils[0].areas", "E15 4HT", "e6")
    assert fails(checks, "councils[0].areas", "listed twice: E7")


def test_a_ruleset_that_does_not_compile_fails_naming_its_rule(
    borough: Callable[..., list[Check]], tmp_path: Path
) -> None:
    (tmp_path / "ours.yaml").write_text(
        "label: ours\nflag_level: high\nrules:\n"
        "  - id: arrears\n    description: Rent arrears\n    explanation: Arrears\n"
        "    when: 'signals.rent_arrears.weeks >='\n    level: high\n    score: 40\n"
    )

    def own_ruleset(config: dict[str, Any]) -> None:
        config["councils"][0]["ruleset"] = "ours.yaml"
        config["councils"][1]["ruleset"] = "missing.yaml"

    checks = borough(own_ruleset)
    assert fails(checks, "councils[0].ruleset", "rule 'arrears'", "not valid CEL")
    assert fails(checks, "councils[1].ruleset", "missing.yaml", "cannot be read")


def test_incomplete_atrs_details_fail_naming_the_field(
    borough: Callable[..., list[Check]],
) -> None:
    def incomplete(config: dict[str, Any]) -> None:
        del config["councils"][0]["transparency"]["benefit"]
        config["councils"][1]["transparency"]["website_url"] = "http://www.hackney.gov.uk"

    checks = borough(incomplete)
    assert fails(checks, "councils[0].transparency.benefit", "required")
    assert fails(checks, "councils[1].transparency.website_url", "https")


def test_directory_services_the_import_would_not_take_fail(
    borough: Callable[..., list[Check]],
) -> None:
    def spoil(documents: list[dict[str, Any]]) -> None:
        documents[0]["attributes"] = []  # no Upstream need
        documents[1]["service_areas"] = []
        documents[2]["languages"] = [{"code": "English"}]
        documents[3]["id"] = "not-a-uuid"

    checks = borough(directory=spoil)
    assert fails(checks, "directory.file[0] (Newham Food Bank)", "no Upstream need")
    assert fails(checks, "directory.file[1] (Stratford Community Pantry)", "no service area")
    assert fails(checks, "directory.file[2] (Hackney Food Network).languages.0", "pattern")
    assert fails(checks, "directory.file[3] (East London Money Advice)", "UUID")


def test_a_directory_file_that_is_not_oruk_fails(borough: Callable[..., list[Check]]) -> None:
    def elsewhere(config: dict[str, Any]) -> None:
        config["directory"]["file"] = "absent.json"

    assert fails(borough(elsewhere), "directory.file", "cannot be read")

    def not_json(config: dict[str, Any]) -> None:
        config["directory"]["file"] = "borough.yaml"

    assert fails(borough(not_json), "directory.file", "borough.yaml")


def test_a_council_no_partner_serves_fails(borough: Callable[..., list[Check]]) -> None:
    def only_newham(documents: list[dict[str, Any]]) -> None:
        for document in documents:
            document["service_areas"] = [
                a for a in document["service_areas"] if a["extent"] != "E09000012"
            ] or [{"extent": "E09000025", "extent_type": "gss_code"}]

    checks = borough(directory=only_newham)
    assert fails(checks, "councils[1]", "no partner in the directory serves", "Hackney")


def test_agreements_must_name_known_partners_needs_bases_and_ordered_dates(
    borough: Callable[..., list[Check]],
) -> None:
    def mistaken(config: dict[str, Any]) -> None:
        agreements = config["agreements"]
        agreements[0]["partner"] = "Nobody's Food Bank"
        agreements[1]["terms"]["needs"] = ["food", "groceries"]
        agreements[2]["terms"]["lawful_bases"] = ["legitimate_interest"]
        agreements[3]["terms"]["ends_on"] = "2025-12-31"
        agreements[4]["terms"]["council"] = "E09000001"
        agreements[5]["terms"]["needs"] = ["housing"]  # the clinic offers benefits advice only

    checks = borough(mistaken)
    assert fails(checks, "agreements[0].partner", "Nobody's Food Bank")
    assert fails(checks, "agreements[1].terms.needs.1", "food")  # lists the needs it takes
    assert fails(checks, "agreements[2].terms.lawful_bases.0", "consent")
    assert fails(checks, "agreements[3].terms", "ends_on must not be before starts_on")
    assert fails(checks, "agreements[4].terms.council", "E09000001", "no council of this file")
    assert fails(checks, "agreements[5].terms.needs", "Hackney Benefits Clinic", "housing")
    # Its only agreement was refused: the clinic would be offered nothing.
    assert fails(checks, "agreements", "Hackney Benefits Clinic", "nothing would be offered")


def test_secrets_left_at_development_values_fail(borough: Callable[..., list[Check]]) -> None:
    checks = borough(
        environment={
            "UPSTREAM_RESIDENT_KEY_SECRET": DEVELOPMENT_RESIDENT_KEY_SECRET,
            "UPSTREAM_TOMBSTONE_SECRET": "short",
            "UPSTREAM_COUNCILS": '["E09000025"]',
        }
    )
    assert fails(checks, "UPSTREAM_RESIDENT_KEY_SECRET", "development value")
    assert fails(checks, "UPSTREAM_TOMBSTONE_SECRET", "shorter than 32")
    assert fails(checks, "UPSTREAM_JWT_SIGNING_KEY", "not set")
    assert fails(checks, "UPSTREAM_COUNCILS", "E09000012")
    assert fails(
        borough(
            environment={**GOOD_SECRETS, "UPSTREAM_TOMBSTONE_SECRET": DEVELOPMENT_TOMBSTONE_SECRET}
        ),
        "UPSTREAM_TOMBSTONE_SECRET",
        "development value",
    )


def test_a_jwks_replaces_the_signing_key_and_must_be_https(
    borough: Callable[..., list[Check]],
) -> None:
    secrets = {k: v for k, v in GOOD_SECRETS.items() if k != "UPSTREAM_JWT_SIGNING_KEY"}
    checks = borough(environment={**secrets, "UPSTREAM_JWT_JWKS_URL": "https://id.example/jwks"})
    assert failures(checks) == []
    checks = borough(environment={**secrets, "UPSTREAM_JWT_JWKS_URL": "http://id.example/jwks"})
    assert fails(checks, "UPSTREAM_JWT_JWKS_URL", "https")


def test_secrets_are_read_from_the_env_file_the_environment_winning(
    borough: Callable[..., list[Check]], tmp_path: Path
) -> None:
    (tmp_path / "deploy.env").write_text(
        "# the deployment\n" + "".join(f"{k}='{v}'\n" for k, v in GOOD_SECRETS.items())
    )

    def with_env_file(config: dict[str, Any]) -> None:
        config["settings"]["env_file"] = "deploy.env"

    assert failures(borough(with_env_file, environment={})) == []
    weak = {"UPSTREAM_JWT_SIGNING_KEY": "weak"}
    assert fails(borough(with_env_file, environment=weak), "UPSTREAM_JWT_SIGNING_KEY", "shorter")


def test_the_outlines_are_filled_from_the_configuration(tmp_path: Path) -> None:
    _, borough = check_borough(EXAMPLE, environment=GOOD_SECRETS)
    assert borough is not None
    written = render_outlines(borough, tmp_path)
    assert sorted(p.name for p in written) == [
        "data-sharing-agreement-E09000012.md",
        "data-sharing-agreement-E09000025.md",
        "dpia-E09000012.md",
        "dpia-E09000025.md",
    ]
    agreement = (tmp_path / "data-sharing-agreement-E09000012.md").read_text()
    assert "London Borough of Hackney (E09000012)" in agreement
    assert (
        "| Hackney Benefits Clinic | E09000012 voluntary-sector DSA 2026 | benefits |" in agreement
    )
    assert "Newham Food Bank" not in agreement  # Newham's partner only
    assert "goes only to: Mind in the East End." in agreement
    dpia = (tmp_path / "dpia-E09000025.md").read_text()
    assert "Senior responsible owner: Director of Housing Needs and Prevention" in dpia
    assert "| rent-arrears-8-weeks |" in dpia and "rent arrears (`rent_arrears`)" in dpia
    assert "postcode districts E6, E7, E12, E13, E15, E16" in dpia


def test_the_commands_exit_non_zero_on_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    for key, value in GOOD_SECRETS.items():
        monkeypatch.setenv(key, value)
    passed = runner.invoke(app, ["check-borough", str(EXAMPLE)])
    assert passed.exit_code == 0, passed.output
    assert "pass  councils[0].code" in passed.output and "0 failed" in passed.output

    spoiled = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
    spoiled["agreements"][0]["terms"]["starts_on"] = "2030-01-01"
    spoiled["directory"]["file"] = str(REPLICATE / "directory.example.json")
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(spoiled))
    monkeypatch.delenv("UPSTREAM_RESIDENT_KEY_SECRET")
    failed = runner.invoke(app, ["check-borough", str(tmp_path / "b.yaml")])
    assert failed.exit_code == 1
    assert "FAIL  agreements[0].terms: " in failed.output
    assert "FAIL  UPSTREAM_RESIDENT_KEY_SECRET: not set" in failed.output

    rendered = runner.invoke(
        app, ["replicate-docs", str(EXAMPLE), "--output", str(tmp_path / "outlines")]
    )
    assert rendered.exit_code == 0, rendered.output
    assert len(list((tmp_path / "outlines").glob("*.md"))) == 4
    refused = runner.invoke(
        app, ["replicate-docs", str(tmp_path / "b.yaml"), "--output", str(tmp_path / "no")]
    )
    assert refused.exit_code == 1 and not (tmp_path / "no").exists()


def test_the_example_holds_the_demo_boroughs_values() -> None:
    """The example is what `make demo` runs: the same councils, areas, ATRS details,
    partners and agreements (so it cannot drift from the demo unnoticed)."""
    from devtools.demo import DISTRICTS, PARTNERS
    from devtools.demo_councils import DEMO_COUNCILS

    _, borough = check_borough(EXAMPLE, environment=GOOD_SECRETS)
    assert borough is not None
    for council in borough.config.councils:
        assert council.areas == DISTRICTS[council.code]
        assert borough.details[council.code] == DEMO_COUNCILS[council.code]
    partners = {p.name: p for p in borough.partners.values()}
    assert set(partners) == {name for name, *_ in PARTNERS}
    for name, _, needs, councils, *_, health in PARTNERS:
        assert partners[name].needs == set(needs) and partners[name].councils == set(councils)
        agreed = [t for p, t in borough.agreements if p.name == name]
        assert {t.council for t in agreed} == set(councils)
        assert all(t.special_category == health for t in agreed)
