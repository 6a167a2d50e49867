"""A borough's configuration, checked before go-live (``upstream check-borough FILE``), and
its data-sharing-agreement and DPIA outlines rendered from it (``upstream replicate-docs``).

The file (YAML; ``docs/replicate/borough.example.yaml`` is the demo's) names what another
borough configures: its councils and their areas, the Open Referral UK directory file its
partners are imported from, each council's ruleset and ATRS details, its data-sharing
agreements, and where its deployment's settings come from. Every check uses the services'
own code: the risk service's ruleset compiler, the partners service's ORUK reading and
service and agreement validation, the risk service's ATRS details, the settings' rule on
development secrets, so a file that passes here is one the services take.
"""

from __future__ import annotations

import csv
import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.partners.domain import oruk
from services.partners.domain.routing import DataCategory
from services.partners.service_layer.agreements import AgreementTerms
from services.partners.service_layer.directory import ServiceDetails
from services.partners.settings import DEVELOPMENT_TOMBSTONE_SECRET
from services.risk.domain.atrs import CouncilDetails, rule_lines
from services.risk.domain.rules import Ruleset, RulesetError, load_ruleset
from services.risk.domain.signals import CATALOGUE
from services.risk.service_layer.rulesets import DEFAULT_RULESET
from shared.settings import DEVELOPMENT_JWT_SIGNING_KEY, DEVELOPMENT_RESIDENT_KEY_SECRET
from shared.vocabulary import PartnerKind

REPO = Path(__file__).resolve().parents[1]
# The public standards beside the repository (as the tests find them).
STANDARDS = Path(os.environ.get("UPSTREAM_STANDARDS_DIR") or REPO.parent / "shared" / "standards")
AUTHORITIES = STANDARDS / "uk-taxonomies" / "mysociety-uk_local_authorities.csv"
# The partners service's own pattern for a service area's postcode district.
POSTCODE_DISTRICT = re.compile(
    ServiceDetails.model_json_schema()["properties"]["postcode_districts"]["items"]["pattern"]
)
# Secrets the services refuse to run with at their development value outside development;
# 32+ characters, as deploy/.env.example asks.
SECRETS = {
    "UPSTREAM_RESIDENT_KEY_SECRET": DEVELOPMENT_RESIDENT_KEY_SECRET,
    "UPSTREAM_TOMBSTONE_SECRET": DEVELOPMENT_TOMBSTONE_SECRET,
    "UPSTREAM_JWT_SIGNING_KEY": DEVELOPMENT_JWT_SIGNING_KEY,
}
MINIMUM_SECRET_LENGTH = 32


# -- the file --------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CouncilConfig(_Strict):
    code: str = Field(description="the council's GSS code, e.g. E09000025")
    name: str = Field(min_length=1, max_length=200)
    areas: list[str] = Field(min_length=1, description="the postcode districts it serves")
    ruleset: str | None = Field(
        default=None,
        description="its own ruleset (YAML), relative to this file; none: the default ruleset",
    )
    transparency: dict[str, Any] = Field(
        description="its ATRS details, as PUT /v1/councils/{council}/transparency takes them"
    )


class DirectoryConfig(_Strict):
    file: str = Field(description="the ORUK services (JSON), relative to this file")
    kind: PartnerKind = PartnerKind.COMMUNITY
    capacity: int = Field(default=10, ge=0, le=10_000)


class AgreementConfig(_Strict):
    partner: str = Field(description="an organisation of the directory file: its id or name")
    terms: dict[str, Any] = Field(description="as POST /v1/agreements takes them")


class SettingsConfig(_Strict):
    env_file: str | None = Field(
        default=None,
        description="a KEY=value file (deploy/.env) read before the environment, relative to "
        "this file; the secrets themselves never go in the borough file",
    )


class BoroughConfig(_Strict):
    name: str = Field(min_length=1, max_length=200)
    councils: list[CouncilConfig] = Field(min_length=1)
    directory: DirectoryConfig
    agreements: list[AgreementConfig] = []
    settings: SettingsConfig = SettingsConfig()


@dataclass(frozen=True)
class Check:
    """One check: what it is about (a field of the file), whether it passed, and why."""

    field: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class Partner:
    """An organisation of the directory file, and what its services offer."""

    id: str
    name: str
    email: str | None
    website: str | None
    needs: frozenset[str]
    councils: frozenset[str]
    districts: frozenset[str]


