"""Upstream's events: every topic and event type the services exchange, in one place.

Each service's issue adds the event types it publishes here, beside their payload models.
Topics are one per producing aggregate; dead-letter topics are per consumer group
(``<group>.dlq``) and belong to the consumer, not to this catalogue.
"""

from __future__ import annotations

from shared.events.registry import EventRegistry

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
