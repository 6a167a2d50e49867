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
time, in the migration's one transaction. A case of another council found on a profile (its
resident reached it through the other council's keys) moves, with its assessments and
outcomes, to a profile of its own council. Signals stay on the profile they are on: which
council sent one was never recorded. It needs the deployment's
``UPSTREAM_RESIDENT_KEY_SECRET``, as the service does (the built-in development value only
with ``UPSTREAM_ENVIRONMENT`` set).

It records when keys began to name the council (``council_keys_since``): the tombstones of
resident keys erased before then are of the identifiers' keys, which an import then also
checks its rows against (``reading.Keying``). Outbox rows keyed by an old key are deleted,
and a moved case's outcomes' marks on the other council's signals. The referrals service's
reporting references made from keys before then stay as they were: docs/operations.md,
Upgrade.

Not reversible: the identifiers' keys are not kept (a keyed hash cannot be undone).
"""

from __future__ import annotations

import logging
import os
import uuid

import sqlalchemy as sa
from alembic import op
from pydantic import SecretStr

from services.risk.domain.signals import stored_fingerprint
from shared.identity import council_key
from shared.settings import DEVELOPMENT_RESIDENT_KEY_SECRET

log = logging.getLogger("alembic.runtime.migration")

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "council_keys_since", sa.Column("at", sa.DateTime(timezone=True), nullable=False)
    )
    op.execute("INSERT INTO council_keys_since (at) VALUES (now())")
    bind = op.get_bind()
    if not bind.execute(sa.text("SELECT EXISTS (SELECT FROM profile_keys)")).scalar():
        return  # nothing keyed yet (a new deployment): no secret needed
    secret = _secret(bind)
    op.execute("CREATE TEMPORARY TABLE rekeyed (old text PRIMARY KEY, new text NOT NULL)")
    op.execute("CREATE TEMPORARY TABLE refingerprinted (id uuid PRIMARY KEY, new text NOT NULL)")
    after = "00000000-0000-0000-0000-000000000000"
    elsewhere: list[tuple[str, str, str, list[str]]] = []
    counted = {"keys": 0, "signals": 0, "signals left as they were": 0}
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
            if made_from:
                key = council_key(secret, council_of[profile_id], made_from[0])
                refingerprinted.append({"a": signal["id"], "b": stored_fingerprint(key, signal)})
            else:  # not made from a key it holds: left as it is (sent again, stored again)
                counted["signals left as they were"] += 1
        counted["keys"] += len(rekeyed)
        counted["signals"] += len(refingerprinted)
        if rekeyed:
            bind.execute(sa.text("INSERT INTO rekeyed VALUES (:a, :b)"), rekeyed)
        if refingerprinted:
            bind.execute(
                sa.text("INSERT INTO refingerprinted VALUES (CAST(:a AS uuid), :b)"),
                refingerprinted,
            )
        elsewhere += _cases_of_other_councils(bind, secret, council_of, keys_of)
        after = ids[-1]
    op.execute("ANALYZE rekeyed")
    op.execute("ANALYZE refingerprinted")
    # Events keyed by the old keys (flags, kept after publishing for a replay) would be sent
    # again under keys no profile has, and an erasure, knowing only the council's keys,
    # would not reach them: they go (drain the outbox first: docs/operations.md, Upgrade).
    op.execute("DELETE FROM outbox WHERE message_key IN (SELECT old FROM rekeyed)")
    op.execute("UPDATE profile_keys k SET key = r.new FROM rekeyed r WHERE k.key = r.old")
    op.execute("UPDATE signals s SET fingerprint = f.new FROM refingerprinted f WHERE s.id = f.id")
    op.execute("DROP TABLE rekeyed")
    op.execute("DROP TABLE refingerprinted")
    # After the pass over the profiles, which would otherwise meet the new ones.
    _move_to_their_councils(bind, elsewhere)
    counted["cases moved to their council's profile"] = len(elsewhere)
    log.info("resident keys given their council's: %s", counted)


def _secret(bind: sa.Connection) -> str:
    """The deployment's secret, as the service reads it (its settings, from the environment).
    The built-in development value only where development is said explicitly: keys given
    the wrong council's key cannot be made right again."""
    from services.risk.settings import RiskSettings

    url = bind.engine.url.render_as_string(hide_password=False)
    secret = RiskSettings(database_url=SecretStr(url)).resident_key_secret.get_secret_value()
    if secret == DEVELOPMENT_RESIDENT_KEY_SECRET and "UPSTREAM_ENVIRONMENT" not in os.environ:
        raise RuntimeError(
            "migration 0011 gives the stored resident keys their council's: set "
            "UPSTREAM_RESIDENT_KEY_SECRET to the deployment's secret (or, for a development "
            "database, UPSTREAM_ENVIRONMENT=development)"
        )
    return secret


