"""The payloads of Upstream's events. Field names are the contract between services: add
optional fields freely; anything else is a new major version of the event type."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

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


class CaseOpened(_Payload):
    case_id: str
    council: str
    origin: str = Field(description="referral or flag")
    resident_keys: list[str]
    opened_at: datetime


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
