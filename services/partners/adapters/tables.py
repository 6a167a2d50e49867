"""The partners service's tables: the directory (Open Referral UK shape), agreements,
the routing of each need of a case, offers, webhooks and their deliveries."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
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
)

agreements = Table(
    "agreements",
    metadata,
    Column(
        "organization_id", Uuid(as_uuid=False), ForeignKey("organizations.id"), primary_key=True
    ),
    Column("lawful_bases", JSONB, nullable=False),
    Column("data_categories", JSONB, nullable=False),
    Column("reference", Text),
    _at("updated_at"),
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
    Column("consent_kinds", JSONB, nullable=False),
    Column("status", Text, nullable=False),  # open | waiting | placed | unroutable | closed
    Column("attempts", SmallInteger, nullable=False),
    Column("unroutable_reason", Text),
    Column("waiting_since", DateTime(timezone=True)),  # waiting for a place since
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
)

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
    Index("ix_offers_due", "respond_by", postgresql_where=text("status = 'offered'")),
    Index(
        "ix_offers_follow_up",
        "follow_up_by",
        postgresql_where=text("status IN ('accepted', 'in_progress') AND overdue_at IS NULL"),
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
)