@dataclass
class Borough:
    """A configuration read, with what the checks found in it (for the outlines)."""

    config: BoroughConfig
    base: Path
    rulesets: dict[str, Ruleset]  # council code -> its ruleset, when it compiled
    details: dict[str, CouncilDetails]  # council code -> its ATRS details, when valid
    partners: dict[str, Partner]  # organisation id -> partner
    agreements: list[tuple[Partner, AgreementTerms]]  # the valid ones


def _where(prefix: str, error: Mapping[str, Any]) -> str:
    return ".".join([prefix, *map(str, error["loc"])]) if error["loc"] else prefix


def _failed(prefix: str, exc: ValidationError) -> list[Check]:
    return [Check(_where(prefix, e), False, e["msg"]) for e in exc.errors()]


def read_config(path: Path) -> tuple[BoroughConfig | None, list[Check]]:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        return None, [Check(str(path), False, f"cannot be read: {exc.strerror}")]
    except yaml.YAMLError as exc:
        return None, [Check(str(path), False, f"not valid YAML: {' '.join(str(exc).split())}")]
    try:
        return BoroughConfig.model_validate(raw), []
    except ValidationError as exc:
        return None, _failed("borough", exc)


# -- the checks ------------------------------------------------------------------------------


def registered_authorities(register: Path = AUTHORITIES) -> dict[str, str] | None:
    """GSS code -> name of every current UK local authority, or None without the register."""
    if not register.exists():
        return None
    with register.open(newline="") as handle:
        return {
            row["gss-code"]: row["official-name"]
            for row in csv.DictReader(handle)
            if row["gss-code"] and not row["end-date"]
        }


def check_councils(config: BoroughConfig, authorities: dict[str, str] | None) -> list[Check]:
    checks = []
    seen: set[str] = set()
    for index, council in enumerate(config.councils):
        where = f"councils[{index}]"
        if council.code in seen:
            checks.append(Check(f"{where}.code", False, f"{council.code} is listed twice"))
        seen.add(council.code)
        if authorities is None:
            checks.append(
                Check(
                    f"{where}.code",
                    bool(re.fullmatch(r"[ENSWK][0-9]{8}", council.code)),
                    f"{council.code}: shaped as a GSS code (the register of UK local "
                    f"authorities, {AUTHORITIES}, is not here to look it up)",
                )
            )
        elif council.code in authorities:
            checks.append(
                Check(f"{where}.code", True, f"{council.code} is {authorities[council.code]}")
            )
        else:
            checks.append(
                Check(
                    f"{where}.code",
                    False,
                    f"{council.code} is not a current UK local authority's GSS code",
                )
            )
        wrong = [a for a in council.areas if not POSTCODE_DISTRICT.fullmatch(a)]
        checks.append(
            Check(
                f"{where}.areas",
                not wrong,
                f"not postcode districts (e.g. E15, N16): {', '.join(wrong)}"
                if wrong
                else f"{len(council.areas)} postcode districts",
            )
        )
        duplicated = sorted({a for a in council.areas if council.areas.count(a) > 1})
        if duplicated:
            checks.append(Check(f"{where}.areas", False, f"listed twice: {', '.join(duplicated)}"))
    return checks


def check_rulesets(config: BoroughConfig, base: Path) -> tuple[list[Check], dict[str, Ruleset]]:
    checks, compiled = [], {}
    for index, council in enumerate(config.councils):
        where = f"councils[{index}].ruleset"
        path = (base / council.ruleset) if council.ruleset else DEFAULT_RULESET
        try:
            source = path.read_text()
        except OSError as exc:
            checks.append(Check(where, False, f"{path}: cannot be read: {exc.strerror}"))
            continue
        try:
            ruleset = load_ruleset(source)
        except RulesetError as exc:
            checks += [Check(where, False, f"{path.name}: {error}") for error in exc.errors]
            continue
        compiled[council.code] = ruleset
        whose = path.name if council.ruleset else "the default ruleset"
        checks.append(
            Check(
                where,
                True,
                f"{whose} compiles: {ruleset.version}, {len(ruleset.rules)} rules, flags at "
                f"{ruleset.spec.flag_level.value} and above",
            )
        )
    return checks, compiled


