"""a feed's keys and signals: no foreign key check a row, keys compared byte by byte

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-16

``profile_keys.profile_id`` and ``signals.profile_id`` no longer reference ``profiles`` by
a foreign key. A million-row feed stores about 2.2 million keys and signals, and each
foreign key check is a probe of the profiles' primary key through a trigger: measured here,
6 to 14 µs a row of PostgreSQL's time, a fifth of an import's database work. Every writer
of these rows is this service's own code, in one transaction with the profile: an import
and a referral create the profile then its keys and signals (``resolve_profiles``), a merge
moves them before deleting the emptied profiles, and an erasure and the retention sweep
delete them before their profile. The indexes on ``profile_id`` stay (they serve those
deletes and every read by profile).

``profile_keys.key`` and ``signals.fingerprint`` (hex digests) are compared in the ``C``
collation, byte by byte: a digest has no order in any language, and a locale's collation
(``C.UTF-8`` here, ``en_GB.UTF-8`` on many servers) calls ``strcoll`` for every comparison
in their unique indexes, a fifth more of the index work of a feed's million rows.
Rebuilding the two indexes takes a few seconds a million rows.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("profile_keys_profile_id_fkey", "profile_keys", type_="foreignkey")
    op.drop_constraint("signals_profile_id_fkey", "signals", type_="foreignkey")
    op.execute('ALTER TABLE profile_keys ALTER COLUMN key TYPE text COLLATE "C"')
    op.execute('ALTER TABLE signals ALTER COLUMN fingerprint TYPE text COLLATE "C"')


def downgrade() -> None:
    op.execute('ALTER TABLE signals ALTER COLUMN fingerprint TYPE text COLLATE "default"')
    op.execute('ALTER TABLE profile_keys ALTER COLUMN key TYPE text COLLATE "default"')
    op.create_foreign_key("signals_profile_id_fkey", "signals", "profiles", ["profile_id"], ["id"])
    op.create_foreign_key(
        "profile_keys_profile_id_fkey", "profile_keys", "profiles", ["profile_id"], ["id"]
    )
