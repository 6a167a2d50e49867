"""The referrals service's own tables (its messaging tables come from ``shared``)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
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

from services.referrals.domain.lifecycle import OPEN_STATUSES, CaseStatus
from services.referrals.domain.needs import NeedStatus
from shared.audit import audit_table
from shared.erasure import tombstone_table

metadata = MetaData()


def _created() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


residents = Table(
    "residents",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("council", Text, nullable=False),
    Column("given_name", Text, nullable=False),
    Column("family_name", Text, nullable=False),
    Column("norm_given", Text, nullable=False),
    Column("norm_family", Text, nullable=False),
    Column("date_of_birth", Date),
    Column("postcode", Text),
    Column("uprn", Text),
    Column("address", Text),
    Column("phone", Text),
    Column("email", Text),
    Column("preferred_contact", Text, nullable=False),
    Column("preferred_language", Text, nullable=False),
    Column("interpreter_needed", Boolean, nullable=False),
    Column("accessibility_needs", Text),
    Column("council_reference", Text),
    Column("merged_into", Uuid(as_uuid=False), ForeignKey("residents.id")),
    _created(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_residents_council_family", "council", "norm_family"),
    Index("ix_residents_council_uprn", "council", "uprn"),
    # Blocking keys for the candidate search (domain/matching.py, blocking_keys).
    Column("given_key", Text),  # phonetic key of the given name
    Column("family_key", Text),  # phonetic key of the family name
    Column("postcode_district", Text),
    Column("phone_key", Text),  # last ten digits
    Column("email_key", Text),  # case folded
    Index("ix_residents_council_dob", "council", "date_of_birth"),
    Index("ix_residents_council_name_keys", "council", "family_key", "given_key"),
    Index("ix_residents_council_district_family", "council", "postcode_district", "family_key"),
    Index("ix_residents_council_postcode", "council", "postcode"),
    Index("ix_residents_council_phone", "council", "phone_key"),
    Index("ix_residents_council_email", "council", "email_key"),
    # A survivor's merged records (erasure, retention, subject access look them up).
    Index(
        "ix_residents_merged_into", "merged_into", postgresql_where=text("merged_into IS NOT NULL")
    ),
)

_status_timestamps = [
    Column(f"{status.value}_at", DateTime(timezone=True)) for status in CaseStatus
]

cases = Table(
    "cases",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("council", Text, nullable=False),
    Column("resident_id", Uuid(as_uuid=False), ForeignKey("residents.id"), nullable=False),
    Column("origin", Text, nullable=False),  # referral | flag
    Column("status", Text, nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("urgency", Text, nullable=False),
    Column("needs", JSONB, nullable=False),
    Column("circumstances", JSONB, nullable=False),
    Column("lawful_basis", Text, nullable=False),
    Column("data_sharing_agreement", Text),
    # Why a basis other than consent applies, and who decided it (domain/sharing.py).
    Column("basis_justification", Text),
    Column("basis_decided_by", Text),
    Column("article9_condition", Text),  # for special category needs (health)
    Column("risk_level", Text),
    Column("risk_score", Integer),
    Column("risk_reasons", JSONB),
    Column("suggested_needs", JSONB),
    Column("ruleset_version", Text),
    Column("assigned_to", Text),
    Column("outcome", Text),
    Column("status_reason", Text),
    Column("unroutable_reasons", JSONB),
    _created(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    *_status_timestamps,
    Index("ix_cases_queue", "council", "priority", "created_at", "id"),
    # Set when this case was merged into another (the same resident, referred twice).
    Column("merged_into_case", Uuid(as_uuid=False), ForeignKey("cases.id")),
    # A resident's cases, open or ended long ago (erasure, retention, subject access): the
    # index of open cases below holds only the open ones.
    Index("ix_cases_resident", "resident_id"),
    Index(
        "ix_cases_merged_into_case",
        "merged_into_case",
        postgresql_where=text("merged_into_case IS NOT NULL"),
    ),
    # Retention's sweep starts from the cases ended before its cutoff (revision 0019 gives
    # the planner statistics of this expression too).
    Index(
        "ix_cases_ended_at",
        text("COALESCE(closed_at, withdrawn_at, updated_at)"),
        postgresql_where=text("status IN ('closed', 'withdrawn')"),
    ),
    # One open case per resident per council, whatever races the API and the consumers run.
    Index(
        "uq_cases_one_open_per_resident",
        "resident_id",
        "council",
        unique=True,
        postgresql_where=text(
            "status IN (" + ", ".join(f"'{s.value}'" for s in sorted(OPEN_STATUSES)) + ")"
        ),
    ),
)

referrals = Table(
    "referrals",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("case_id", Uuid(as_uuid=False), ForeignKey("cases.id"), nullable=False, index=True),
    Column(
        "resident_id", Uuid(as_uuid=False), ForeignKey("residents.id"), nullable=False, index=True
    ),
    Column("referrer_org", Text, nullable=False, index=True),
    Column("referrer_kind", Text, nullable=False),
    Column("referrer_subject", Text, nullable=False),
    Column("needs", JSONB, nullable=False),
    Column("circumstances", JSONB, nullable=False),
    Column("circumstances_text", Text),
    Column("urgency", Text, nullable=False),
    _created(),
)

consents = Table(
    "consents",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("case_id", Uuid(as_uuid=False), ForeignKey("cases.id"), nullable=False, index=True),
    Column("given_by", Text, nullable=False),
    Column("method", Text, nullable=False),
    Column("given_at", DateTime(timezone=True), nullable=False),
    Column("partner_kinds", JSONB, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("recorded_by", Text, nullable=False),
    Column("withdrawn_at", DateTime(timezone=True)),
    Column("withdrawn_by", Text),
    _created(),
    # The consents due to expire, soonest first (the expiry timer, every 30 s), not every
    # consent ever given.
    Index(
        "ix_consents_expiring",
        "expires_at",
        postgresql_where=text("withdrawn_at IS NULL AND expires_at IS NOT NULL"),
    ),
)

timeline = Table(
    "timeline",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("case_id", Uuid(as_uuid=False), ForeignKey("cases.id"), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("actor_org", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("detail", Text),
    Column("status_from", Text),
    Column("status_to", Text),
    # What a referring charity may see of a case it referred: its progress, nothing more.
    Column("referrer_visible", Boolean, nullable=False),
)

notes = Table(
    "notes",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("case_id", Uuid(as_uuid=False), ForeignKey("cases.id"), nullable=False, index=True),
    Column("author", Text, nullable=False),
    Column("author_org", Text, nullable=False),
    Column("text", Text, nullable=False),
    _created(),
)

possible_duplicates = Table(
    "possible_duplicates",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("council", Text, nullable=False),
    Column("resident_id", Uuid(as_uuid=False), ForeignKey("residents.id"), nullable=False),
    Column("candidate_id", Uuid(as_uuid=False), ForeignKey("residents.id"), nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", Text, nullable=False),  # open | confirmed | rejected
    Column("score", Float),  # the match weight (domain/matching.py)
    Column("contributions", JSONB),  # [{field, agreement, weight}]
    Column("decided_by", Text),
    Column("decided_at", DateTime(timezone=True)),
    _created(),
    UniqueConstraint("resident_id", "candidate_id"),
)

offers = Table(
    "offers",
    metadata,
    Column("id", Text, primary_key=True),  # the partners service's offer id
    Column("case_id", Uuid(as_uuid=False), ForeignKey("cases.id"), nullable=False, index=True),
    Column("need", Text, nullable=False),
    Column("partner_id", Text, nullable=False),
    Column("partner_name", Text),
    Column("service_name", Text),
    Column("status", Text, nullable=False),
    Column("respond_by", DateTime(timezone=True)),
    Column("decline_reason", Text),
    Column("outcome", Text),
    Column("note", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # why this partner, in plain words (shared.events.payloads.RoutingReasons), from the offer
    Column("routing_reasons", JSONB),
    # Accepted, and no progress by the follow-up deadline (partners' OfferOverdue): since when.
    Column("follow_up_by", DateTime(timezone=True)),
    Column("overdue_at", DateTime(timezone=True)),
    Index("ix_offers_overdue", "case_id", postgresql_where=text("overdue_at IS NOT NULL")),
)

# Each need of a case on its own (domain/needs.py): its status, when it entered it and each
# milestone, the offer partners hold it under, and the time of the last partners' event
# applied (an older one does not move it). The case's status is derived from these.
case_needs = Table(
    "case_needs",
    metadata,
    Column("case_id", Uuid(as_uuid=False), ForeignKey("cases.id"), primary_key=True),
    Column("need", Text, primary_key=True),
    Column("status", Text, nullable=False),
    Column("status_at", DateTime(timezone=True), nullable=False),
    Column("offer_id", Text),
    Column("last_event_at", DateTime(timezone=True)),
    Column("outcome", Text),
    Column("unroutable_reason", Text),
    *[Column(f"{status.value}_at", DateTime(timezone=True)) for status in NeedStatus],
    _created(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_case_needs_status", "status", "case_id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("organisation", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("request_hash", Text, nullable=False),
    Column("status_code", SmallInteger, nullable=False),
    Column("response", JSONB, nullable=False),
    _created(),
    # oldest first, for the retention sweep (revision 0020)
    Index("ix_idempotency_keys_created_at", "created_at"),
)

# A need of a new case held back from partners while a caseworker settles a possible
# duplicate whose resident already has an open case routed for that need.
routing_holds = Table(
    "routing_holds",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("case_id", Uuid(as_uuid=False), ForeignKey("cases.id"), nullable=False),
    Column("need", Text, nullable=False),
    Column(
        "duplicate_id", Uuid(as_uuid=False), ForeignKey("possible_duplicates.id"), nullable=False
    ),
    Column("other_case_id", Uuid(as_uuid=False), ForeignKey("cases.id"), nullable=False),
    Column("status", Text, nullable=False),  # held | released | merged
    _created(),
    Column("settled_at", DateTime(timezone=True)),
    Index("ix_routing_holds_case", "case_id", "status"),
    Index("ix_routing_holds_duplicate", "duplicate_id"),
)

# Two open cases of one person merged into one: what moved, so the merge can be undone.
case_merges = Table(
    "case_merges",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("council", Text, nullable=False),
    Column("merged_resident_id", Uuid(as_uuid=False), ForeignKey("residents.id"), nullable=False),
    Column("into_resident_id", Uuid(as_uuid=False), ForeignKey("residents.id"), nullable=False),
    Column("merged_case_id", Uuid(as_uuid=False), ForeignKey("cases.id")),
    Column("survivor_case_id", Uuid(as_uuid=False), ForeignKey("cases.id")),
    Column("moved", JSONB, nullable=False),  # ids of what moved, the survivor's values before
    Column("merged_by", Text, nullable=False),
    _created(),
    Column("undone_at", DateTime(timezone=True)),
    Column("undone_by", Text),
)

# Gaps in service the partners service detected in a council's area (GapDetected): counts
# and areas only, no resident. Shown in the council's queue while any of its open cases has
# the need in the gap (domain/needs.py, statuses_in_gap).
gaps = Table(
    "gaps",
    metadata,
    Column("id", Text, primary_key=True),  # the partners service's gap episode id
    Column("council", Text, nullable=False),
    Column("need", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", Text),
    Column("postcode_districts", JSONB, nullable=False),
    Column("languages", JSONB, nullable=False),
    Column("age_bands", JSONB, nullable=False),
    Column("residents_waiting", Integer, nullable=False),
    Column("waiting_since", DateTime(timezone=True), nullable=False),
    Column("longest_wait_hours", Float, nullable=False),
    Column("detected_at", DateTime(timezone=True), nullable=False),
    _created(),
    Index("ix_gaps_council_need", "council", "need", "detected_at"),
)

# Every read of personal data through the API (shared/audit.py): append-only.
audit_log = audit_table(metadata)

# Subject access requests (UK GDPR Article 15): a council's IG team asks for everything held
# about a resident; each service contributes what it holds (its own part written when the
# request is made, the others' from their events), stored against the request.
subject_access_requests = Table(
    "subject_access_requests",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("council", Text, nullable=False),
    Column("resident_id", Uuid(as_uuid=False), ForeignKey("residents.id"), nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("requested_by_org", Text, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("due_by", Date, nullable=False),  # one calendar month (Article 12(3))
    Column("completed_at", DateTime(timezone=True)),  # when the last service contributed
    Index("ix_subject_access_requests_council", "council", "requested_at"),
)

subject_access_contributions = Table(
    "subject_access_contributions",
    metadata,
    Column(
        "request_id",
        Uuid(as_uuid=False),
        ForeignKey("subject_access_requests.id"),
        primary_key=True,
    ),
    Column("service", Text, primary_key=True),  # referrals | partners | risk
    Column("part", SmallInteger, primary_key=True),  # a large answer comes in parts
    Column("parts", SmallInteger, nullable=False),
    Column("contributed_at", DateTime(timezone=True), nullable=False),
    Column("sections", JSONB, nullable=False),  # kind of record -> the records as held
    Column("reads", JSONB, nullable=False),  # the service's audit rows about them
)

# Erasure requests (UK GDPR Article 17): who asked, on which ground, and which services have
# confirmed. No identifier of the erased resident: only its tombstone hash.
erasure_requests = Table(
    "erasure_requests",
    metadata,
    Column("id", Uuid(as_uuid=False), primary_key=True),
    Column("council", Text, nullable=False),
    Column("resident_hash", Text, nullable=False),  # shared.erasure.tombstone of its id
    Column("ground", Text, nullable=False),  # shared.erasure.ErasureGround
    Column("requested_by", Text, nullable=False),
    Column("requested_by_org", Text, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("erased", JSONB, nullable=False),  # kind of record -> how many (counts only)
    Column("completed_at", DateTime(timezone=True)),  # when the last service confirmed
    Index("ix_erasure_requests_council", "council", "requested_at"),
)

erasure_confirmations = Table(
    "erasure_confirmations",
    metadata,
    Column("request_id", Uuid(as_uuid=False), ForeignKey("erasure_requests.id"), primary_key=True),
    Column("service", Text, primary_key=True),  # referrals | partners | risk
    Column("confirmed_at", DateTime(timezone=True), nullable=False),
    Column("erased", JSONB, nullable=False),
)

# Tombstones of erased case ids and resident keys (keyed hashes only): a replayed event
# naming one re-creates nothing (shared/erasure.py).
erased_identifiers = tombstone_table(metadata)
