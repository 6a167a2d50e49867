"""The partners service's tables: the directory (Open Referral UK shape), agreements,
the routing of each need of a case, offers, webhooks and their deliveries."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.audit import audit_table
from shared.erasure import tombstone_table

metadata = MetaData()


def _at(name: str) -> Column:
    return Column(name, DateTime(timezone=True), nullable=False, server_default=func.now())


organizations = Table(
    "organizations",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("kind", Text, nullable=False),  # shared.vocabulary.PartnerKind
    Column("email", Text),
    Column("website", Text),
    _at("created_at"),
    _at("last_modified"),
)

services = Table(
    "services",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column(
        "organization_id",
        Uuid(as_uuid=False),
        ForeignKey("organizations.id"),
        nullable=False,
        index=True,
    ),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("status", Text, nullable=False),  # active | inactive | defunct | temporarily closed
    Column("url", Text),
    Column("email", Text),
    Column("needs", JSONB, nullable=False),
    Column("councils", JSONB, nullable=False),
    Column("postcode_districts", JSONB, nullable=False),
    Column("minimum_age", SmallInteger),
    Column("maximum_age", SmallInteger),
    Column("eligibility_description", Text),
    Column("languages", JSONB, nullable=False),
    Column("interpretation", Boolean, nullable=False),
    Column("contacts", JSONB, nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("pause_reason", Text),
    _at("last_modified"),
    # [{"day": "SA", "opens": "10:00:00", "closes": "14:00:00"}]: when offers are due (None:
    # the deployment's working week)
    Column("opening_hours", JSONB),
)

# A data-sharing agreement between one council and one partner organisation (several per
# partner: one per council, or more over time). Routing reads them (domain/routing.py).
agreements = Table(
    "agreements",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column(
        "organization_id",
        Uuid(as_uuid=False),
        ForeignKey("organizations.id"),
        nullable=False,
        index=True,
    ),
    Column("council", Text, nullable=False),  # GSS code
    Column("reference", Text, nullable=False),
    Column("needs", JSONB, nullable=False),  # the needs it covers
    Column("data_categories", JSONB, nullable=False),  # identity | contact | needs
    Column("special_category", Boolean, nullable=False),  # health or safeguarding needs
    Column("lawful_bases", JSONB, nullable=False),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date),  # the last day it covers
    Column("ended_at", DateTime(timezone=True)),  # ended early, from then
    Column("end_reason", Text),
    Column("recorded_by", Text, nullable=False),  # who recorded it: subject (organisation)
    _at("created_at"),
    _at("updated_at"),
    UniqueConstraint("organization_id", "council", "reference"),
    Index("ix_agreements_council", "council", "organization_id"),
)

# What happened to each agreement, who did it and when: append-only.
agreement_changes = Table(
    "agreement_changes",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column(
        "agreement_id",
        Uuid(as_uuid=False),
        ForeignKey("agreements.id"),
        nullable=False,
        index=True,
    ),
    Column("change", Text, nullable=False),  # created | ended | migrated
    Column("by_subject", Text, nullable=False),
    Column("by_organisation", Text, nullable=False),
    Column("reason", Text),
    Column("terms", JSONB, nullable=False),  # the agreement as it stood after the change
    _at("at"),
)

# The old one-per-partner agreements revision 0008 could not give a council: the partner's
# services covered postcode districts only and it had never been offered a case (no
# district-to-council mapping exists here). Kept as they were, for an operator to record as
# agreements with the right councils (``POST /v1/agreements``) and then delete the row; the
# downgrade of 0008 restores them. No code reads it (docs/partners.md, "Migration").
agreements_unmatched_0008 = Table(
    "agreements_unmatched_0008",
    metadata,
    Column(
        "organization_id", Uuid(as_uuid=False), ForeignKey("organizations.id"), primary_key=True
    ),
    Column("lawful_bases", JSONB, nullable=False),
    Column("data_categories", JSONB, nullable=False),  # [] or ["special_category"]
    Column("reference", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),  # the old row's
    Column("postcode_districts", JSONB, nullable=False),  # its services' then, to place it
)

requests = Table(
    "route_requests",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("case_id", Uuid(as_uuid=False), nullable=False),
    Column("need", Text, nullable=False),
    Column("council", Text, nullable=False),
    Column("packet", JSONB),  # removed when the case closes or consent is withdrawn
    Column("lawful_basis", Text, nullable=False),
    Column("agreement_reference", Text),  # the data-sharing agreement the case names
    Column("consent_kinds", JSONB, nullable=False),
    Column("status", Text, nullable=False),  # open | waiting | placed | unroutable | closed
    Column("attempts", SmallInteger, nullable=False),
    Column("unroutable_reason", Text),
    Column("waiting_since", DateTime(timezone=True)),  # waiting for a place since
    # unroutable since: set once as it turns unroutable (not on each retry), cleared when
    # it is offered or waits for a place; a gap's longest wait counts from it
    Column("unroutable_since", DateTime(timezone=True)),
    Column("queue_rank", SmallInteger),  # waiting: by urgency (domain/placement.queue_rank)
    _at("created_at"),
    _at("updated_at"),
    UniqueConstraint("case_id", "need"),
    Index(
        "ix_route_requests_queue",
        "need",
        "queue_rank",
        "waiting_since",
        postgresql_where=text("status = 'waiting'"),
    ),
    # The needs in a gap in service (adapters/gaps.py): a few rows among every case's.
    Index(
        "ix_route_requests_in_gaps",
        "council",
        "need",
        postgresql_where=text("status IN ('waiting', 'unroutable')"),
    ),
)

# Gaps in service (domain/gaps.py): one row per episode; at most one open per council, need
# and reason. Counts only: never who.
gaps = Table(
    "gaps",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("council", Text, nullable=False),
    Column("need", Text, nullable=False),
    Column("reason", Text, nullable=False),  # unroutable | waiting_too_long | no_agreement
    Column("residents", Integer, nullable=False),  # in the gap when it opened
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    Index(
        "uq_gaps_open",
        "council",
        "need",
        "reason",
        unique=True,
        postgresql_where=text("closed_at IS NULL"),
    ),
)

# Partial indexes' conditions, which the queries that use them write in the same words (a
# query's bound value would not match one once planned generically).
CLOSED_OFFER = "status = 'outcome_recorded'"  # ix_offers_closed
SENT_SIGN_IN_EMAIL = "kind = 'sign-in' AND status <> 'pending'"  # ix_email_deliveries_sign_in

offers = Table(
    "offers",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column(
        "request_id",
        Uuid(as_uuid=False),
        ForeignKey("route_requests.id"),
        nullable=False,
        index=True,
    ),
    Column("case_id", Uuid(as_uuid=False), nullable=False, index=True),
    Column("need", Text, nullable=False),
    Column("service_id", Uuid(as_uuid=False), ForeignKey("services.id"), nullable=False),
    Column("organization_id", Uuid(as_uuid=False), nullable=False),
    Column("status", Text, nullable=False),
    Column("respond_by", DateTime(timezone=True), nullable=False),
    Column("attempt", SmallInteger, nullable=False),
    Column("decision", JSONB, nullable=False),  # score and reasons of the routing decision
    Column("decline_reason", Text),
    Column("outcome", Text),
    Column("note", Text),
    Column("follow_up_by", DateTime(timezone=True)),  # accepted or in progress: next check-in
    Column("overdue_at", DateTime(timezone=True)),  # when it passed follow_up_by (once)
    _at("created_at"),
    _at("updated_at"),
    Index("ix_offers_organization", "organization_id", "status"),
    # A partner's closed offers, latest first: its inbox lists those of the last months
    # (partner_inbox_closed_days; revision 0015), not all it closed over years.
    Index(
        "ix_offers_closed",
        "organization_id",
        "updated_at",
        postgresql_where=text(CLOSED_OFFER),
    ),
    Index("ix_offers_due", "respond_by", postgresql_where=text("status = 'offered'")),
    Index(
        "ix_offers_follow_up",
        "follow_up_by",
        postgresql_where=text("status IN ('accepted', 'in_progress') AND overdue_at IS NULL"),
    ),
    # A service's offers by status (its load, on every placement; its record, on every need
    # routed), read from the index rather than from every offer ever made.
    Index("ix_offers_service_status", "service_id", "status"),
    # Ended offers, oldest first (the hourly retention sweep), not every offer ever made.
    Index(
        "ix_offers_ended",
        "updated_at",
        postgresql_where=text("status IN ('declined', 'expired', 'withdrawn')"),
    ),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column(
        "organization_id", Uuid(as_uuid=False), ForeignKey("organizations.id"), primary_key=True
    ),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text),
    Column("previous_valid_until", DateTime(timezone=True)),
    _at("updated_at"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("organization_id", Uuid(as_uuid=False), nullable=False, index=True),
    Column("offer_id", Uuid(as_uuid=False)),
    Column("event", Text, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("status", Text, nullable=False),  # pending | delivered | failed
    Column("attempts", SmallInteger, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_status_code", SmallInteger),
    Column("last_error", Text),
    _at("created_at"),
    Column("delivered_at", DateTime(timezone=True)),
    Index("ix_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    Index("ix_deliveries_offer", "offer_id"),  # an erasure's and retention's deletes
)

# -- the web inbox: sign-in by email, sessions, and email notifications ---------------------

inbox_addresses = Table(
    "inbox_addresses",
    metadata,
    Column("email", Text, primary_key=True),  # normalised: trimmed, lower case
    Column(
        "organization_id",
        Uuid(as_uuid=False),
        ForeignKey("organizations.id"),
        nullable=False,
        index=True,
    ),
    _at("created_at"),
)

sign_in_links = Table(
    "sign_in_links",
    metadata,
    Column("token_hash", Text, primary_key=True),  # SHA-256 of the token: never the token
    Column("email", Text, nullable=False),
    Column("organization_id", Uuid(as_uuid=False), nullable=False),
    Column("next_path", Text),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    _at("created_at"),
    Index("ix_sign_in_links_expires_at", "expires_at"),  # retention (revision 0015)
)

sign_in_requests = Table(
    "sign_in_requests",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("address_key", Text, nullable=False),  # SHA-256 of the address asked for
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_sign_in_requests_key", "address_key", "at"),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("organization_id", Uuid(as_uuid=False), nullable=False),
    Column("email", Text, nullable=False),
    Column("csrf_token", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    _at("created_at"),
    Index("ix_web_sessions_expires_at", "expires_at"),  # retention (revision 0015)
)

email_deliveries = Table(
    "email_deliveries",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("organization_id", Uuid(as_uuid=False), nullable=False, index=True),
    Column("offer_id", Uuid(as_uuid=False)),
    Column("kind", Text, nullable=False),  # offer.made | offer.reminder | offer.expired
    Column("to_address", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),  # no personal data: need, urgency, deadline, link
    Column("status", Text, nullable=False),  # pending | delivered | failed
    Column("attempts", SmallInteger, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    _at("created_at"),
    Column("delivered_at", DateTime(timezone=True)),
    UniqueConstraint("offer_id", "kind", "to_address"),
    Index(
        "ix_email_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")
    ),
    # Sign-in e-mails sent or given up, oldest first: retention (revision 0015).
    Index(
        "ix_email_deliveries_sign_in",
        "created_at",
        postgresql_where=text(SENT_SIGN_IN_EMAIL),
    ),
)

# Every read of personal data through the API and the web inbox (shared/audit.py):
# append-only.
audit_log = audit_table(metadata)

# Tombstones of erased case ids and resident keys (keyed hashes only): a replayed event
# naming one re-creates nothing (shared/erasure.py).
erased_identifiers = tombstone_table(metadata)
