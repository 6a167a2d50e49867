"""a case's lawful basis carries its justification, who decided it and the Article 9 condition

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-11
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = ("basis_justification", "basis_decided_by", "article9_condition")


def upgrade() -> None:
    for name in _COLUMNS:
        op.add_column("cases", sa.Column(name, sa.Text()))


def downgrade() -> None:
    for name in reversed(_COLUMNS):
        op.drop_column("cases", name)
