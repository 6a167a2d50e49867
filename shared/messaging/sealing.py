"""Crypto-shredding: every event leaves its service sealed, and erasure forgets the keys.

Each Kafka key (the aggregate an event is about: a case, a resident key, a request) has a
data key of its own in the deployment's *keystore*. The relay seals an event as it publishes
it: its ``data``, ``subject``, ``partitionkey`` and trace ids become one AES-256-GCM
ciphertext, authenticated with every attribute left in the clear, and the record's Kafka key
becomes the data key's random id. A consumer opens it with that key. Erasure *forgets* the
keys of a resident's aggregates (``Keystore.forget``): every copy of their events, on every
topic, in a dead-letter topic, in a broker's backup, is then ciphertext no one can open, and
a replay brings nothing back (docs/information-governance.md, Erasure).

The keystore holds no identifier: a subject is looked up by its SHA-256 (subjects are random
UUIDs or keyed hashes, so the digest reveals nothing), and a forgotten key keeps only its id
and when it was forgotten, so a consumer can tell "erased" (skip it) from "not this
keystore's" (a misconfiguration: dead-lettered, never silently dropped). A subject seen again
after its keys were forgotten (a resident flagged again by a later feed) gets a new key.

The keystore is its own database (``UPSTREAM_KEYSTORE_URL``), shared by the services the way
the broker is: a data key is useless without the topics, the topics without the keys. In
production a council may put a KMS behind the same calls. Its schema (the keys, the
forgotten subjects, the forgettings carried out) is created on first use and frozen (a
change gets ``…_v2``). Making a subject's key and forgetting it take the same per-subject
lock, and a forgetting nulls every key made before it was carried out (by the keystore's
clock), so no key made meanwhile survives it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import text
from sqlalchemy.engine import make_url

from shared.db import DATABASE_UNREACHABLE, create_engine, plain_postgres_url

KEYSTORE_TABLE = "subject_keys"
FORGOTTEN_TABLE = "forgotten_subjects"
FORGETTINGS_TABLE = "forgettings"
_SUBJECT_LOCKS = 0x5EA2  # advisory lock namespace: one lock per subject digest
_SCHEMA_LOCK = 0x5EA1
_NONCE_BYTES = 12


class UnknownKey(LookupError):
    """An event sealed under a key this keystore never held: the wrong keystore, not an
    erasure."""


P = ParamSpec("P")
R = TypeVar("R")


class KeystoreUnavailable(Exception):
    """The keystore cannot be reached or used now (down, starting, refusing the role): the
    caller waits and tries again; nothing is lost."""


_OUT_OF_REACH = (
    *DATABASE_UNREACHABLE,
    # and a keystore the deployment has not (yet) given this service the right to reach
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidPasswordError,
    asyncpg.InsufficientPrivilegeError,
)


def _reaching(call: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """A keystore call whose trouble reaching its database is ``KeystoreUnavailable``."""

    @functools.wraps(call)
    async def reached(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await call(*args, **kwargs)
        except _OUT_OF_REACH as exc:
            raise KeystoreUnavailable(
                f"the keystore is out of reach: {exc.__class__.__name__}"
            ) from exc

    return reached


class Unsealable(ValueError):
    """A sealed event whose ciphertext does not open with its key (tampered, or corrupt)."""


@dataclass(frozen=True)
class SubjectKey:
    key_id: str
    data_key: bytes
    # When the subject's keys were last forgotten: an event of it written before then is
    # about the erased resident and is never sent (a new key is only for what came after).
    forgotten_at: datetime | None = None

    def seals(self, written_at: datetime) -> bool:
        """Whether an event written then goes out: not one written up to the forgetting
        (the erasure's own transaction writes none of hers)."""
        return self.forgotten_at is None or written_at > self.forgotten_at


def digest_of(subject: str) -> str:
    return hashlib.sha256(subject.encode()).hexdigest()


# What names the aggregate, says what happened, or could link a resident's story.
_SEALED_FIELDS = ("data", "subject", "partitionkey", "correlationid", "causationid")


def _aad(outer: dict[str, Any]) -> bytes:
    """Every attribute left in the clear authenticates the ciphertext: change one (its time,
    its classification, its key id) or move the ciphertext to another event, and it does
    not open."""
    attributes = {k: v for k, v in outer.items() if k != "data"}
    return json.dumps(attributes, sort_keys=True, separators=(",", ":")).encode()


def seal(envelope: dict[str, Any], key: SubjectKey) -> dict[str, Any]:
    """The envelope as it goes on the wire: what names the aggregate, what it says and its
    trace in one ciphertext; the rest (id, type, source, time, classification, key id) stays
    readable, so brokers, dead-letter tools and consumers not taking the type route it
    unopened, and authenticates the ciphertext."""
    inner = {field: envelope[field] for field in _SEALED_FIELDS if field in envelope}
    outer = {k: v for k, v in envelope.items() if k not in _SEALED_FIELDS}
    outer["partitionkey"] = key.key_id
    outer["sealedwith"] = key.key_id
    nonce = os.urandom(_NONCE_BYTES)
    ciphertext = AESGCM(key.data_key).encrypt(
        nonce, json.dumps(inner, separators=(",", ":")).encode(), _aad(outer)
    )
    outer["data"] = {"sealed": base64.b64encode(nonce + ciphertext).decode()}
    return outer


def unseal(envelope: dict[str, Any], data_key: bytes) -> dict[str, Any]:
    sealed = envelope.get("data", {}).get("sealed")
    if not isinstance(sealed, str):
        raise Unsealable("a sealed event's data has no 'sealed' ciphertext")
    try:
        blob = base64.b64decode(sealed, validate=True)
        plain = AESGCM(data_key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _aad(envelope))
    except (ValueError, InvalidTag) as exc:
        raise Unsealable("the sealed data does not open with its key") from exc
    inner = json.loads(plain)
    opened = {k: v for k, v in envelope.items() if k not in (*_SEALED_FIELDS, "sealedwith")}
    opened.update(inner)
    return opened


class Keystore:
    """The deployment's data keys, one per subject, in a PostgreSQL database of their own."""

    def __init__(self, url: str) -> None:
        self._url = url
        # Not pinged as they leave the pool (a BEGIN, a ping and a ROLLBACK: three round
        # trips before each read): a connection lost to a restart fails its statement once,
        # which every caller meets as ``KeystoreUnavailable`` and retries.
        self._engine = create_engine(url, pool_size=2, pre_ping=False)
        # Plain reads in autocommit: one round trip each, no BEGIN and ROLLBACK around it.
        self._reads = self._engine.execution_options(isolation_level="AUTOCOMMIT")
        self._ready = False

    async def close(self) -> None:
        await self._engine.dispose()

    async def _schema(self) -> None:
        if self._ready:
            return
        await ensure_keystore_database(self._url)
        async with self._engine.begin() as connection:
            await connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
            await connection.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {KEYSTORE_TABLE} ("
                    " key_id uuid PRIMARY KEY,"
                    " digest text,"  # SHA-256 of the subject; NULL once forgotten
                    " data_key bytea,"  # NULL once forgotten
                    " created_at timestamptz NOT NULL DEFAULT now(),"
                    " forgotten_at timestamptz,"
                    " CHECK ((digest IS NULL) = (data_key IS NULL)))"
                )
            )
            await connection.execute(
                text(
                    f"CREATE UNIQUE INDEX IF NOT EXISTS {KEYSTORE_TABLE}_current "
                    f"ON {KEYSTORE_TABLE} (digest) WHERE digest IS NOT NULL"
                )
            )
            # The subjects whose keys were forgotten, and when (the latest time): what stops
            # an event written before an erasure going out under a new key.
            await connection.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {FORGOTTEN_TABLE} ("
                    " digest text PRIMARY KEY, forgotten_at timestamptz NOT NULL)"
                )
            )
            # Each forgetting carried out, and when: a replay of it nulls nothing made since.
            await connection.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {FORGETTINGS_TABLE} ("
                    " id text PRIMARY KEY, done_at timestamptz NOT NULL)"
                )
            )
        self._ready = True

    @_reaching
    async def keys_for(self, subjects: Collection[str]) -> dict[str, SubjectKey]:
        """Each subject's current key, made now for a subject without one, with when its
        keys were last forgotten. Digests in one order, so relays making keys for the same
        new subjects at once never deadlock; a key forgotten between the two statements is
        made again on the next round."""
        await self._schema()
        wanted = {digest_of(subject): subject for subject in subjects}
        if not wanted:
            return {}
        # Keys made already are read without the subjects' locks: the lock orders making a
        # key against forgetting it, and these are made. (One forgotten just after this read
        # seals events that then open nowhere, as if sealed just before the forgetting.)
        async with self._reads.connect() as connection:
            found = await _current_keys(connection, wanted)
        for _ in range(3):
            digests = sorted(digest for digest in wanted if wanted[digest] not in found)
            if not digests:
                return found
            async with self._engine.begin() as connection:
                await _lock_subjects(connection, digests)
                await connection.execute(
                    text(
                        f"INSERT INTO {KEYSTORE_TABLE} (key_id, digest, data_key) "
                        "SELECT k, d, b FROM unnest(CAST(:ids AS uuid[]), "
                        "CAST(:digests AS text[]), CAST(:keys AS bytea[])) AS t(k, d, b) "
                        "ORDER BY d ON CONFLICT (digest) WHERE digest IS NOT NULL DO NOTHING"
                    ),
                    {
                        "ids": [str(uuid.uuid4()) for _ in digests],
                        "digests": digests,
                        "keys": [AESGCM.generate_key(bit_length=256) for _ in digests],
                    },
                )
                found |= await _current_keys(connection, {d: wanted[d] for d in digests})
        missing = [s for s in wanted.values() if s not in found]
        raise KeystoreUnavailable(f"no key made for {len(missing)} subjects: forgotten meanwhile")

    async def data_key(self, key_id: str) -> bytes | None:
        """The data key with this id; None once forgotten. ``UnknownKey`` if never held.
        Asked every time, never cached: a key forgotten a moment ago opens nothing more."""
        keys = await self.data_keys([key_id])
        if key_id not in keys:
            raise UnknownKey(f"sealed with key {key_id}, which this keystore never held")
        return keys[key_id]

    @_reaching
    async def data_keys(self, key_ids: Collection[str]) -> dict[str, bytes | None]:
        """The data keys with these ids, in one round trip: None for a forgotten one; an
        id the keystore never held (or that is no key id) is left out."""
        await self._schema()
        wanted = sorted({key_id for key_id in key_ids if _is_uuid(key_id)})
        if not wanted:
            return {}
        async with self._reads.connect() as connection:
            rows = await connection.execute(
                text(
                    f"SELECT key_id, data_key FROM {KEYSTORE_TABLE} "
                    "WHERE key_id = ANY(CAST(:ids AS uuid[]))"
                ),
                {"ids": wanted},
            )
            return {
                str(row.key_id): None if row.data_key is None else bytes(row.data_key)
                for row in rows
            }

    @_reaching
    async def forget(self, digests: Iterable[str], *, at: datetime, forgetting: str) -> int:
        """Forget, for good, the keys of the subjects with these digests (``digest_of``):
        every key made before this forgetting was first carried out (``forgetting`` names
        it: a replay is the same forgetting). ``at`` is when the erasure was written, by the
        writer's clock: its events written until then are never sent (``SubjectKey.seals``).
        Returns how many keys there were."""
        await self._schema()
        ordered = sorted(set(digests))
        if not ordered:
            return 0
        async with self._engine.begin() as connection:
            await _lock_subjects(connection, ordered)  # a key being made now is made first
            await connection.execute(
                text(
                    f"INSERT INTO {FORGETTINGS_TABLE} (id, done_at) "
                    "VALUES (:id, clock_timestamp()) ON CONFLICT (id) DO NOTHING"
                ),
                {"id": forgetting},
            )
            done_at = await connection.scalar(
                text(f"SELECT done_at FROM {FORGETTINGS_TABLE} WHERE id = :id"),
                {"id": forgetting},
            )
            await connection.execute(
                text(
                    f"INSERT INTO {FORGOTTEN_TABLE} (digest, forgotten_at) "
                    "SELECT d, :at FROM unnest(CAST(:digests AS text[])) AS d ORDER BY d "
                    "ON CONFLICT (digest) DO UPDATE SET forgotten_at = "
                    f"GREATEST({FORGOTTEN_TABLE}.forgotten_at, EXCLUDED.forgotten_at)"
                ),
                {"digests": ordered, "at": at},
            )
            forgotten = await connection.execute(
                text(
                    f"UPDATE {KEYSTORE_TABLE} SET digest = NULL, data_key = NULL, "
                    "forgotten_at = clock_timestamp() "
                    "WHERE digest = ANY(CAST(:digests AS text[])) AND created_at <= :done "
                    "RETURNING key_id"
                ),
                {"digests": ordered, "done": done_at},
            )
            return len(forgotten.all())


