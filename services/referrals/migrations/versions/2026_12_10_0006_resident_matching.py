"""resident matching: blocking keys and their indexes, scored possible duplicates, held
routing, case merges

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from services.referrals.domain.matching import district_of, email_key, phone_key, phonetic_key
from shared.identity import normalise_name

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_KEYS = ("given_key", "family_key", "postcode_district", "phone_key", "email_key")
_INDEXES = {
    "ix_residents_council_dob": ["council", "date_of_birth"],
    "ix_residents_council_name_keys": ["council", "family_key", "given_key"],
    "ix_residents_council_district_family": ["council", "postcode_district", "family_key"],
    "ix_residents_council_postcode": ["council", "postcode"],
    "ix_residents_council_phone": ["council", "phone_key"],
    "ix_residents_council_email": ["council", "email_key"],
}
_UUID = postgresql.UUID(as_uuid=False)


def _created() -> sa.Column:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def upgrade() -> None:
    for name in _KEYS:
        op.add_column("residents", sa.Column(name, sa.Text()))
    residents = sa.table(
        "residents",
        *(sa.column(c) for c in ("id", "given_name", "family_name", "postcode", "phone", "email")),
        *(sa.column(c) for c in _KEYS),
    )
    connection = op.get_bind()
    for row in list(connection.execute(sa.select(residents)).mappings()):
        connection.execute(
            sa.update(residents)
            .where(residents.c.id == row["id"])
            .values(
                given_key=phonetic_key(normalise_name(row["given_name"])),
                family_key=phonetic_key(normalise_name(row["family_name"])),
                postcode_district=district_of(row["postcode"]),
                phone_key=phone_key(row["phone"]),
                email_key=email_key(row["email"]),
            )
        )
    for name, columns in _INDEXES.items():
        op.create_index(name, "residents", columns)

    op.add_column("cases", sa.Column("merged_into_case", _UUID, sa.ForeignKey("cases.id")))
    op.add_column("possible_duplicates", sa.Column("score", sa.Float()))
    op.add_column(
        "possible_duplicates",
        sa.Column("contributions", postgresql.JSONB(astext_type=sa.Text())),
    )
    op.create_table(
        "routing_holds",
        sa.Column("id", _UUID, primary_key=True),
        sa.Column("case_id", _UUID, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("need", sa.Text(), nullable=False),
        sa.Column("duplicate_id", _UUID, sa.ForeignKey("possible_duplicates.id"), nullable=False),
        sa.Column("other_case_id", _UUID, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        _created(),
        sa.Column("settled_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_routing_holds_case", "routing_holds", ["case_id", "status"])
    op.create_index("ix_routing_holds_duplicate", "routing_holds", ["duplicate_id"])
    op.create_table(
        "case_merges",
        sa.Column("id", _UUID, primary_key=True),
        sa.Column("council", sa.Text(), nullable=False),
        sa.Column("merged_resident_id", _UUID, sa.ForeignKey("residents.id"), nullable=False),
        sa.Column("into_resident_id", _UUID, sa.ForeignKey("residents.id"), nullable=False),
        sa.Column("merged_case_id", _UUID, sa.ForeignKey("cases.id")),
        sa.Column("survivor_case_id", _UUID, sa.ForeignKey("cases.id")),
        sa.Column("moved", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("merged_by", sa.Text(), nullable=False),
        _created(),
        sa.Column("undone_at", sa.DateTime(timezone=True)),
        sa.Column("undone_by", sa.Text()),
    )


def downgrade() -> None:
    op.drop_table("case_merges")
    op.drop_table("routing_holds")
    op.drop_column("possible_duplicates", "contributions")
    op.drop_column("possible_duplicates", "score")
    op.drop_column("cases", "merged_into_case")
    for name in _INDEXES:
        op.drop_index(name, table_name="residents")
    for name in _KEYS:
        op.drop_column("residents", name)
