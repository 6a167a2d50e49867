"""needs one by one: each need of a case with its own status and timestamps; overdue
offers; gaps in service for the council's queue

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-13

Existing cases get a row per need, its status derived from what is there: the need's latest
mirrored offer while the case is with partners (offered, accepted, in progress; an outcome
gives met or not met whatever the case's status), otherwise the case's own status
(received, assessed, awaiting consent → waiting for consent, routed → routing, unroutable,
closed, withdrawn). Case statuses are left as they are: the next change to one of a case's
needs derives it again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Frozen here: the need statuses of this revision (services/referrals/domain/needs.py).
_NEED_STATUSES = (
    "received",
    "assessed",
    "waiting_for_consent",
    "routing",
    "waiting_for_capacity",
    "offered",
    "accepted",
    "in_progress",
    "unroutable",
    "met",
    "not_met",
    "closed",
    "withdrawn",
)

_BACKFILL = """
WITH latest AS (
    SELECT DISTINCT ON (case_id, need) case_id, need, id, status, outcome, updated_at
    FROM offers
    ORDER BY case_id, need, updated_at DESC, id DESC
),
last_event AS (
    SELECT case_id, need, max(updated_at) AS at FROM offers GROUP BY case_id, need
),
needs AS (
    SELECT c.id AS case_id, n.need, c.status AS case_status,
           coalesce(c.updated_at, c.created_at) AS case_at
    FROM cases c CROSS JOIN LATERAL jsonb_array_elements_text(c.needs) AS n(need)
),
derived AS (
    SELECT needs.case_id, needs.need, l.id AS offer_id, l.outcome, e.at AS last_event_at,
        CASE
            WHEN l.status = 'outcome_recorded'
                 AND l.outcome IN ('support_provided', 'partly_resolved') THEN 'met'
            WHEN l.status = 'outcome_recorded' THEN 'not_met'
            WHEN needs.case_status IN ('ready_for_routing', 'offered', 'accepted',
                                       'in_progress', 'unroutable')
                 AND l.status IN ('offered', 'accepted', 'in_progress') THEN l.status
            WHEN needs.case_status = 'awaiting_consent' THEN 'waiting_for_consent'
            WHEN needs.case_status IN ('ready_for_routing', 'offered', 'accepted',
                                       'in_progress') THEN 'routing'
            ELSE needs.case_status
        END AS status,
        CASE
            WHEN l.status IS NOT NULL AND (
                l.status = 'outcome_recorded'
                OR (needs.case_status IN ('ready_for_routing', 'offered', 'accepted',
                                          'in_progress', 'unroutable')
                    AND l.status IN ('offered', 'accepted', 'in_progress')))
            THEN l.updated_at
            ELSE needs.case_at
        END AS status_at
    FROM needs
    LEFT JOIN latest l ON l.case_id = needs.case_id AND l.need = needs.need
    LEFT JOIN last_event e ON e.case_id = needs.case_id AND e.need = needs.need
)
INSERT INTO case_needs (case_id, need, status, status_at, offer_id, last_event_at, outcome,
                        created_at, updated_at)
SELECT case_id, need, status, status_at,
       CASE WHEN status IN ('offered', 'accepted', 'in_progress', 'met', 'not_met')
            THEN offer_id END,
       last_event_at,
       CASE WHEN status IN ('met', 'not_met') THEN outcome END,
       status_at, status_at
FROM derived
ON CONFLICT DO NOTHING
"""


def upgrade() -> None:
    op.add_column("offers", sa.Column("follow_up_by", sa.DateTime(timezone=True)))
    op.add_column("offers", sa.Column("overdue_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_offers_overdue",
        "offers",
        ["case_id"],
        postgresql_where=sa.text("overdue_at IS NOT NULL"),
    )
    op.create_table(
        "case_needs",
        sa.Column("case_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("need", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("offer_id", sa.Text()),
        sa.Column("last_event_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.Text()),
        sa.Column("unroutable_reason", sa.Text()),
        *[sa.Column(f"{status}_at", sa.DateTime(timezone=True)) for status in _NEED_STATUSES],
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("case_id", "need"),
    )
    op.create_index("ix_case_needs_status", "case_needs", ["status", "case_id"])
    op.create_table(
        "gaps",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("council", sa.Text(), nullable=False),
        sa.Column("need", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("postcode_districts", postgresql.JSONB(), nullable=False),
        sa.Column("languages", postgresql.JSONB(), nullable=False),
        sa.Column("age_bands", postgresql.JSONB(), nullable=False),
        sa.Column("residents_waiting", sa.Integer(), nullable=False),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("longest_wait_hours", sa.Float(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_gaps_council_need", "gaps", ["council", "need", "detected_at"])
    op.execute(_BACKFILL)
    # Each need's status timestamp is the milestone of the status it is in.
    for status in _NEED_STATUSES:
        op.execute(f"UPDATE case_needs SET {status}_at = status_at WHERE status = '{status}'")


def downgrade() -> None:
    op.drop_index("ix_gaps_council_need", table_name="gaps")
    op.drop_table("gaps")
    op.drop_index("ix_case_needs_status", table_name="case_needs")
    op.drop_table("case_needs")
    op.drop_index("ix_offers_overdue", table_name="offers")
    op.drop_column("offers", "overdue_at")
    op.drop_column("offers", "follow_up_by")
