"""A council's algorithmic transparency record, in the UK Algorithmic Transparency Recording
Standard (ATRS) v3.0: every attribute by the standard's name, in its section.

Two sources make a record. What the tool is and does (how it works, the data it reads, the
rules, their version and thresholds, human oversight, the risks the design answers) comes
from the ruleset in force for the council, so it cannot drift from the rules. What the
council is and decided (owner, team, senior responsible owner, contact, benefits,
alternatives considered, appeals, impact assessments, agreements…) comes from the council's
details (:class:`CouncilDetails`), which operators or the council's information-governance
team set. A record holds no personal data: roles, not people; team mailboxes, not a person's.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.risk.domain.rules import Ruleset
from services.risk.domain.signals import CATALOGUE, SignalType
from services.risk.domain.transparency import HUMAN_OVERSIGHT

STANDARD_VERSION = "3.0"
NOT_ARCHIVED = "Not archived: this record is in force."

_Text = Field(min_length=1, max_length=4000)
_Short = Field(min_length=1, max_length=300)


class CouncilDetails(BaseModel):
    """What a council states in its record: the organisational attributes of ATRS v3.0
    (each field is the standard's attribute of the same name, unless said otherwise). Give
    roles and team mailboxes, never a person's name or address: the record is public."""

    model_config = ConfigDict(extra="forbid")

    # Metadata and title
    organisation_name: str = Field(min_length=1, max_length=200, examples=["London Borough"])
    organisation_type: str = Field(min_length=1, max_length=200, examples=["Local authority"])
    function: str = Field(min_length=1, max_length=300, examples=["Housing; Benefits and welfare"])
    region: str = Field(min_length=1, max_length=200, examples=["London"])
    phase: str = Field(min_length=1, max_length=100, examples=["Production"])
    tags: list[str] = Field(default=[], max_length=20)
    # Tier 1
    website_url: str = Field(min_length=1, max_length=500, pattern=r"^https://")
    contact_email: str = Field(
        min_length=3,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="a team mailbox, not a person's",
    )
    # Owner and responsibility
    organisation_or_department: str = _Short
    team: str = _Short
    senior_responsible_owner: str = Field(
        min_length=1, max_length=300, description="the role (job title), not the person's name"
    )
    external_supplier_involvement: str = _Short
    external_supplier: str | None = Field(default=None, max_length=300)
    companies_house_number: str | None = Field(default=None, max_length=20)
    external_supplier_role: str | None = Field(default=None, max_length=1000)
    procurement_procedure_type: str | None = Field(default=None, max_length=300)
    data_access_terms: str | None = Field(default=None, max_length=2000)
    # Description and rationale
    benefit: str = _Text
    previous_process: str | None = Field(default=None, max_length=4000)
    alternatives_considered: str = _Text
    # Decision-making process
    frequency_and_scale_of_usage: str = _Text
    required_training: str = _Text
    appeals_and_review: str = _Text
    # Data
    data_quantities: str = _Text
    source_data_url: str | None = Field(
        default=None, max_length=500, pattern=r"^https://", description="else the website_url"
    )
    data_sharing_agreements: str = _Text
    data_access_and_storage: str | None = Field(
        default=None, max_length=4000, description="added to what the service itself does"
    )
    # Risks, mitigations and impact assessments
    impact_assessment: str = _Text
    risks_and_mitigations: list[str] = Field(
        default=[], max_length=20, description="the council's own, added to the tool's"
    )


def _words(value: str) -> str:
    return value.replace("_", " ")


def _signals_read(ruleset: Ruleset) -> list[SignalType]:
    reads = ruleset.reads
    if reads.all_signals:
        return list(CATALOGUE)
    named = {*reads.presence, *(kind for kind, _ in reads.fields), *reads.whole_types}
    return [kind for kind in CATALOGUE if kind.value in named]


def _referral_read(ruleset: Ruleset) -> list[str]:
    reads = ruleset.reads
    if reads.all_referral:
        return ["circumstances", "needs", "urgency", "age", "present"]
    return list(reads.referral_fields)


def rule_lines(ruleset: Ruleset) -> list[dict[str, Any]]:
    """Each rule as the record shows it: what it looks for, its condition (its thresholds),
    the level and score it gives and the help it suggests."""
    return [
        {
            "id": rule.spec.id,
            "description": rule.spec.description,
            "condition": " ".join(rule.spec.when.split()),
            "level": rule.spec.level.value,
            "score": rule.spec.score,
            "suggests": [need.value for need in rule.spec.suggest],
        }
        for rule in ruleset.rules
    ]


def atrs_record(
    ruleset: Ruleset,
    *,
    council: str,
    details: CouncilDetails,
    completed_on: date,
    updated_on: date,
    own_ruleset: bool,
) -> dict[str, Any]:
    """The council's record: sections of the standard (snake-cased section names) holding
    its attributes, and ``upstream`` (not of the standard): the council, the ruleset in force
    and its rules, for a reader who wants them as data."""
    label, version = ruleset.spec.label, ruleset.version
    flag_level = ruleset.spec.flag_level.value
    read = _signals_read(ruleset)
    referral_read = _referral_read(ruleset)
    signal_names = "; ".join(f"{CATALOGUE[k].name} ({k.value})" for k in read) or "none"
    referral_names = ", ".join(referral_read) or "nothing"
    rules = rule_lines(ruleset)
    rule_text = " ".join(
        f"[{r['id']}] {r['description']}: when {r['condition']}, level {r['level']}, "
        f"score {r['score']}."
        for r in rules
    )
    whose = (
        f"the council's own ruleset ({version})"
        if own_ruleset
        else f"the deployment's default ruleset ({version})"
    )
    name = f"Upstream risk rules ({label})"
    one_sentence = (
        "Published rules that look at information the council already holds, and at what a "
        "referral says, to find residents who may be heading towards a crisis, so that the "
        "council can offer help earlier."
    )
    expiry = "; ".join(f"{CATALOGUE[k].name}: {CATALOGUE[k].current_for_days} days" for k in read)
    sensitive = [
        "The rules read no protected characteristic (such as ethnicity, religion, sex or "
        "disability) and no name, address or contact detail."
    ]
    if "age" in referral_read:
        sensitive.append("They read the resident's age, as the referral states it.")
    if SignalType.HOSPITAL_DISCHARGE_UNSUPPORTED in read:
        sensitive.append(
            "A hospital discharge without support is health information (special category "
            "data, UK GDPR Article 9); it is sent only under the council's recorded condition."
        )
    if "needs" in referral_read or "circumstances" in referral_read:
        sensitive.append(
            "A referral's needs may include health or domestic abuse (special category or "
            "safeguarding information)."
        )
    risks = [
        "Missing or wrong data: signals expire, each names its source, and the council's "
        "team checks before acting.",
        "Unfairness: the rules use only the listed signals, never protected characteristics; "
        "every change is dry-run against the rules in force before it is switched on.",
        "Over-reliance on the tool: a flag is a prompt for a person, who decides; the reasons "
        "for it are shown in plain English.",
        "Privacy: the risk service keeps no name, date of birth or address; a resident is "
        "known by keyed hashes of their details; every read of personal data is audited.",
        "Loss of trust: the rules, this record and each assessment's reasons are open.",
        *details.risks_and_mitigations,
    ]
    return {
        "metadata": {
            "id": f"upstream-risk-rules-{council.lower()}",
            "standard_version": STANDARD_VERSION,
            "organisation_type": details.organisation_type,
            "function": details.function,
            "capability": "Rules-based risk identification and triage (no machine learning)",
            "task": "Prioritising residents for early, voluntary support",
            "tags": list(
                dict.fromkeys(
                    ["early intervention", "rules-based", "prevention", "triage", *details.tags]
                )
            ),
            "date_of_completion": completed_on.isoformat(),
            "date_updated": updated_on.isoformat(),
            "date_archived": NOT_ARCHIVED,
        },
        "title_information": {
            "title": f"{details.organisation_name}: {name}",
            "organisation_name": details.organisation_name,
            "phase": details.phase,
            "region": details.region,
            "one_sentence_description": one_sentence,
        },
        "tier_1_information": {
            "name": name,
            "description": (
                f"{one_sentence} When a resident is referred, the rules give the case a level "
                "of concern and suggest which kinds of help may be needed. When council data "
                f"alone reaches the level '{flag_level}' for a resident with no open case, the "
                f"council's team is asked to reach out. {HUMAN_OVERSIGHT}"
            ),
            "website_url": details.website_url,
            "contact_email": details.contact_email,
        },
        "owner_and_responsibility": {
            "organisation_or_department": details.organisation_or_department,
            "team": details.team,
            "senior_responsible_owner": details.senior_responsible_owner,
            "external_supplier_involvement": details.external_supplier_involvement,
            "external_supplier": details.external_supplier,
            "companies_house_number": details.companies_house_number,
            "external_supplier_role": details.external_supplier_role,
            "procurement_procedure_type": details.procurement_procedure_type,
            "data_access_terms": details.data_access_terms,
        },
        "description_and_rationale": {
            "detailed_description": (
                f"The council uses {whose}: {len(rules)} rules, each a plain condition written "
                "in the Common Expression Language (CEL) over the resident's current signals "
                "and what a referral states. A resident's level (none, low, medium, high, "
                "crisis) is the highest among the rules that apply; the score adds the rules' "
                "scores (at most 100). Every assessment records the ruleset version that made "
                "it and its reasons in plain English. The rules: " + rule_text
            ),
            "scope": (
                "For the council's own residents only: to prompt its caseworkers to offer help "
                "earlier, and to suggest the kinds of help a referral may need. Not for "
                "deciding eligibility for any service, for enforcement, or for any decision "
                "made without a person."
            ),
            "benefit": details.benefit,
            "previous_process": details.previous_process,
            "alternatives_considered": details.alternatives_considered,
        },
        "decision_making_process": {
            "process_integration": (
                "Referrals are assessed when they arrive, and their level and reasons are shown "
                "to the caseworker on the case. Residents with no open case whose council data "
                f"reaches '{flag_level}' become an outreach case for the council's team, which "
                "decides whether and how to contact them. Routing to a support organisation "
                "needs the resident's consent or another lawful basis the council records."
            ),
            "provided_information": (
                "A level of concern, a score, the reasons in plain English (which rules "
                "applied, and on which signals), the kinds of help suggested, and the ruleset "
                "version. A resident can be read the same reasons."
            ),
            "frequency_and_scale_of_usage": (
                "Every referral is assessed once it arrives and again when new signals arrive "
                "for its resident; every signal file the council's data team sends re-assesses "
                "the residents it names. " + details.frequency_and_scale_of_usage
            ),
            "human_decisions_and_review": (
                f"{HUMAN_OVERSIGHT} Caseworkers see why a case was flagged and the rules that "
                f"applied. A resident flagged at '{flag_level}' or above is not flagged again "
                "at the same or a lower level for a cooling-off period; once a partner records "
                "that help arrived, only new or worse signals count."
            ),
            "required_training": details.required_training,
            "appeals_and_review": details.appeals_and_review,
        },
        "tool_specification": {
            "system_architecture": (
                "Three services exchanging events: referrals (the council's case system), "
                "risk (the rules: signals and assessments, with no direct identifier kept) "
                "and partners (the directory of support organisations and their offers). "
                "A flagged resident's details pass sealed (encrypted) to the referrals "
                "service only."
            ),
            "phase": details.phase,
            "maintenance": (
                "The rules change only by a new version: proposed, checked (every rule at fault "
                "is named), compared with the rules in force over the stored data (a dry run), "
                "then activated for the council (or as the deployment's default) by the "
                "service's operators; every assessment names the version that made it."
            ),
            "models": (
                f"One rules-based model, no statistical model or machine learning: {name}, "
                f"version {version}."
            ),
        },
        "model_specification": {
            "model_name": name,
            "model_version": version,
            "model_task": (
                "Give a resident a level of concern and suggest kinds of help, from the "
                "signals held and the referral, by published rules."
            ),
            "model_input": (
                f"Signals the rules read: {signal_names}. Of a referral: {referral_names}. "
                "And how many different signals were seen in the last 90 days."
            ),
            "model_output": (
                "A level (none, low, medium, high, crisis), a score from 0 to 100, the rules "
                f"that applied with their explanations, and suggested needs. Flag level: "
                f"'{flag_level}'."
            ),
            "model_architecture": (
                "Rules in the Common Expression Language (CEL), compiled and evaluated together; "
                "the level is the highest of the rules that apply, the score their sum (at "
                "most 100). " + rule_text
            ),
            "model_performance": (
                "A rules-based model has no accuracy figure from training. Each new version is "
                "compared with the one in force over the stored data before it is switched on "
                "(how many residents would change level, and by which rules); partners' "
                "recorded outcomes show whether help arrived."
            ),
            "datasets": (
                "No training data. At run time: the council's signals and the referrals made "
                "to it: " + signal_names
            ),
            "dataset_purposes": (
                "Signals and referrals are read only to assess the council's own residents; "
                "none is used to train anything."
            ),
        },
        "data_specification": {
            "source_data_name": signal_names,
            "data_modality": "Structured (tabular) data",
            "data_description": (
                "Signals: one fact each (its type, attributes such as weeks of arrears, the "
                "source, the date observed), about a resident named by the council's data "
                "team; and the structured circumstances, needs, urgency and age a referral "
                "states."
            ),
            "data_quantities": details.data_quantities,
            "sensitive_attributes": " ".join(sensitive),
            "data_completeness_and_representativeness": (
                "Only residents known to the council's own data, or referred, are assessed: "
                "people the council holds nothing about are not seen. A signal counts only "
                f"while it is current ({expiry}); a referral without a date of birth, postcode "
                "or UPRN cannot be matched to any signal and is assessed on what it says alone."
            ),
            "source_data_url": details.source_data_url or details.website_url,
            "data_collection": (
                "Signals are sent by the council's data teams (and partners' data teams where "
                "an agreement allows) from records the council already holds for its "
                "functions; referrals by caseworkers and referrers."
            ),
            "data_cleaning": (
                "Every row is checked (types, dates, the council's GSS code, lengths); names "
                "and postcodes are normalised and turned into keyed hashes; the same fact sent "
                "twice is stored once; rows refused are reported by line."
            ),
            "data_sharing_agreements": details.data_sharing_agreements,
            "data_access_and_storage": " ".join(
                filter(
                    None,
                    [
                        "The risk service keeps no name, date of birth, address or contact "
                        "detail: a resident is a profile reached through keyed hashes of their "
                        "details. Only the council's own staff see its residents' assessments; "
                        "every read of personal data is recorded in an audit trail the "
                        "council's information-governance team reads.",
                        details.data_access_and_storage,
                    ],
                )
            ),
        },
        "risks_mitigations_and_impact_assessments": {
            "impact_assessment": details.impact_assessment,
            "risks_and_mitigations": risks,
        },
        "upstream": {
            "council": council,
            "ruleset_version": version,
            "ruleset_label": label,
            "ruleset_is_the_councils_own": own_ruleset,
            "flag_level": flag_level,
            "rules": rules,
        },
    }


def section_key(section: str) -> str:
    """The key of a section of the standard in a record: "Owner and Responsibility" is
    ``owner_and_responsibility``."""
    return re.sub(r"[^a-z0-9]+", "_", section.lower()).strip("_")


SECTIONS = (
    "Metadata",
    "Title Information",
    "Tier 1 Information",
    "Owner and Responsibility",
    "Description and Rationale",
    "Decision-making Process",
    "Tool Specification",
    "Model Specification",
    "Data Specification",
    "Risks, mitigations and impact assessments",
)
"""The standard's sections, in its order (the HTML page shows them so)."""