def check_transparency(config: BoroughConfig) -> tuple[list[Check], dict[str, CouncilDetails]]:
    checks, valid = [], {}
    for index, council in enumerate(config.councils):
        where = f"councils[{index}].transparency"
        try:
            details = CouncilDetails.model_validate(council.transparency)
        except ValidationError as exc:
            checks += _failed(where, exc)
            continue
        valid[council.code] = details
        checks.append(Check(where, True, "every ATRS organisational field the record needs"))
    return checks, valid


def read_directory(path: Path) -> list[Any]:
    """The ORUK services of a file: a list, or a page with ``contents`` (as the import takes)."""
    body = json.loads(path.read_text())
    documents = body.get("contents", []) if isinstance(body, dict) else body
    if not isinstance(documents, list):
        raise ValueError("neither a list of ORUK services nor a page with contents")
    return documents


def check_directory(config: BoroughConfig, base: Path) -> tuple[list[Check], dict[str, Partner]]:
    """Each ORUK service read as ``POST /v1/directory/import`` reads it: what the import
    would skip, or refuse, fails here, naming the service."""
    where = "directory.file"
    path = base / config.directory.file
    try:
        documents = read_directory(path)
    except OSError as exc:
        return [Check(where, False, f"{path}: cannot be read: {exc.strerror}")], {}
    except ValueError as exc:  # json.JSONDecodeError is one
        return [Check(where, False, f"{path.name}: {exc}")], {}
    checks: list[Check] = []
    found: dict[str, dict[str, Any]] = {}
    for index, document in enumerate(documents):
        label = f"{where}[{index}]"
        if not isinstance(document, dict):
            checks.append(Check(label, False, "not an ORUK service (a JSON object)"))
            continue
        label = f"{where}[{index}] ({document.get('name') or document.get('id', '?')})"
        try:
            org, service = oruk.from_service(document)
            uuid.UUID(service["id"])
            uuid.UUID(org["id"] or "")
        except (KeyError, TypeError, ValueError):
            checks.append(
                Check(label, False, "not an ORUK service with an organization (ids are UUIDs)")
            )
            continue
        if not service["needs"]:
            checks.append(
                Check(label, False, "no Upstream need among its attributes' taxonomy terms")
            )
            continue
        if not (service["councils"] or service["postcode_districts"]):
            checks.append(
                Check(label, False, "no service area (a gss_code or a postcode_district)")
            )
            continue
        hours, _ = oruk.opening_hours(document)
        try:
            ServiceDetails.model_validate(
                {
                    **{k: v for k, v in service.items() if k != "id" and v is not None},
                    "opening_hours": hours,
                    "capacity": config.directory.capacity,
                }
            )
        except ValidationError as exc:
            checks += _failed(label, exc)
            continue
        partner = found.setdefault(
            org["id"],
            {"org": org, "needs": set(), "councils": set(), "districts": set()},
        )
        partner["needs"].update(service["needs"])
        partner["councils"].update(service["councils"])
        partner["districts"].update(service["postcode_districts"])
    partners = {
        org_id: Partner(
            id=org_id,
            name=values["org"]["name"],
            email=values["org"]["email"],
            website=values["org"]["website"],
            needs=frozenset(values["needs"]),
            councils=frozenset(values["councils"]),
            districts=frozenset(values["districts"]),
        )
        for org_id, values in found.items()
    }
    if not checks:
        checks.append(
            Check(
                where,
                True,
                f"{len(documents)} ORUK services of {len(partners)} organisations, each one "
                "the partners' import takes",
            )
        )
    for index, council in enumerate(config.councils):
        serving = [
            p
            for p in partners.values()
            if council.code in p.councils or p.districts & set(council.areas)
        ]
        checks.append(
            Check(
                f"councils[{index}]",
                bool(serving),
                f"{len(serving)} partners in the directory serve {council.name}"
                if serving
                else f"no partner in the directory serves {council.name} (its code or areas)",
            )
        )
    return checks, partners


