"""reporting indexes: an erasure finds a resident's and a case's reporting rows, an outreach
case its flag, and partner load the period's offers, by an index each

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-16
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

INDEXES: tuple[tuple[str, str, str], ...] = (
    ("ix_reporting_cases_resident", "reporting_cases", "resident_ref"),
    ("ix_reporting_cases_flag", "reporting_cases", "flag_ref"),
    ("ix_reporting_referrals_case", "reporting_referrals", "case_ref"),
    ("ix_reporting_referrals_resident", "reporting_referrals", "resident_ref"),
    ("ix_reporting_flags_resident", "reporting_flags", "resident_ref"),
    ("ix_reporting_offers_offered", "reporting_offers", "offered_at"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
