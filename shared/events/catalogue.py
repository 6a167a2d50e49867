"""Upstream's events: every topic and event type the services exchange, in one place.

Each service's issue adds the event types it publishes here, beside their payload models.
Topics are one per producing aggregate; dead-letter topics are per consumer group
(``<group>.dlq``) and belong to the consumer, not to this catalogue.
"""

from __future__ import annotations

from pydantic import BaseModel

from shared.events.envelope import DataClassification
from shared.events.payloads import (
    CaseClosed,
    CaseOpened,
    CaseReadyForRouting,
    CaseStatusChanged,
    CaseUnroutable,
    ConsentWithdrawn,
    OfferAccepted,
    OfferDeclined,
    OfferExpired,
    OfferOverdue,
    OfferProgressRecorded,
    OfferWithdrawn,
    OutcomeRecorded,
    ReferralOffered,
    ReferralReceived,
    ResidentFlagged,
    ResidentsMerged,
    RiskAssessed,
)
from shared.events.registry import EventRegistry, Topic

CATALOGUE = EventRegistry()

REFERRALS_CASES = CATALOGUE.topic(
    "referrals.cases.v1",
    "Referrals and cases: received, opened, status changed, ready for routing, closed, "
    "consent withdrawn. Keyed by case id.",
)
RISK_ASSESSMENTS = CATALOGUE.topic(
    "risk.assessments.v1",
    "Risk assessments of cases and flags of residents. Keyed by case id or resident key.",
)
PARTNERS_OFFERS = CATALOGUE.topic(
    "partners.offers.v1",
    "Offers of a case's needs to partners: offered, accepted, declined, expired, outcome "
    "recorded, unroutable. Keyed by case id.",
)


_OPERATIONAL, _PSEUDONYMOUS, _PERSONAL = (
    DataClassification.OPERATIONAL,
    DataClassification.PSEUDONYMOUS,
    DataClassification.PERSONAL,
)
_EVENTS: list[tuple[str, type[BaseModel], Topic, str, DataClassification]] = [
    (
        "referrals.referral.received",
        ReferralReceived,
        REFERRALS_CASES,
        "A referral was received and its case opened or found",
        _PSEUDONYMOUS,
    ),
    ("referrals.case.opened", CaseOpened, REFERRALS_CASES, "A case was opened", _PSEUDONYMOUS),
    (
        "referrals.case.status_changed",
        CaseStatusChanged,
        REFERRALS_CASES,
        "A case moved from one status to another",
        _OPERATIONAL,
    ),
    (
        "referrals.case.ready_for_routing",
        CaseReadyForRouting,
        REFERRALS_CASES,
        "A case may be offered to partners; carries the partner packet",
        _PERSONAL,
    ),
    (
        "referrals.case.closed",
        CaseClosed,
        REFERRALS_CASES,
        "A case was closed with an outcome, or withdrawn",
        _OPERATIONAL,
    ),
    (
        "referrals.consent.withdrawn",
        ConsentWithdrawn,
        REFERRALS_CASES,
        "The resident withdrew consent: routing stops, open offers are withdrawn",
        _OPERATIONAL,
    ),
    (
        "referrals.residents.merged",
        ResidentsMerged,
        REFERRALS_CASES,
        "Two records of one resident were merged (and their open cases)",
        _PSEUDONYMOUS,
    ),
    (
        "risk.case.assessed",
        RiskAssessed,
        RISK_ASSESSMENTS,
        "A case was assessed by the current ruleset",
        _OPERATIONAL,
    ),
    (
        "risk.resident.flagged",
        ResidentFlagged,
        RISK_ASSESSMENTS,
        "A resident without an open case reached the flagging level",
        _PERSONAL,
    ),
    (
        "partners.offer.made",
        ReferralOffered,
        PARTNERS_OFFERS,
        "A need of a case was offered to a partner service",
        _OPERATIONAL,
    ),
    ("partners.offer.accepted", OfferAccepted, PARTNERS_OFFERS, "A partner accepted", _OPERATIONAL),
    ("partners.offer.declined", OfferDeclined, PARTNERS_OFFERS, "A partner declined", _OPERATIONAL),
    (
        "partners.offer.expired",
        OfferExpired,
        PARTNERS_OFFERS,
        "A partner did not answer in time",
        _OPERATIONAL,
    ),
    (
        "partners.offer.withdrawn",
        OfferWithdrawn,
        PARTNERS_OFFERS,
        "An offer was withdrawn (consent withdrawn, case closed)",
        _OPERATIONAL,
    ),
    (
        "partners.offer.progress_recorded",
        OfferProgressRecorded,
        PARTNERS_OFFERS,
        "A partner is working with the resident",
        _OPERATIONAL,
    ),
    (
        "partners.offer.overdue",
        OfferOverdue,
        PARTNERS_OFFERS,
        "An accepted offer passed its follow-up deadline without progress or an outcome",
        _OPERATIONAL,
    ),
    (
        "partners.offer.outcome_recorded",
        OutcomeRecorded,
        PARTNERS_OFFERS,
        "A partner recorded the outcome of its support",
        _OPERATIONAL,
    ),
    (
        "partners.case.unroutable",
        CaseUnroutable,
        PARTNERS_OFFERS,
        "No partner could take a need of the case",
        _OPERATIONAL,
    ),
]
for _name, _payload, _topic, _description, _classification in _EVENTS:
    CATALOGUE.register(
        f"uk.upstream.{_name}.v1",
        _payload,
        topic=_topic,
        description=_description,
        classification=_classification,
    )


def event_name(payload: type[BaseModel]) -> str:
    """The full type name of a payload class, for handler tables."""
    return CATALOGUE.for_payload(payload).name