def check_agreements(
    config: BoroughConfig, partners: dict[str, Partner]
) -> tuple[list[Check], list[tuple[Partner, AgreementTerms]]]:
    checks: list[Check] = []
    valid: list[tuple[Partner, AgreementTerms]] = []
    councils = {c.code for c in config.councils}
    by_name = {p.name: p for p in partners.values()}
    for index, agreement in enumerate(config.agreements):
        where = f"agreements[{index}]"
        partner = partners.get(agreement.partner) or by_name.get(agreement.partner)
        if partner is None:
            checks.append(
                Check(
                    f"{where}.partner",
                    False,
                    f"{agreement.partner!r} is no organisation of the directory file",
                )
            )
        try:
            terms = AgreementTerms.model_validate(agreement.terms)
        except ValidationError as exc:
            checks += _failed(f"{where}.terms", exc)
            continue
        if terms.council not in councils:
            checks.append(
                Check(
                    f"{where}.terms.council", False, f"{terms.council} is no council of this file"
                )
            )
            continue
        if partner is None:
            continue
        uncovered = sorted(n.value for n in terms.needs if n.value not in partner.needs)
        if uncovered:
            checks.append(
                Check(
                    f"{where}.terms.needs",
                    False,
                    f"{partner.name} offers no service for: {', '.join(uncovered)}",
                )
            )
            continue
        valid.append((partner, terms))
        checks.append(
            Check(
                where,
                True,
                f"{partner.name} with {terms.council}: {', '.join(n.value for n in terms.needs)}"
                f" from {terms.starts_on}" + (f" to {terms.ends_on}" if terms.ends_on else ""),
            )
        )
    agreed = {partner.id for partner, _ in valid}
    for partner in partners.values():
        if partner.id not in agreed:
            checks.append(
                Check(
                    "agreements",
                    False,
                    f"{partner.name} has no agreement with a council: nothing would be offered "
                    "to it",
                )
            )
    return checks, valid


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines (as docker compose reads deploy/.env); comments and blanks skipped."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def check_settings(
    config: BoroughConfig,
    base: Path,
    environment: Mapping[str, str],
    env_file: Path | None = None,
) -> list[Check]:
    """The secrets set, and not at their development values; the councils served the same
    as this file's. ``environment`` wins over the env file (``env_file``, else the file's
    ``settings.env_file``), as it does for docker compose."""
    values: dict[str, str] = {}
    if env_file is None and config.settings.env_file:
        env_file = base / config.settings.env_file
    if env_file is not None:
        try:
            values = read_env_file(env_file)
        except OSError as exc:
            return [
                Check("settings.env_file", False, f"{env_file}: cannot be read: {exc.strerror}")
            ]
    values.update({k: v for k, v in environment.items() if k.startswith("UPSTREAM_")})
    checks = []
    jwks = values.get("UPSTREAM_JWT_JWKS_URL", "")
    for name, development in SECRETS.items():
        value = values.get(name, "")
        if name == "UPSTREAM_JWT_SIGNING_KEY" and jwks and not value:
            checks.append(Check(name, True, "not used: tokens are verified against the JWKS"))
        elif not value:
            checks.append(Check(name, False, "not set"))
        elif value == development:
            checks.append(Check(name, False, "still the development value"))
        elif len(value) < MINIMUM_SECRET_LENGTH:
            checks.append(Check(name, False, f"shorter than {MINIMUM_SECRET_LENGTH} characters"))
        else:
            checks.append(Check(name, True, "set, not the development value"))
    if jwks:
        checks.append(
            Check(
                "UPSTREAM_JWT_JWKS_URL",
                jwks.startswith("https://"),
                "https" if jwks.startswith("https://") else "must be an https URL",
            )
        )
    served = values.get("UPSTREAM_COUNCILS")
    listed = sorted(c.code for c in config.councils)
    if served is None:
        checks.append(
            Check(
                "UPSTREAM_COUNCILS",
                False,
                "not set: the referrals service would serve its defaults; set "
                + json.dumps(listed),
            )
        )
    else:
        try:
            codes = json.loads(served)
            same = isinstance(codes, list) and sorted(codes) == listed
        except json.JSONDecodeError:
            same = False
        checks.append(
            Check(
                "UPSTREAM_COUNCILS",
                same,
                "the councils of this file"
                if same
                else f"{served} is not this file's councils as a JSON list: {json.dumps(listed)}",
            )
        )
    return checks


def check_borough(
    path: Path,
    *,
    environment: Mapping[str, str] | None = None,
    env_file: Path | None = None,
) -> tuple[list[Check], Borough | None]:
    """Every check of a borough file, in the order a go-live works through them."""
    config, checks = read_config(path)
    if config is None:
        return checks, None
    base = path.resolve().parent
    checks += check_councils(config, registered_authorities())
    ruleset_checks, rulesets = check_rulesets(config, base)
    details_checks, details = check_transparency(config)
    directory_checks, partners = check_directory(config, base)
    agreement_checks, agreements = check_agreements(config, partners)
    checks += ruleset_checks + details_checks + directory_checks + agreement_checks
    checks += check_settings(
        config, base, os.environ if environment is None else environment, env_file
    )
    return checks, Borough(config, base, rulesets, details, partners, agreements)