async def _current_keys(connection: Any, subjects: dict[str, str]) -> dict[str, SubjectKey]:
    """The current key of each subject that has one (``subjects``: by digest)."""
    rows = await connection.execute(
        text(
            f"SELECT k.digest, k.key_id, k.data_key, f.forgotten_at "
            f"FROM {KEYSTORE_TABLE} k LEFT JOIN {FORGOTTEN_TABLE} f "
            "ON f.digest = k.digest WHERE k.digest = ANY(CAST(:digests AS text[]))"
        ),
        {"digests": sorted(subjects)},
    )
    return {
        subjects[row.digest]: SubjectKey(str(row.key_id), bytes(row.data_key), row.forgotten_at)
        for row in rows
    }


async def _lock_subjects(connection: Any, digests: Sequence[str]) -> None:
    """The subjects' locks, in one order (``digests`` sorted): no two takers deadlock."""
    await connection.execute(
        text(
            "SELECT pg_advisory_xact_lock(:namespace, hashtext(d)) "
            "FROM unnest(CAST(:digests AS text[])) AS d ORDER BY d"
        ),
        {"namespace": _SUBJECT_LOCKS, "digests": list(digests)},
    )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def ensure_keystore_database(url: str) -> None:
    """Create the keystore's database if the server lacks it (development stacks and
    tests; a deployment creates it with its owner role, deploy/postgres-init)."""
    parsed = make_url(plain_postgres_url(url))
    try:
        connection = await asyncpg.connect(parsed.render_as_string(hide_password=False))
    except asyncpg.InvalidCatalogNameError:
        admin_url = parsed.set(database="postgres").render_as_string(hide_password=False)
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'CREATE DATABASE "{parsed.database}"')
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            pass  # another service made it meanwhile
        finally:
            await admin.close()
    else:
        await connection.close()


__all__ = [
    "KEYSTORE_TABLE",
    "Keystore",
    "KeystoreUnavailable",
    "SubjectKey",
    "UnknownKey",
    "Unsealable",
    "digest_of",
    "seal",
    "unseal",
]