def _cases_of_other_councils(
    bind: sa.Connection,
    secret: str,
    council_of: dict[str, str],
    keys_of: dict[str, list[str]],
) -> list[tuple[str, str, str, list[str]]]:
    """The cases of another council on these profiles (their resident reached the profile by
    the keys another council's feed or referral had made): each with its profile, its
    council, and that council's keys of the same identifiers."""
    return [
        (
            case_id,
            profile_id,
            council,
            [council_key(secret, council, k) for k in keys_of.get(profile_id, ())],
        )
        for case_id, profile_id, council in bind.execute(_CASES_OF, {"ids": list(council_of)})
        if council != council_of[profile_id]
    ]


def _move_to_their_councils(
    bind: sa.Connection, cases: list[tuple[str, str, str, list[str]]]
) -> None:
    """Each case of another council moves, with its assessments and outcomes, to a profile of
    its own council (one for each profile and council), reached by that council's keys.
    The signals stay where they are: which council sent one was not kept; so do the marks
    its outcomes made on them as handled, which go (another council's help)."""
    made: dict[tuple[str, str], str] = {}
    for case_id, profile_id, council, keys in cases:
        target = made.get((profile_id, council))
        if target is None:
            target = made[(profile_id, council)] = str(uuid.uuid4())
            bind.execute(_NEW_PROFILE, {"id": target, "council": council})
            if keys:
                bind.execute(_NEW_KEY, [{"key": key, "profile": target} for key in keys])
        bind.execute(
            sa.text(
                "DELETE FROM handled_signals WHERE outcome_id IN "
                "(SELECT id FROM outcomes WHERE case_id = CAST(:case AS uuid))"
            ),
            {"case": case_id},
        )
        for table in ("cases", "assessments", "outcomes"):
            bind.execute(
                sa.text(
                    f"UPDATE {table} SET profile_id = CAST(:to AS uuid) "
                    "WHERE case_id = CAST(:case AS uuid)"
                ),
                {"to": target, "case": case_id},
            )


# A batch of profiles at a time (their keys and signals in memory, not a million of each).
_PROFILES_AFTER = sa.text(
    "SELECT id::text, council FROM profiles WHERE id > CAST(:after AS uuid) ORDER BY id LIMIT 5000"
)
_KEYS_OF = sa.text(
    "SELECT key, profile_id::text FROM profile_keys WHERE profile_id = ANY(CAST(:ids AS uuid[]))"
)
_CASES_OF = sa.text(
    "SELECT case_id::text, profile_id::text, council FROM cases "
    "WHERE profile_id = ANY(CAST(:ids AS uuid[]))"
)
_NEW_PROFILE = sa.text("INSERT INTO profiles (id, council) VALUES (CAST(:id AS uuid), :council)")
_NEW_KEY = sa.text(
    "INSERT INTO profile_keys (key, profile_id) VALUES (:key, CAST(:profile AS uuid))"
)
_SIGNALS_OF = sa.text(
    "SELECT id::text, profile_id::text, type, source, observed_on, attributes, fingerprint "
    "FROM signals WHERE profile_id = ANY(CAST(:ids AS uuid[]))"
)


def downgrade() -> None:
    raise NotImplementedError(
        "resident keys cannot be made without their council again: restore a backup"
    )