# -- the outlines ----------------------------------------------------------------------------

# What a routing packet holds, by category (docs/dpia.md, "Partners").
PACKET = {
    DataCategory.IDENTITY.value: "first name, age",
    DataCategory.CONTACT.value: "one contact route, preferred language, interpreter and "
    "accessibility needs",
    DataCategory.NEEDS.value: "the needs, urgency, a summary of at most 500 characters",
}
TO_COMPLETE = "_To complete._"


def _list(items: Iterable[str], indent: str = "") -> str:
    return "\n".join(f"{indent}- {item}" for item in items) or f"{indent}- none"


def _signals_read(ruleset: Ruleset) -> list[str]:
    reads = ruleset.reads
    named = {*reads.presence, *(kind for kind, _ in reads.fields), *reads.whole_types}
    return [
        f"{info.name} (`{kind.value}`)"
        for kind, info in CATALOGUE.items()
        if reads.all_signals or kind.value in named
    ]


def agreement_outline(borough: Borough, council: CouncilConfig) -> str:
    """The data-sharing agreement outline of one council with its partners."""
    details = borough.details.get(council.code)
    own = [(p, t) for p, t in borough.agreements if t.council == council.code]
    rows = "\n".join(
        f"| {p.name} | {t.reference} | {', '.join(n.value for n in t.needs)} | "
        f"{', '.join(c.value for c in t.data_categories)} | "
        f"{'yes' if t.special_category else 'no'} | {', '.join(b.value for b in t.lawful_bases)} | "
        f"{t.starts_on} | {t.ends_on or 'open'} |"
        for p, t in own
    )
    categories = sorted({c.value for _, t in own for c in t.data_categories})
    special = [p.name for p, t in own if t.special_category]
    who = (
        f" ({details.team}, {details.contact_email}; senior responsible owner: "
        f"{details.senior_responsible_owner})"
        if details
        else ""
    )
    parties = [
        f"{p.name} (directory id `{p.id}`"
        + "".join(f", {extra}" for extra in (p.email, p.website) if extra)
        + ")"
        for p in sorted({p.id: p for p, _ in own}.values(), key=lambda p: p.name)
    ]
    return f"""# Data-sharing agreement outline: {council.name} ({council.code}) and its partners

Rendered from `{borough.config.name}`'s borough configuration by `upstream replicate-docs`.
An outline for the council's information-governance team and each partner to complete and
sign; what the configuration states is filled in, what only people can decide is marked.

## 1. Parties
- **The council** (controller): {council.name}, GSS code {council.code}{who}
- **The partners** (each a controller of what it then holds):
{_list(parties, indent="  ")}

## 2. Purpose
To offer residents of {council.name} support from local partners before they reach a crisis,
and to route each need of a case to a partner that can meet it.
{details.benefit if details else TO_COMPLETE}

Area covered: postcode districts {", ".join(council.areas)}.

## 3. The terms, partner by partner (as recorded with `POST /v1/agreements`)
| partner | reference | needs | data categories | special category | lawful bases | from | to |
|---|---|---|---|---|---|---|---|
{rows}

## 4. What is shared
Only the routing packet of an offer made to the partner, while the offer is open, and only
the categories its agreement names:
{_list(f"{c}: {PACKET.get(c, c)}" for c in categories)}

Special category data (UK GDPR Article 9: mental health, physical health and disability,
domestic abuse needs) goes only to: {", ".join(special) or "no partner"}.
Emails to partners carry no resident data. A partner that declines, or whose offer ends,
sees nothing more. What partners send back: the offer's status, a decline reason, progress
notes and the outcome.

## 5. Lawful basis
A case goes to a partner only under the resident's consent to that kind of partner, or
under a basis this agreement covers with this council (public task, vital interests…), with
the justification and decision-maker recorded on the case.

## 6. Retention and deletion
Each partner's own retention of what it receives: {TO_COMPLETE}
Upstream's retention defaults and erasure: `docs/information-governance.md`.

## 7. Security
Partners sign in with single-use emailed links or API tokens; every read of a packet is
audited. The partner's own measures: {TO_COMPLETE}

## 8. Residents' rights, complaints and breaches
{details.appeals_and_review if details else TO_COMPLETE}
Breach notification between the parties (contacts, within 24 hours): {TO_COMPLETE}

## 9. Review, ending and signatures
An agreement stops new offers when its end date passes or it is ended early
(`POST /v1/agreements/{{id}}/end`); offers already made stay with the partner.
Review date: {TO_COMPLETE} Signatures: {TO_COMPLETE}
"""


