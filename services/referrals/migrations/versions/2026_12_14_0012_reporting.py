"""reporting: the outcome figures' own model, written from events by the
referrals-reporting consumer group (pseudonymous references, coarse attributes only)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-14

Empty at first: the new consumer group reads every topic from its start and fills it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _at(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True))


def _texts(name: str) -> sa.Column:
    return sa.Column(name, postgresql.ARRAY(sa.Text()), nullable=False, server_default="{}")


def upgrade() -> None:
    op.create_table(
        "reporting_cases",
        sa.Column("case_ref", sa.Text(), primary_key=True),
        sa.Column("council", sa.Text(), nullable=False),
        sa.Column("origin", sa.Text()),
        sa.Column("resident_ref", sa.Text()),
        sa.Column("flag_ref", sa.Text()),
        _at("opened_at"),
        _texts("needs"),
        sa.Column("age_band", sa.Text()),
        sa.Column("language", sa.Text()),
        sa.Column("area", sa.Text()),
        _at("ready_at"),
        _at("closed_at"),
        sa.Column("outcome", sa.Text()),
        sa.Column("withdrawn", sa.Boolean()),
        _at("consent_withdrawn_at"),
    )
    op.create_index(
        "ix_reporting_cases_council_opened", "reporting_cases", ["council", "opened_at"]
    )
    op.create_table(
        "reporting_referrals",
        sa.Column("referral_ref", sa.Text(), primary_key=True),
        sa.Column("case_ref", sa.Text(), nullable=False),
        sa.Column("council", sa.Text(), nullable=False),
        sa.Column("source", sa.Text()),
        sa.Column("resident_ref", sa.Text()),
        _texts("needs"),
        sa.Column("age_band", sa.Text()),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_reporting_referrals_council_received",
        "reporting_referrals",
        ["council", "received_at"],
    )
    op.create_table(
        "reporting_offers",
        sa.Column("offer_ref", sa.Text(), primary_key=True),
        sa.Column("case_ref", sa.Text(), nullable=False),
        sa.Column("need", sa.Text(), nullable=False),
        sa.Column("partner_id", sa.Text(), nullable=False),
        _at("offered_at"),
        _at("accepted_at"),
        _at("declined_at"),
        sa.Column("decline_reason", sa.Text()),
        _at("expired_at"),
        _at("withdrawn_at"),
        sa.Column("outcome", sa.Text()),
        _at("outcome_at"),
    )
    op.create_index("ix_reporting_offers_case", "reporting_offers", ["case_ref"])
    op.create_table(
        "reporting_case_needs",
        sa.Column("case_ref", sa.Text(), primary_key=True),
        sa.Column("need", sa.Text(), primary_key=True),
        _at("unroutable_at"),
        _at("waiting_since"),
    )
    op.create_table(
        "reporting_flags",
        sa.Column("flag_ref", sa.Text(), primary_key=True),
        sa.Column("council", sa.Text(), nullable=False),
        sa.Column("resident_ref", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("ruleset_version", sa.Text(), nullable=False),
        _texts("rule_ids"),
        sa.Column("returning", sa.Boolean(), nullable=False, server_default="false"),
        _texts("needs"),
        sa.Column("age_band", sa.Text()),
        sa.Column("area", sa.Text()),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_reporting_flags_council_flagged", "reporting_flags", ["council", "flagged_at"]
    )
    op.create_table(
        "reporting_assessments",
        sa.Column("case_ref", sa.Text(), primary_key=True),
        sa.Column("assessed_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("ruleset_version", sa.Text(), nullable=False),
        _texts("rule_ids"),
    )


def downgrade() -> None:
    op.drop_table("reporting_assessments")
    op.drop_index("ix_reporting_flags_council_flagged", table_name="reporting_flags")
    op.drop_table("reporting_flags")
    op.drop_table("reporting_case_needs")
    op.drop_index("ix_reporting_offers_case", table_name="reporting_offers")
    op.drop_table("reporting_offers")
    op.drop_index("ix_reporting_referrals_council_received", table_name="reporting_referrals")
    op.drop_table("reporting_referrals")
    op.drop_index("ix_reporting_cases_council_opened", table_name="reporting_cases")
    op.drop_table("reporting_cases")
