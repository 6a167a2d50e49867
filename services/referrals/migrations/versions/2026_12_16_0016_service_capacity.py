"""service capacity: each partner service's capacity history, from partners'
partners.service.capacity_changed, for the partner load's capacity (operational figures,
no resident data)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-16

Empty at first: the referrals-reporting consumer group reads the new topic from its start.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reporting_service_capacity",
        sa.Column("service_id", sa.Text(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("partner_id", sa.Text(), nullable=False),
        sa.Column("needs", postgresql.ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default="false"),
    )
    op.create_index(
        "ix_reporting_service_capacity_partner_at",
        "reporting_service_capacity",
        ["partner_id", "at"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_reporting_service_capacity_partner_at", table_name="reporting_service_capacity"
    )
    op.drop_table("reporting_service_capacity")
