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
    ErasureRequested,
    GapDetected,
    NeedWaiting,
    OfferAccepted,
    OfferDeclined,
    OfferExpired,
    OfferOverdue,
    OfferProgressRecorded,
    OfferWithdrawn,
    OutcomeRecorded,
    PartnersErasureConfirmed,
    PartnersSubjectAccessContributed,
    ReferralOffered,
    ReferralReceived,
    ResidentFlagged,
    ResidentsMerged,
    ResidentsUnmerged,
    RiskAssessed,
    RiskErasureConfirmed,
    RiskSubjectAccessContributed,
    RulesetDryRunCompleted,
    ServiceCapacityChanged,
    SubjectAccessRequested,
)
from shared.events.registry import EventRegistry, Topic

CATALOGUE = EventRegistry()

# Topics of rare events (a dry run, a capacity change, a gap, a subject access or erasure
# request and its answers: a few a day) get one partition, whatever the deployment's count.
# Every consumer group reading a topic fetches each of its partitions, busy or idle, and the
# broker answers for each: these topics were 60 of the 138 partitions the four groups read.
# One partition is one worker at a time reading them, plenty for a few a day.
RARE_EVENTS_PARTITIONS = 1

REFERRALS_CASES = CATALOGUE.topic(
    "referrals.cases.v1",
    "Referrals and cases: received, opened, status changed, ready for routing, closed, "
    "consent withdrawn. Keyed by case id.",
)
RISK_ASSESSMENTS = CATALOGUE.topic(
    "risk.assessments.v1",
    "Risk assessments of cases and flags of residents. Keyed by case id or resident key.",
)
RISK_RULESETS = CATALOGUE.topic(
    "risk.rulesets.v1",
    "Rulesets: the figures of a council's dry runs of a candidate ruleset (aggregates "
    "only). Keyed by council (GSS code).",
    partitions=RARE_EVENTS_PARTITIONS,
)
PARTNERS_OFFERS = CATALOGUE.topic(
    "partners.offers.v1",
    "Offers of a case's needs to partners: offered, accepted, declined, expired, outcome "
    "recorded, unroutable, waiting for a place. Keyed by case id.",
)
PARTNERS_GAPS = CATALOGUE.topic(
    "partners.gaps.v1",
    "Gaps in service: a need of a council's residents that no partner can meet, or that "
    "has waited too long for a place. Keyed by gap episode id.",
    partitions=RARE_EVENTS_PARTITIONS,
)
PARTNERS_SERVICES = CATALOGUE.topic(
    "partners.services.v1",
    "Partner services in the directory: their capacity set or changed (operational "
    "figures only). Keyed by service id.",
    partitions=RARE_EVENTS_PARTITIONS,
)

# Bulk lanes: the same event types, for bulk work, read by every consumer after the
# interactive topic (docs/events.md, Bulk lanes). An aggregate is bulk for its whole life,
# so its events stay on one topic and in order.
RISK_ASSESSMENTS_BULK = CATALOGUE.bulk_lane(
    RISK_ASSESSMENTS,
    "risk.assessments.bulk.v1",
    "The bulk lane of risk.assessments.v1: residents flagged by a feed's signals. Keyed by "
    "resident key.",
)
REFERRALS_CASES_BULK = CATALOGUE.bulk_lane(
    REFERRALS_CASES,
    "referrals.cases.bulk.v1",
    "The bulk lane of referrals.cases.v1: the events of outreach cases, opened for flagged "
    "residents (opened, status changed, ready for routing, closed…). Keyed by case id.",
)

# Subject access requests and each service's answer. The answers carry a resident's
# personal (and special category) data to the controller's system of record, the referrals
# service, which stores them against the request: the broker keeps them 7 days, enough to
# ride out a consumer down over a long weekend, not a copy kept for months
# (docs/information-governance.md, Subject access).
SUBJECT_ACCESS_RETENTION_MS = 7 * 24 * 60 * 60 * 1000
GOVERNANCE_SUBJECT_ACCESS = CATALOGUE.topic(
    "governance.subject_access.v1",
    "Subject access: a request (case ids and pseudonymous keys only) and each service's "
    "answer with what it holds. Keyed by request id. Kept 7 days.",
    partitions=RARE_EVENTS_PARTITIONS,
    retention_ms=SUBJECT_ACCESS_RETENTION_MS,
)

# Erasure requests and each service's confirmation. A request carries the resident's case ids
# and pseudonymous keys (never a name or contact); the broker keeps them 7 days, like
# subject access, so an erased resident's ids leave the broker within a week
# (docs/information-governance.md, Erasure).
GOVERNANCE_ERASURE = CATALOGUE.topic(
    "governance.erasure.v1",
    "Erasure: a request (case ids and pseudonymous keys only) and each service's "
    "confirmation (counts only). Keyed by request id. Kept 7 days.",
    partitions=RARE_EVENTS_PARTITIONS,
    retention_ms=SUBJECT_ACCESS_RETENTION_MS,
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
        "referrals.residents.unmerged",
        ResidentsUnmerged,
        REFERRALS_CASES,
        "A merge of two resident records was undone: two people again",
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
        "risk.ruleset.dry_run_completed",
        RulesetDryRunCompleted,
        RISK_RULESETS,
        "A council's dry run of a candidate ruleset: residents per level and per rule under "
        "each ruleset (counts only)",
        _OPERATIONAL,
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
    (
        "partners.need.waiting",
        NeedWaiting,
        PARTNERS_OFFERS,
        "Every service that could take a need of the case is full: it waits for a place",
        _OPERATIONAL,
    ),
    (
        "referrals.subject_access.requested",
        SubjectAccessRequested,
        GOVERNANCE_SUBJECT_ACCESS,
        "A resident asked for their data: each service answers with what it holds",
        _PSEUDONYMOUS,
    ),
    (
        "partners.subject_access.contributed",
        PartnersSubjectAccessContributed,
        GOVERNANCE_SUBJECT_ACCESS,
        "What the partners service holds about a subject access request's resident",
        DataClassification.SPECIAL_CATEGORY,
    ),
    (
        "risk.subject_access.contributed",
        RiskSubjectAccessContributed,
        GOVERNANCE_SUBJECT_ACCESS,
        "What the risk service holds about a subject access request's resident",
        DataClassification.SPECIAL_CATEGORY,
    ),
    (
        "referrals.erasure.requested",
        ErasureRequested,
        GOVERNANCE_ERASURE,
        "A resident's data is erased: each service erases what it holds and confirms",
        _PSEUDONYMOUS,
    ),
    (
        "partners.erasure.confirmed",
        PartnersErasureConfirmed,
        GOVERNANCE_ERASURE,
        "The partners service erased what it held about an erasure request's resident",
        _OPERATIONAL,
    ),
    (
        "risk.erasure.confirmed",
        RiskErasureConfirmed,
        GOVERNANCE_ERASURE,
        "The risk service erased what it held about an erasure request's resident",
        _OPERATIONAL,
    ),
    (
        "partners.gap.detected",
        GapDetected,
        PARTNERS_GAPS,
        "A need cannot be met in a council's area: unroutable, or waiting too long",
        _OPERATIONAL,
    ),
    (
        "partners.service.capacity_changed",
        ServiceCapacityChanged,
        PARTNERS_SERVICES,
        "A partner service's capacity (or its pause) was set or changed",
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