def dpia_outline(borough: Borough, council: CouncilConfig) -> str:
    """The data protection impact assessment outline of one council (UK GDPR Article 35)."""
    details = borough.details.get(council.code)
    ruleset = borough.rulesets.get(council.code)
    own = [(p, t) for p, t in borough.agreements if t.council == council.code]

    def stated(field: str) -> str:
        value = getattr(details, field, None) if details else None
        return str(value) if value else TO_COMPLETE

    rules = (
        "\n".join(
            f"| {r['id']} | {r['description']} | {r['level']} | {r['score']} |"
            for r in rule_lines(ruleset)
        )
        if ruleset
        else ""
    )
    risks = list(details.risks_and_mitigations) if details else []
    in_force = (
        f"`{ruleset.version}`, flagging at {ruleset.spec.flag_level.value} and above"
        if ruleset
        else TO_COMPLETE
    )
    recipients = [
        f"{p.name}: {', '.join(n.value for n in t.needs)}; bases "
        f"{', '.join(b.value for b in t.lawful_bases)}"
        + ("; special category" if t.special_category else "")
        for p, t in own
    ]
    return f"""# DPIA outline: Upstream at {council.name} ({council.code})

Rendered from `{borough.config.name}`'s borough configuration by `upstream replicate-docs`,
for the council's Data Protection Officer to complete. The data flows, stores and the
service's own risks and mitigations are in `docs/dpia.md`; this outline fills in what the
council configured.

## 1. The controller and who is responsible
- Controller: {council.name} (GSS {council.code}); {stated("organisation_or_department")}
- Team: {stated("team")}; contact: {stated("contact_email")}
- Senior responsible owner: {stated("senior_responsible_owner")}
- Supplier involvement: {stated("external_supplier_involvement")}

## 2. The processing
- Purpose and benefit: {stated("benefit")}
- What it replaces: {stated("previous_process")}
- Alternatives considered: {stated("alternatives_considered")}
- Area: postcode districts {", ".join(council.areas)}
- Scale: {stated("frequency_and_scale_of_usage")}
- Data quantities and retention: {stated("data_quantities")}

## 3. Data sources: the signals the ruleset reads
Ruleset in force: {in_force}.
{_list(_signals_read(ruleset)) if ruleset else ""}

| rule | what it looks for | level | score |
|---|---|---|---|
{rules}

Nothing is decided about a resident by the rules alone: a flag opens an outreach case for
the council's team.

## 4. Recipients
{_list(recipients)}

Data-sharing agreements: {stated("data_sharing_agreements")}

## 5. Lawful bases and conditions
Article 6: {", ".join(sorted({b.value for _, t in own for b in t.lawful_bases})) or TO_COMPLETE}.
Article 9 (special category, for health and safeguarding needs): recorded on each case; the
partners allowed it: {", ".join(p.name for p, t in own if t.special_category) or "none"}.
The council's Article 9 condition for signals of health (an unsupported hospital discharge):
{TO_COMPLETE}

## 6. Training, oversight and residents' rights
- Training: {stated("required_training")}
- Appeals and review: {stated("appeals_and_review")}
- Published transparency record: `GET /v1/transparency/{council.code}` on the risk service.

## 7. Risks and mitigations
The service's own: `docs/dpia.md`. The council's:
{_list(risks) if risks else TO_COMPLETE}

## 8. Assessment and sign-off
Impact assessments: {stated("impact_assessment")}
Residual risk, the DPO's advice, and sign-off: {TO_COMPLETE}
"""


def render_outlines(borough: Borough, output: Path) -> list[Path]:
    """Each council's agreement and DPIA outlines written into ``output``; the files."""
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for council in borough.config.councils:
        for name, text in (
            (f"data-sharing-agreement-{council.code}.md", agreement_outline(borough, council)),
            (f"dpia-{council.code}.md", dpia_outline(borough, council)),
        ):
            path = output / name
            path.write_text(text)
            written.append(path)
    return written
