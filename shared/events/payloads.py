"""The payloads of Upstream's events. Field names are the contract between services: add
optional fields freely; anything else is a new major version of the event type."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from shared.vocabulary import (
    Circumstance,
    ContactMethod,
    DeclineReason,
    LawfulBasis,
    Need,
    Outcome,
    PartnerKind,
    RiskLevel,
)


class _Payload(BaseModel):
    model_config = {"extra": "ignore", "frozen": True}


# -- referrals.cases.v1 ----------------------------------------------------------------


class ReferralReceived(_Payload):
    """What the risk service needs to assess a case: no direct identifiers."""

    case_id: str
    referral_id: str
    council: str
    resident_keys: list[str] = Field(description="pseudonymous keys, strongest first")
    age_years: int | None = None
    needs: list[Need]
    circumstances: list[Circumstance] = []
    urgency: RiskLevel
    received_at: datetime
    referrer_kind: str | None = Field(
        default=None,
        description="the kind of organisation that referred (council, vcs…; "
        "shared.auth.OrganisationKind), for reporting; none from producers before it was added",
    )


class CaseOpened(_Payload):
    case_id: str
    council: str
    origin: str = Field(description="referral or flag")
    resident_keys: list[str]
    opened_at: datetime
    flagged_at: datetime | None = Field(
        default=None,
        description="an outreach case (origin flag): the flagged_at of the ResidentFlagged it "
        "was opened for, so reporting links the case to the rules that fired",
    )


class CaseStatusChanged(_Payload):
    case_id: str
    council: str
    previous: str
    status: str
    reason: str | None = None
    changed_at: datetime


class ContactRoute(_Payload):
    method: ContactMethod
    value: str | None = Field(default=None, description="number or address; none in person")


class RoutingPacket(_Payload):
    """Only what a partner needs to contact and help the resident."""

    first_name: str
    contact: ContactRoute
    needs: list[Need]
    council: str
    postcode_district: str | None = None
    age_years: int | None = None
    preferred_language: str = "en"
    interpreter_needed: bool = False
    accessibility_needs: str | None = None
    urgency: RiskLevel
    summary: str = Field(max_length=500)


class CaseReadyForRouting(_Payload):
    case_id: str
    council: str
    lawful_basis: LawfulBasis
    consent_partner_kinds: list[PartnerKind] = []
    consent_expires_at: datetime | None = None
    packet: RoutingPacket
    exclude_partners: list[str] = Field(default=[], description="partners not to offer again")
    data_sharing_agreement: str | None = Field(
        default=None,
        description="the reference of the data-sharing agreement the case is shared under "
        "(a public-task case): only a partner holding that agreement with the council gets it",
    )


class CaseClosed(_Payload):
    case_id: str
    council: str
    outcome: Outcome | None = Field(default=None, description="none when withdrawn")
    withdrawn: bool = False
    closed_at: datetime


class SharingStopped(StrEnum):
    """Why partners lose a case's packet: the resident withdrew consent, the consent
    expired, or a caseworker changed the case's lawful basis to one that does not allow
    sharing."""

    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    BASIS_CHANGED = "basis_changed"


class ConsentWithdrawn(_Payload):
    """Sharing with partners stops: they withdraw open offers and lose the packet."""

    case_id: str
    council: str
    withdrawn_at: datetime
    reason: SharingStopped = Field(
        default=SharingStopped.WITHDRAWN,
        description="why: withdrawn by the resident (the default for older events), "
        "expired, or the basis changed",
    )


class ResidentsMerged(_Payload):
    """A caseworker found two residents to be one person: ``merged`` is now part of
    ``into`` (and its open case part of the survivor's). The risk service re-links the
    resident's profiles. Pseudonymous keys only."""

    merge_id: str
    council: str
    merged_resident_keys: list[str] = Field(description="keys of the record merged away")
    into_resident_keys: list[str] = Field(description="keys of the record that stays")
    merged_case_id: str | None = Field(default=None, description="its open case, now withdrawn")
    survivor_case_id: str | None = None
    merged_at: datetime


class ResidentsUnmerged(_Payload):
    """A caseworker undid a merge: the two records are two people again, each with what the
    merge had moved. The risk service splits the profile the merge folded. Pseudonymous
    keys and case ids only."""

    merge_id: str
    council: str
    restored_resident_keys: list[str] = Field(description="keys of the record merged away")
    into_resident_keys: list[str] = Field(description="keys of the record that had stayed")
    restored_case_ids: list[str] = Field(
        default=[], description="the cases that are the restored record's again"
    )
    restored_case_id: str | None = Field(
        default=None, description="its case the merge had withdrawn, open again"
    )
    survivor_case_id: str | None = None
    unmerged_at: datetime


# -- risk.assessments.v1 ---------------------------------------------------------------


class Reason(_Payload):
    rule_id: str
    explanation: str = Field(description="plain English, fit to read to the resident")


class RiskAssessed(_Payload):
    case_id: str
    level: RiskLevel
    score: int
    reasons: list[Reason] = []
    suggested_needs: list[Need] = []
    ruleset_version: str
    assessed_at: datetime


class FlaggedIdentity(_Payload):
    """The identity fields of the feed row, needed by the council team for outreach. Sealed
    (``shared.identity.seal_identity``) inside the event: see ``ResidentFlagged``."""

    given_name: str
    family_name: str
    date_of_birth: date | None = None
    postcode: str | None = None
    uprn: str | None = None
    address: str | None = None
    council_reference: str | None = None
    phone: str | None = None
    email: str | None = None


class ResidentFlagged(_Payload):
    resident_key: str
    council: str
    level: RiskLevel
    score: int
    reasons: list[Reason] = []
    suggested_needs: list[Need] = []
    ruleset_version: str
    sealed_identity: str = Field(
        description="FlaggedIdentity as JSON, encrypted with a key derived from the resident "
        "key secret: readable by the referrals service only"
    )
    flagged_at: datetime
    returning: bool = Field(
        default=False,
        description="flagged again within the returning window after help arrived (an "
        "outcome that helped on an earlier case); only new or worse signals flag then",
    )
    helped_at: datetime | None = Field(
        default=None, description="when help last arrived, for a returning resident"
    )


# -- risk.rulesets.v1 -----------------------------------------------------------------


class RuleReach(_Payload):
    """One rule of a dry run: the residents it fires for under each ruleset."""

    rule_id: str
    in_force: int = Field(ge=0, description="residents it fires for under the ruleset in force")
    candidate: int = Field(ge=0, description="residents it fires for under the candidate")


class RulesetDryRunCompleted(_Payload):
    """An operator's dry run of a candidate ruleset for one council, against the ruleset in
    force for it, over the council's stored profiles (``POST /v1/rulesets/{version}/dry-run
    ?council=``). Aggregates only: counts of residents, never who they are. Keyed by council,
    so one council's dry runs stay in order."""

    council: str = Field(description="the council (GSS code) whose profiles were compared")
    candidate_version: str
    in_force_version: str = Field(description="the ruleset in force for the council then")
    ran_at: datetime
    residents: int = Field(ge=0, description="the council's profiles compared")
    residents_changing_level: int = Field(ge=0)
    levels_in_force: dict[RiskLevel, int] = Field(
        default={}, description="residents per level under the ruleset in force"
    )
    levels_candidate: dict[RiskLevel, int] = Field(
        default={}, description="residents per level under the candidate"
    )
    rules: list[RuleReach] = Field(
        default=[],
        description="every rule of either ruleset: those in force first, then the "
        "candidate's new ones",
    )


# -- partners.offers.v1 ----------------------------------------------------------------


class _OfferEvent(_Payload):
    offer_id: str
    case_id: str
    need: Need
    partner_id: str
    at: datetime


class RoutingReasons(_Payload):
    """Why this partner, in plain words: for the caseworker's case and timeline."""

    score: float = Field(description="the chosen service's ranking score, out of 100")
    passed: list[str] = Field(default=[], description="the filters the service passed")
    ranking: list[str] = Field(default=[], description="the ranking factors that put it first")
    excluded: list[str] = Field(
        default=[], description="the other candidates and why they were not chosen"
    )


class ReferralOffered(_OfferEvent):
    partner_name: str
    service_id: str
    service_name: str
    respond_by: datetime
    attempt: int = 1
    routing_reasons: RoutingReasons | None = Field(
        default=None, description="why this partner (none from producers before it was added)"
    )


class OfferAccepted(_OfferEvent):
    pass


class OfferDeclined(_OfferEvent):
    reason: DeclineReason
    note: str | None = None


class OfferExpired(_OfferEvent):
    pass


class OfferWithdrawn(_OfferEvent):
    reason: str


class OfferProgressRecorded(_OfferEvent):
    note: str | None = None


class OfferOverdue(_OfferEvent):
    """An accepted (or in-progress) offer passed its follow-up deadline without progress or
    an outcome: the council may chase the partner."""

    follow_up_by: datetime


class OutcomeRecorded(_OfferEvent):
    outcome: Outcome
    note: str | None = None


class CaseUnroutable(_Payload):
    case_id: str
    needs: list[Need]
    reasons: list[str] = Field(description="why no partner could take it, in plain words")
    at: datetime


class NeedWaiting(_Payload):
    """Every service that could take a need of the case is full (or paused): the need waits
    in the partners' queue and is offered as soon as a place frees. Said once per waiting
    episode, when it starts; the offer that ends it is ``referral offered``."""

    case_id: str
    need: Need
    since: datetime = Field(description="when the need started waiting for a place")


# -- partners.gaps.v1 ------------------------------------------------------------------


class GapReason(StrEnum):
    """Why a need cannot be met in an area: no service could take it at all; every service
    that could is full and residents have waited past the threshold; or (later) no partner
    has an agreement covering it."""

    UNROUTABLE = "unroutable"
    WAITING_TOO_LONG = "waiting_too_long"
    NO_AGREEMENT = "no_agreement"


class GapDetected(_Payload):
    """A gap in service opened: a need of a council's residents cannot be met. Said once per
    gap episode (``gap_id``), which stays open while the gap lasts; a gap that closed and
    opens again is a new episode. Counts and areas only: no resident identifiers."""

    gap_id: str = Field(description="the gap episode: the Kafka key of its events")
    council: str = Field(description="the council (GSS code) whose area the gap is in")
    need: Need
    reason: GapReason
    detail: str | None = Field(default=None, description="why, in plain words")
    postcode_districts: list[str] = Field(
        default=[], description="the postcode districts of the residents in the gap, if known"
    )
    languages: list[str] = Field(
        default=[], description="their preferred languages, if known (ISO 639-1)"
    )
    age_bands: list[str] = Field(
        default=[], description="their age bands (0-17, 18-24, 25-64, 65+), if known"
    )
    residents_waiting: int = Field(description="how many residents' needs are in the gap")
    waiting_since: datetime = Field(description="since when the longest-waiting one waits")
    longest_wait_hours: float = Field(description="clock hours of the longest wait")
    detected_at: datetime


# -- partners.services.v1 --------------------------------------------------------------


class ServiceCapacityChanged(_Payload):
    """A partner service's capacity was set or changed (registered, edited, set, imported,
    paused or resumed): how many open offers and active referrals it takes at once. Said
    only when the figure or the pause changes. Operational: no resident data."""

    service_id: str = Field(description="the service: the Kafka key of its events")
    partner_id: str = Field(description="the organisation running it (offers' partner_id)")
    partner_name: str | None = Field(default=None, description="the organisation's name")
    needs: list[Need] = Field(description="the needs the service meets")
    capacity: int = Field(ge=0, description="open offers and active referrals at once")
    paused: bool = Field(default=False, description="intake paused: it takes no new offers")
    at: datetime = Field(description="when the capacity took effect")


# -- governance.subject_access.v1 ------------------------------------------------------


class SubjectAccessRequested(_Payload):
    """A resident asked what Upstream holds about them (UK GDPR Article 15). Each service
    answers with what it holds. Only the identifiers the others need: the resident's case
    ids (partners know a resident by case) and pseudonymous keys (risk knows them by key);
    never a name or a contact detail."""

    request_id: str = Field(description="the request: the Kafka key of its events")
    council: str = Field(description="the council (GSS code) the resident is a resident of")
    case_ids: list[str] = Field(default=[], description="the resident's cases, every status")
    resident_keys: list[str] = Field(default=[], description="pseudonymous keys, strongest first")
    requested_at: datetime
    due_by: date = Field(description="one calendar month after receipt (Article 12(3))")


class AccessRead(_Payload):
    """One row of a service's audit trail of reads: who read the resident's data, when,
    which categories, through which operation and why."""

    at: datetime
    subject: str
    organisation: str
    organisation_kind: str
    roles: list[str] = []
    operation: str
    purpose: str
    council: str | None = None
    resident_ids: list[str] = []
    case_ids: list[str] = []
    data_categories: list[str] = []


class SubjectAccessContributed(_Payload):
    """What one service holds about the resident of a subject access request, for the
    council's export: each kind of record (``sections``) with its records as held, and the
    service's audit trail of reads of them. Personal data, on its way to the controller's
    system of record (the referrals service): the topic keeps it a short time only."""

    request_id: str
    council: str
    sections: dict[str, list[dict[str, Any]]] = Field(
        default={}, description="kind of record -> the records, each as the service holds it"
    )
    reads: list[AccessRead] = Field(default=[], description="its audit trail of those reads")
    contributed_at: datetime
    part: int = Field(default=1, ge=1, description="which part of the answer this is")
    parts: int = Field(
        default=1, ge=1, description="how many parts the answer has (each under the size limit)"
    )


class PartnersSubjectAccessContributed(SubjectAccessContributed):
    """The partners service's answer: the packets held for the resident's cases, the offers
    made (and to which partner), the deliveries that carried them, and its reads."""


class RiskSubjectAccessContributed(SubjectAccessContributed):
    """The risk service's answer: the profiles the resident's keys and cases reach, their
    signals, cases, assessments and outcomes, and its reads."""


# -- governance.erasure.v1 -------------------------------------------------------------


class ErasureRequested(_Payload):
    """A resident's data is to be erased (UK GDPR Article 17): the referrals service has
    erased its own; each other service erases what the case ids (partners) and pseudonymous
    keys (risk) reach, records tombstones, and confirms. Never a name or a contact detail."""

    request_id: str = Field(description="the erasure request: the Kafka key of its events")
    council: str = Field(description="the council (GSS code) the resident is a resident of")
    case_ids: list[str] = Field(default=[], description="the resident's cases, every status")
    resident_keys: list[str] = Field(default=[], description="pseudonymous keys, strongest first")
    ground: str = Field(description="the Article 17(1) ground (shared.erasure.ErasureGround)")
    requested_at: datetime


class ErasureConfirmed(_Payload):
    """A service has erased what it held about an erasure request's resident: how many
    records of each kind (counts only)."""

    request_id: str
    council: str
    erased: dict[str, int] = Field(default={}, description="kind of record -> records erased")
    confirmed_at: datetime


class PartnersErasureConfirmed(ErasureConfirmed):
    """The partners service erased the packets, offers and deliveries of the cases."""


class RiskErasureConfirmed(ErasureConfirmed):
    """The risk service erased the profiles the keys and cases reach, and all they held."""
