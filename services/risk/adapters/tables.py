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
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.audit import audit_table
from shared.erasure import tombstone_table

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
    # HMAC-SHA256 of normalised identifiers, compared byte by byte (migration 0010)
    Column("key", Text(collation="C"), primary_key=True),
    # No foreign key (migration 0010): a feed's keys and signals are written with their
    # profile by this service alone, and deleted before it; a check a row costs too much.
    Column("profile_id", Uuid(as_uuid=False), nullable=False, index=True),
)

signals = Table(
    "signals",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("profile_id", Uuid(as_uuid=False), nullable=False, index=True),  # as keys' (0010)
    Column("type", Text, nullable=False),
    Column("attributes", JSONB, nullable=False),
    Column("source", Text, nullable=False),
    Column("observed_on", Date, nullable=False),
    Column("expires_on", Date, nullable=False),
    # The same fact sent twice (a re-sent file) is stored once.
    Column("fingerprint", Text(collation="C"), nullable=False, unique=True),
    _at("received_at"),
)

# When resident keys began to name the council (migration 0011, one row): tombstones of
# erasures recorded before then may be of keys made of the identifiers alone.
council_keys_since = Table(
    "council_keys_since",
    metadata,
    Column("at", DateTime(timezone=True), nullable=False),
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
    # A flag after help arrived: the current signals and their standing (handled, the same as
    # a handled one, worse, new), and whether it came within the returning window.
    Column("signals", JSONB),
    Column("returning_resident", Boolean, nullable=False, server_default="false"),
    Column("helped_at", DateTime(timezone=True)),  # the last help before it, if any
    Index("ix_assessments_case", "case_id", "created_at"),
    Index("ix_assessments_profile", "profile_id", "created_at"),
)

# Outcomes partners recorded for a resident's case (the loop closes here): the need, the
# outcome and whether it says help arrived.
outcomes = Table(
    "outcomes",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("profile_id", Uuid(as_uuid=False), ForeignKey("profiles.id"), nullable=False),
    Column("case_id", Uuid(as_uuid=False), nullable=False),
    Column("need", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("helped", Boolean, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("case_id", "need", "recorded_at", name="uq_outcomes_case_need_at"),
    Index("ix_outcomes_profile", "profile_id", "recorded_at"),
)

# The signals an outcome that helped addressed: they no longer flag the resident.
handled_signals = Table(
    "handled_signals",
    metadata,
    Column("signal_id", Uuid(as_uuid=False), ForeignKey("signals.id"), primary_key=True),
    Column(
        "profile_id", Uuid(as_uuid=False), ForeignKey("profiles.id"), nullable=False, index=True
    ),
    Column("outcome_id", Uuid(as_uuid=False), ForeignKey("outcomes.id"), nullable=False),
    Column("handled_at", DateTime(timezone=True), nullable=False),
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

# A council's own ruleset in force; a council without a row uses the default (the ruleset
# marked active above).
council_rulesets = Table(
    "council_rulesets",
    metadata,
    Column("council", Text, primary_key=True),
    Column("version", Text, ForeignKey("rulesets.version"), nullable=False),
    Column("activated_by", Text, nullable=False),
    _at("activated_at"),
)

# Each council's organisational details for its transparency record (ATRS): owner, team,
# contact, benefits, impact assessments, agreements… No personal data: roles, team mailboxes.
councils = Table(
    "councils",
    metadata,
    Column("council", Text, primary_key=True),
    Column("details", JSONB, nullable=False),
    Column("updated_by", Text, nullable=False),
    _at(),
    Column("updated_at", DateTime(timezone=True), nullable=False),
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

# Every read of personal data through the API (shared/audit.py):
# append-only.
audit_log = audit_table(metadata)

# Tombstones of erased case ids and resident keys (keyed hashes only): a replayed event
# naming one re-creates nothing (shared/erasure.py).
erased_identifiers = tombstone_table(metadata)
