"""agreements per council: a data-sharing agreement is between one council and one partner

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-13

Each partner's existing agreement (one per partner, no council) becomes one agreement with
each council it serves now: the councils (GSS codes) of its services' areas, and the councils
of the cases it has already been offered. It keeps its lawful bases and reference (or gets
"pre-council agreement (migrated)"), covers every need and the three categories a routing
packet holds (so routing behaves as before for those councils), allows special category data
where it did, starts on the day the organisation was added and has no end date. Each
migrated agreement has a ``migrated`` row in ``agreement_changes``.

No old agreement is lost. A partner that serves no council by GSS code (postcode districts
only) and was never offered a case cannot be given a council here (the repository has no
postcode-district-to-council mapping): its old agreement is kept as it was, with its
services' districts, in ``agreements_unmatched_0008``, for an operator to record as
agreements with the right councils and then delete (docs/partners.md, "Migration"). Until
then it is offered nothing (routing reads ``agreements`` only), as a partner with no
agreement.

The downgrade restores one agreement per partner: the most recently started of its council
agreements (its bases, reference and special-category permission), and for a partner that
has none the retained row of ``agreements_unmatched_0008`` exactly as it was.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Frozen here (not imported): the vocabulary as it stood when this revision was written.
NEEDS = [
    "food",
    "money_and_debt",
    "benefits",
    "housing",
    "fuel_and_utilities",
    "mental_health",
    "physical_health_and_disability",
    "social_isolation",
    "digital_inclusion",
    "employment_and_skills",
    "domestic_abuse",
    "immigration_advice",
    "carers_support",
    "children_and_families",
]
PACKET_CATEGORIES = ["identity", "contact", "needs"]
MIGRATED_REFERENCE = "pre-council agreement (migrated)"


def _now_column(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.rename_table("agreements", "agreements_before_0008")
    op.execute(
        "ALTER TABLE agreements_before_0008 "
        "RENAME CONSTRAINT agreements_pkey TO agreements_before_0008_pkey"
    )
    op.execute(
        "ALTER TABLE agreements_before_0008 RENAME CONSTRAINT "
        "agreements_organization_id_fkey TO agreements_before_0008_organization_id_fkey"
    )
    op.create_table(
        "agreements",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("organization_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("council", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("needs", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("data_categories", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("special_category", sa.Boolean(), nullable=False),
        sa.Column("lawful_bases", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.Text(), nullable=False),
        _now_column("created_at"),
        _now_column("updated_at"),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("organization_id", "council", "reference"),
    )
    op.create_index(
        op.f("ix_agreements_organization_id"), "agreements", ["organization_id"], unique=False
    )
    op.create_index("ix_agreements_council", "agreements", ["council", "organization_id"])
    op.create_table(
        "agreement_changes",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("agreement_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("change", sa.Text(), nullable=False),
        sa.Column("by_subject", sa.Text(), nullable=False),
        sa.Column("by_organisation", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("terms", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _now_column("at"),
        sa.ForeignKeyConstraint(["agreement_id"], ["agreements.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_agreement_changes_agreement_id"),
        "agreement_changes",
        ["agreement_id"],
        unique=False,
    )
    op.add_column("route_requests", sa.Column("agreement_reference", sa.Text(), nullable=True))

    # Each old agreement, once per council its organisation serves (services' councils, and
    # the councils of cases offered to it).
    op.execute(
        sa.text(
            """
            INSERT INTO agreements (
                id, organization_id, council, reference, needs, data_categories,
                special_category, lawful_bases, starts_on, recorded_by
            )
            SELECT gen_random_uuid(), old.organization_id, served.council,
                   coalesce(old.reference, :reference), CAST(:needs AS jsonb),
                   CAST(:categories AS jsonb), old.data_categories @> '["special_category"]'::jsonb,
                   old.lawful_bases, o.created_at::date, 'migration 0008'
            FROM agreements_before_0008 AS old
            JOIN organizations AS o ON o.id = old.organization_id
            JOIN (
                SELECT s.organization_id, c.council
                FROM services AS s, jsonb_array_elements_text(s.councils) AS c(council)
                UNION
                SELECT f.organization_id, r.council
                FROM offers AS f JOIN route_requests AS r ON r.id = f.request_id
            ) AS served ON served.organization_id = old.organization_id
            """
        ).bindparams(
            reference=MIGRATED_REFERENCE,
            needs=_json(NEEDS),
            categories=_json(PACKET_CATEGORIES),
        )
    )
    op.execute(
        """
        INSERT INTO agreement_changes (id, agreement_id, change, by_subject, by_organisation,
                                       reason, terms)
        SELECT gen_random_uuid(), a.id, 'migrated', 'migration 0008', 'operator',
               'one agreement per partner became one with each council it serves',
               jsonb_build_object(
                   'council', a.council, 'reference', a.reference,
                   'lawful_bases', a.lawful_bases, 'special_category', a.special_category,
                   'starts_on', a.starts_on
               )
        FROM agreements AS a
        """
    )
    # The old agreements that got no council: kept as they were (nothing is lost).
    _create_unmatched()
    op.execute(
        """
        INSERT INTO agreements_unmatched_0008 (
            organization_id, lawful_bases, data_categories, reference, updated_at,
            postcode_districts
        )
        SELECT old.organization_id, old.lawful_bases, old.data_categories, old.reference,
               old.updated_at,
               coalesce((
                   SELECT jsonb_agg(DISTINCT d.district ORDER BY d.district)
                   FROM services AS s,
                        jsonb_array_elements_text(s.postcode_districts) AS d(district)
                   WHERE s.organization_id = old.organization_id
               ), '[]'::jsonb)
        FROM agreements_before_0008 AS old
        WHERE NOT EXISTS (
            SELECT 1 FROM agreements AS a WHERE a.organization_id = old.organization_id
        )
        """
    )
    op.drop_table("agreements_before_0008")


def _create_unmatched() -> None:
    op.create_table(
        "agreements_unmatched_0008",
        sa.Column("organization_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("lawful_bases", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("data_categories", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("postcode_districts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"]),
        sa.PrimaryKeyConstraint("organization_id"),
    )


def _json(values: list[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def downgrade() -> None:
    op.drop_column("route_requests", "agreement_reference")
    op.drop_index(op.f("ix_agreement_changes_agreement_id"), table_name="agreement_changes")
    op.drop_table("agreement_changes")
    op.rename_table("agreements", "agreements_per_council")
    op.drop_index("ix_agreements_council", table_name="agreements_per_council")
    op.drop_index(op.f("ix_agreements_organization_id"), table_name="agreements_per_council")
    op.execute(
        "ALTER TABLE agreements_per_council RENAME CONSTRAINT agreements_pkey "
        "TO agreements_per_council_pkey"
    )
    op.execute(
        "ALTER TABLE agreements_per_council RENAME CONSTRAINT "
        "agreements_organization_id_fkey TO agreements_per_council_organization_id_fkey"
    )
    op.create_table(
        "agreements",
        sa.Column("organization_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("lawful_bases", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("data_categories", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        _now_column("updated_at"),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"]),
        sa.PrimaryKeyConstraint("organization_id"),
    )
    op.execute(
        """
        INSERT INTO agreements (organization_id, lawful_bases, data_categories, reference)
        SELECT DISTINCT ON (organization_id) organization_id, lawful_bases,
               CASE WHEN special_category THEN '["special_category"]'::jsonb
                    ELSE '[]'::jsonb END,
               reference
        FROM agreements_per_council
        ORDER BY organization_id, starts_on DESC, reference
        """
    )
    # The old agreements that got no council, as they were (unless one has been recorded
    # with a council since: that one is kept, above).
    op.execute(
        """
        INSERT INTO agreements (organization_id, lawful_bases, data_categories, reference,
                                updated_at)
        SELECT organization_id, lawful_bases, data_categories, reference, updated_at
        FROM agreements_unmatched_0008
        ON CONFLICT (organization_id) DO NOTHING
        """
    )
    op.drop_table("agreements_unmatched_0008")
    op.drop_table("agreements_per_council")
