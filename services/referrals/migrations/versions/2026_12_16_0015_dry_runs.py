"""dry runs: the latest dry run of each candidate ruleset for a council, from risk's
risk.ruleset.dry_run_completed, shown beside the rule evaluation (counts only)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-16

Empty at first: the referrals-reporting consumer group reads the new topic from its start.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _counts(name: str, empty: str) -> sa.Column:
    return sa.Column(name, postgresql.JSONB(), nullable=False, server_default=empty)


def upgrade() -> None:
    op.create_table(
        "reporting_dry_runs",
        sa.Column("council", sa.Text(), primary_key=True),
        sa.Column("candidate_version", sa.Text(), primary_key=True),
        sa.Column("in_force_version", sa.Text(), nullable=False),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("residents", sa.Integer(), nullable=False),
        sa.Column("residents_changing_level", sa.Integer(), nullable=False),
        _counts("levels_in_force", "{}"),
        _counts("levels_candidate", "{}"),
        _counts("rules", "[]"),
    )
    op.create_index(
        "ix_reporting_dry_runs_council_ran", "reporting_dry_runs", ["council", "ran_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_reporting_dry_runs_council_ran", table_name="reporting_dry_runs")
    op.drop_table("reporting_dry_runs")
