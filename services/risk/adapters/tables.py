"""The risk service's tables. No direct identifier is ever stored here: a resident is a
profile reached through keyed hashes of their normalised identifiers."""

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
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()


def _at(name: str = "created_at") -> Column:
    return Column(name, DateTime(timezone=True), nullable=False, server_default=func.now())


profiles = Table(
    "profiles",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("council", Text, nullable=False),
    _at(),
)

profile_keys = Table(
    "profile_keys",
    metadata,
    Column("key", Text, primary_key=True),  # HMAC-SHA256 of normalised identifiers
    Column(
        "profile_id", Uuid(as_uuid=False), ForeignKey("profiles.id"), nullable=False, index=True
    ),
)

signals = Table(
    "signals",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column(
        "profile_id", Uuid(as_uuid=False), ForeignKey("profiles.id"), nullable=False, index=True
    ),
    Column("type", Text, nullable=False),
    Column("attributes", JSONB, nullable=False),
    Column("source", Text, nullable=False),
    Column("observed_on", Date, nullable=False),
    Column("expires_on", Date, nullable=False),
    # The same fact sent twice (a re-sent file) is stored once.
    Column("fingerprint", Text, nullable=False, unique=True),
    _at("received_at"),
)

cases = Table(
    "cases",
    metadata,
    Column("case_id", Uuid(as_uuid=False), primary_key=True),
    # None: the resident has no key (no date of birth, postcode or UPRN), so no profile.
    Column("profile_id", Uuid(as_uuid=False), ForeignKey("profiles.id"), index=True),
    Column("council", Text, nullable=False),
    Column("open", Boolean, nullable=False),
    Column("referral", JSONB),  # circumstances, needs, urgency, age: no identifiers
    _at("updated_at"),
)

assessments = Table(
    "assessments",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("profile_id", Uuid(as_uuid=False), ForeignKey("profiles.id")),  # None: see cases
    Column("case_id", Uuid(as_uuid=False)),
    Column("level", Text, nullable=False),
    Column("score", SmallInteger, nullable=False),
    Column("reasons", JSONB, nullable=False),
    Column("suggested_needs", JSONB, nullable=False),
    Column("ruleset_version", Text, nullable=False),
    Column("flagged", Boolean, nullable=False),
    _at(),
    Index("ix_assessments_case", "case_id", "created_at"),
    Index("ix_assessments_profile", "profile_id", "created_at"),
)

rulesets = Table(
    "rulesets",
    metadata,
    Column("version", Text, primary_key=True),
    Column("label", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    _at(),
    Column("activated_at", DateTime(timezone=True)),
    Column("active", Boolean, nullable=False, server_default="false"),
)

imports = Table(
    "imports",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("council", Text, nullable=False),
    Column("submitted_by", Text, nullable=False),
    Column("format", Text, nullable=False),
    Column("rows_read", Integer, nullable=False),
    Column("rows_stored", Integer, nullable=False),
    Column("rows_duplicate", Integer, nullable=False),
    Column("rows_rejected", Integer, nullable=False),
    Column("flagged", Integer, nullable=False),
    _at("started_at"),
    Column("finished_at", DateTime(timezone=True)),
)
