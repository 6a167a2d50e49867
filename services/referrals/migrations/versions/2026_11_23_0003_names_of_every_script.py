"""names of every script: recompute the residents' normalised names

Names used to normalise to ASCII letters and digits only, so a resident named in Arabic,
Chinese, Cyrillic, Greek… had an empty normalised name. Matching now keeps the letters of
every script (``shared.identity.normalise_name``); recompute the stored forms so that the
next referral for such a resident finds them. ASCII names, and Latin names whose letters
decompose, normalise as before and are not touched.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.identity import normalise_name

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RESIDENTS = sa.table(
    "residents",
    sa.column("id"),
    sa.column("given_name"),
    sa.column("family_name"),
    sa.column("norm_given"),
    sa.column("norm_family"),
)


def upgrade() -> None:
    connection = op.get_bind()
    not_ascii = "[^\\x01-\\x7f]"
    rows = connection.execute(
        sa.select(_RESIDENTS).where(
            _RESIDENTS.c.given_name.op("~")(not_ascii) | _RESIDENTS.c.family_name.op("~")(not_ascii)
        )
    ).mappings()
    for row in list(rows):
        given, family = normalise_name(row["given_name"]), normalise_name(row["family_name"])
        if (given, family) != (row["norm_given"], row["norm_family"]):
            connection.execute(
                sa.update(_RESIDENTS)
                .where(_RESIDENTS.c.id == row["id"])
                .values(norm_given=given, norm_family=family)
            )


def downgrade() -> None:
    """Nothing to undo: the earlier form is not needed to read the table."""
