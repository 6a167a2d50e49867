"""outcomes close the loop: outcomes on profiles, handled signals, returning residents

An outcome a partner recorded for a resident's case is kept on the resident's profile; an
outcome that helped marks the signals its need addressed as handled, so they no longer flag
the resident. A flag records the standing of the signals behind it and whether the resident
is returning (flagged again soon after help arrived).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-13
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outcomes",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("profile_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("case_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("need", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("helped", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["profile_id"], ["profiles.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "need", "recorded_at", name="uq_outcomes_case_need_at"),
    )
    op.create_index("ix_outcomes_profile", "outcomes", ["profile_id", "recorded_at"])
    op.create_table(
        "handled_signals",
        sa.Column("signal_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("profile_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("outcome_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["signal_id"], ["signals.id"]),
        sa.ForeignKeyConstraint(["profile_id"], ["profiles.id"]),
        sa.ForeignKeyConstraint(["outcome_id"], ["outcomes.id"]),
        sa.PrimaryKeyConstraint("signal_id"),
    )
    op.create_index(
        op.f("ix_handled_signals_profile_id"), "handled_signals", ["profile_id"], unique=False
    )
    op.add_column("assessments", sa.Column("signals", postgresql.JSONB(), nullable=True))
    op.add_column(
        "assessments",
        sa.Column("returning_resident", sa.Boolean(), nullable=False, server_default="false"),
    )
    op.add_column("assessments", sa.Column("helped_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("assessments", "helped_at")
    op.drop_column("assessments", "returning_resident")
    op.drop_column("assessments", "signals")
    op.drop_index(op.f("ix_handled_signals_profile_id"), table_name="handled_signals")
    op.drop_table("handled_signals")
    op.drop_index("ix_outcomes_profile", table_name="outcomes")
    op.drop_table("outcomes")
