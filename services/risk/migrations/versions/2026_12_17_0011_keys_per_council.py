"""resident keys name the council: the keys and fingerprints stored become their council's

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-17

A resident key used to be the keyed hash of the identifiers alone, so the same person sent
by two councils reached one profile: one council's signals then decided (and explained)
another council's flags, and one council's erasure or subject access reached what the
other held. Keys now name the council (``shared.identity.council_key``: the keyed hash of
the council and the identifiers' key), so each council's residents are its own.

This migration gives every stored key its council's key (the council of its profile) and
every signal the fingerprint it would have now (a fingerprint is made from the resident's
strongest key, so a file sent again is still recognised), a few thousand profiles at a
time, in the migration's one transaction. It needs the deployment's
``UPSTREAM_RESIDENT_KEY_SECRET``, as the service does. Where two councils' feeds had
already reached one profile, it stays one, its council's (which council sent a stored
signal was never recorded); from now on each council's rows reach its own.

What cannot be given its council's key, a keyed hash having no inverse: the tombstones of
resident keys erased before (an erasure's case ids still refuse what names them), and the
referrals service's reporting references made from keys (a resident referred both before
and after counts as two there): docs/operations.md, Upgrade.

Not reversible: the identifiers' keys are not kept (a keyed hash cannot be undone).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pydantic import SecretStr

from services.risk.domain.signals import stored_fingerprint
from shared.identity import council_key

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if not bind.execute(sa.text("SELECT EXISTS (SELECT FROM profile_keys)")).scalar():
        return  # nothing keyed yet (a new deployment): no secret needed
    from services.risk.settings import RiskSettings

    # The service's own settings, as its processes read them (the secret from the
    # environment), for the database being migrated.
    url = bind.engine.url.render_as_string(hide_password=False)
    secret = RiskSettings(database_url=SecretStr(url)).resident_key_secret.get_secret_value()
    op.execute("CREATE TEMPORARY TABLE rekeyed (old text PRIMARY KEY, new text NOT NULL)")
    op.execute("CREATE TEMPORARY TABLE refingerprinted (id uuid PRIMARY KEY, new text NOT NULL)")
    after = "00000000-0000-0000-0000-000000000000"
    while profiles := bind.execute(_PROFILES_AFTER, {"after": after}).all():
        council_of: dict[str, str] = {profile_id: council for profile_id, council in profiles}
        ids = list(council_of)
        keys_of: dict[str, list[str]] = {}
        rekeyed = []
        for key, profile_id in bind.execute(_KEYS_OF, {"ids": ids}):
            keys_of.setdefault(profile_id, []).append(key)
            rekeyed.append({"a": key, "b": council_key(secret, council_of[profile_id], key)})
        refingerprinted = []
        for signal in bind.execute(_SIGNALS_OF, {"ids": ids}).mappings():
            profile_id = signal["profile_id"]
            # The key it was made from: the resident's strongest when it was stored.
            made_from = [
                k
                for k in keys_of.get(profile_id, ())
                if stored_fingerprint(k, signal) == signal["fingerprint"]
            ]
            if made_from:  # (else not made from a key it holds: left as it is)
                key = council_key(secret, council_of[profile_id], made_from[0])
                refingerprinted.append({"a": signal["id"], "b": stored_fingerprint(key, signal)})
        if rekeyed:
            bind.execute(sa.text("INSERT INTO rekeyed VALUES (:a, :b)"), rekeyed)
        if refingerprinted:
            bind.execute(
                sa.text("INSERT INTO refingerprinted VALUES (CAST(:a AS uuid), :b)"),
                refingerprinted,
            )
        after = ids[-1]
    op.execute("UPDATE profile_keys k SET key = r.new FROM rekeyed r WHERE k.key = r.old")
    op.execute("UPDATE signals s SET fingerprint = f.new FROM refingerprinted f WHERE s.id = f.id")
    op.execute("DROP TABLE rekeyed")
    op.execute("DROP TABLE refingerprinted")


# A batch of profiles at a time (their keys and signals in memory, not a million of each).
_PROFILES_AFTER = sa.text(
    "SELECT id::text, council FROM profiles WHERE id > CAST(:after AS uuid) ORDER BY id LIMIT 5000"
)
_KEYS_OF = sa.text(
    "SELECT key, profile_id::text FROM profile_keys WHERE profile_id = ANY(CAST(:ids AS uuid[]))"
)
_SIGNALS_OF = sa.text(
    "SELECT id::text, profile_id::text, type, source, observed_on, attributes, fingerprint "
    "FROM signals WHERE profile_id = ANY(CAST(:ids AS uuid[]))"
)


def downgrade() -> None:
    raise NotImplementedError("resident keys cannot be made without their council again")
