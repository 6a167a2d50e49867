"""Erasure (UK GDPR Article 17), the parts every service shares: the legal grounds, the
erased-identifier tombstones that stop a replayed event re-creating what was erased, the
guard every consumer's handlers run behind, deleting outbox rows that name the resident,
and the audit trail's one permitted change (docs/information-governance.md, Erasure).

Tombstones hold only a keyed hash (HMAC-SHA256 with the deployment's secret) of an erased
case id or resident key, never the identifier: a tombstone says "this was erased" to
someone who already holds the identifier, and nothing to anyone else.

The audit trail stays append-only (``shared/audit.py``): its trigger lets through exactly
two migration-owned functions (SECURITY DEFINER), ``audit_log_erase`` (replaces an erased
resident's ids in ``resident_ids`` and ``case_ids`` by their tombstone hash, every other
column unchanged: the fact of each read is kept) and ``audit_log_sweep`` (deletes rows
older than the retention cutoff). Each sets a transaction-local setting the trigger checks
(``upstream.audit_erasure``; ``upstream.audit_retention_before``, the cutoff) and clears it
before returning. The trigger checks the change itself too: on the erasure path, only
those two columns change, neither loses an entry, and every new entry is a 64-hex hash; on
the retention path, only rows older than the cutoff go. A session can set those settings
itself: full protection is a separate owner role for the trail (a deployment step,
docs/information-governance.md). Frozen like the audit migrations: a later change gets
``…_v2``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

import asyncpg
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    Table,
    Text,
    delete,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import driver, rows_affected
from shared.events.catalogue import CATALOGUE
from shared.events.envelope import CloudEvent
from shared.messaging.handlers import EventHandlers, WritesItsInboxRow
from shared.messaging.tables import inbox, outbox
from shared.unit_of_work import UnitOfWorkT

log = logging.getLogger(__name__)

TOMBSTONE_TABLE = "erased_identifiers"
REFERRALS, PARTNERS, RISK = "referrals", "partners", "risk"
SERVICES = (REFERRALS, PARTNERS, RISK)


class ErasureGround(StrEnum):
    """The grounds of UK GDPR Article 17(1) on which a resident's data is erased."""

    NO_LONGER_NECESSARY = "no_longer_necessary"  # 17(1)(a)
    CONSENT_WITHDRAWN = "consent_withdrawn"  # 17(1)(b): consent was the basis, none other
    OBJECTION = "objection"  # 17(1)(c): objected under Article 21, no overriding grounds
    UNLAWFUL_PROCESSING = "unlawful_processing"  # 17(1)(d)
    LEGAL_OBLIGATION = "legal_obligation"  # 17(1)(e): erasure required by law
    CHILD_ONLINE_SERVICE = "child_online_service"  # 17(1)(f): Article 8(1) services


def tombstone(secret: str, identifier: str) -> str:
    """The keyed hash an erased identifier is remembered by (never the identifier)."""
    return hmac.new(secret.encode(), f"erased|{identifier}".encode(), hashlib.sha256).hexdigest()


def tombstone_table(metadata: MetaData) -> Table:
    return Table(
        TOMBSTONE_TABLE,
        metadata,
        Column("hash", Text, primary_key=True),  # tombstone(secret, case id or resident key)
        Column("erased_at", DateTime(timezone=True), nullable=False),
    )


_tombstones = tombstone_table(MetaData())


async def record_tombstones(
    session: AsyncSession, secret: str, identifiers: Iterable[str], *, at: datetime
) -> int:
    """Remember ``identifiers`` as erased at ``at`` (the erasure's time; erased again
    later: the later time)."""
    values = [{"hash": tombstone(secret, i), "erased_at": at} for i in dict.fromkeys(identifiers)]
    if not values:
        return 0
    statement = pg_insert(_tombstones).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=[_tombstones.c.hash],
        set_={"erased_at": func.greatest(_tombstones.c.erased_at, statement.excluded.erased_at)},
    )
    return await rows_affected(session, statement)


async def erased_once_locked(
    session: AsyncSession,
    secret: str,
    identifiers: Iterable[str],
    *,
    keys: Iterable[str] = (),
    written_at: datetime | None = None,
) -> bool:
    """Whether any of ``identifiers`` was erased, whenever (case ids are never reused), or
    any of the resident ``keys`` was erased at or after ``written_at`` (if given: what was
    written later is about a person referred again); first taking the advisory locks of
    them all (as ``lock_identifiers`` does: held until the transaction ends), so an erasure on
    another worker waits for the caller, and the caller sees an erasure it waited for. One
    round trip: ``erased_once_locked`` (``create_erasure_guard_v1``)."""
    locks, ids, key_hashes = _guard_arguments(secret, identifiers, keys)
    if not locks:
        return False
    connection = await driver(session)
    return bool(await connection.fetchval(_ERASED_ONCE_LOCKED, locks, ids, key_hashes, written_at))


def _guard_arguments(
    secret: str, identifiers: Iterable[str], keys: Iterable[str]
) -> tuple[list[int], list[str], list[str]]:
    """The guard's locks (in the one order), the tombstone hashes of the case ids (erased
    whenever) and of the resident keys (erased since the event was written)."""
    keys = dict.fromkeys(keys)
    ids = [tombstone(secret, i) for i in dict.fromkeys(identifiers) if i not in keys]
    key_hashes = [tombstone(secret, k) for k in keys]
    return _lock_order([*ids, *key_hashes]), ids, key_hashes


# Asked for every event a consumer applies: asyncpg's own, its statement prepared once.
_ERASED_ONCE_LOCKED = "SELECT erased_once_locked($1::bigint[], $2::text[], $3::text[], $4)"
_LOCK_IDENTIFIERS = "SELECT pg_advisory_xact_lock(key) FROM unnest($1::bigint[]) AS locks(key)"


def lock_key(hash_: str) -> int:
    return int.from_bytes(bytes.fromhex(hash_[:16]), "big", signed=True)


def _lock_order(hashes: Iterable[str]) -> list[int]:
    """The advisory locks of these tombstone hashes, in the one order every taker keeps."""
    return sorted({lock_key(h) for h in hashes})


async def lock_identifiers(session: AsyncSession, secret: str, identifiers: Iterable[str]) -> None:
    """Serialise an erasure and any event naming the same identifiers, on whichever worker:
    a transaction-scoped advisory lock on each identifier's tombstone hash, taken in sorted
    order (so two transactions locking overlapping sets queue rather than deadlock); held
    until the transaction ends. The guard takes them before it reads the tombstones
    (``erased_once_locked``, in the same order), an erasure before it reads what it will
    delete."""
    keys = _lock_order(tombstone(secret, i) for i in identifiers)
    if keys:  # one statement, taking them in that order
        await (await driver(session)).execute(_LOCK_IDENTIFIERS, keys)


def identifiers_in(payload: BaseModel) -> list[str]:
    """The case ids and resident keys an event names: every field called ``…case_id``,
    ``…case_ids``, ``…resident_key`` or ``…resident_keys`` (one rule for every event)."""
    found: list[str] = []
    for name in type(payload).model_fields:
        value = getattr(payload, name, None)
        if name.endswith(("case_id", "resident_key")) and isinstance(value, str):
            found.append(value)
        elif name.endswith(("case_ids", "resident_keys")) and isinstance(value, list):
            found.extend(v for v in value if isinstance(v, str))
    return found


def resident_keys_in(payload: BaseModel) -> list[str]:
    """The resident keys an event names (``…resident_key``, ``…resident_keys``): derived
    from a person's identity, so the same person referred again after an erasure has them
    again; unlike case ids (random, never reused)."""
    found: list[str] = []
    for name in type(payload).model_fields:
        value = getattr(payload, name, None)
        if name.endswith("resident_key") and isinstance(value, str):
            found.append(value)
        elif name.endswith("resident_keys") and isinstance(value, list):
            found.extend(v for v in value if isinstance(v, str))
    return found


def guarded(
    handlers: EventHandlers[UnitOfWorkT],
    secret_of: Callable[[UnitOfWorkT], str],
    *,
    exempt: Sequence[type[BaseModel]] = (),
) -> EventHandlers[UnitOfWorkT]:
    """The same handlers, each first checking the tombstones: an event naming an erased
    case (whenever written) or an erased resident key (written before the erasure: an old
    event replayed, or still in a topic) is applied as a no-op (its inbox row is written,
    nothing else), so nothing erased is re-created, while the same person referred again
    later is handled as anyone else. The check holds the identifiers' advisory locks
    (``lock_identifiers``), so an erasure on another worker waits for it. ``exempt``:
    the erasure events themselves (a replayed erasure only erases again)."""
    result = EventHandlers[UnitOfWorkT]()
    for payload, handler in handlers:
        if payload in exempt:
            result.on(payload)(handler)
            continue
        result.on(payload)(GuardedHandler(payload, handler, secret_of))
    return result


class GuardedHandler(WritesItsInboxRow):
    """A handler behind the guard (``guarded``). A consumer has it write the event's inbox
    row (``apply_once``): the row, the identifiers' locks and the look at the tombstones in
    one call (``claimed_unless_erased``), then the handler unless erased. Called as a plain
    handler (a test, a replay tool), it takes the locks and looks itself
    (``erased_once_locked``), then applies the event."""

    def __init__(
        self, payload: type[BaseModel], handler: Any, secret_of: Callable[[Any], str]
    ) -> None:
        self.payload = payload
        self.handler = handler
        self.secret_of = secret_of
        self.__name__ = getattr(handler, "__name__", "handler")
        self.__doc__ = handler.__doc__

    async def __call__(self, event: BaseModel, uow: Any) -> None:
        ids = identifiers_in(event)
        if ids and await _about_erased(event, ids, uow, self.secret_of(uow)):
            self._skipped()
            return
        await self.handler(event, uow)

    async def apply_once(
        self,
        connection: asyncpg.Connection,
        consumer: str,
        event: CloudEvent,
        payload: Any,
        uow: Any,
    ) -> bool:
        locks, ids, key_hashes = _guard_arguments(
            self.secret_of(uow), identifiers_in(payload), resident_keys_in(payload)
        )
        erased = await connection.fetchval(
            _CLAIMED_UNLESS_ERASED,
            consumer,
            event.id,
            event.type,
            locks,
            ids,
            key_hashes,
            event.time,
        )
        if erased is None:
            return False  # applied before
        if erased:
            self._skipped()
        else:
            await self.handler(payload, uow)
        return True

    def _skipped(self) -> None:
        log.info("event about an erased resident skipped", extra={"type": self.payload.__name__})


async def _about_erased(event: BaseModel, ids: list[str], uow: Any, secret: str) -> bool:
    """An erased case id refuses the event whenever it was written (case ids are never
    reused); an erased resident key only if the event was written (its CloudEvent time)
    before the erasure: a later event is about the same person referred again."""
    envelope = getattr(uow, "event", None)
    return await erased_once_locked(
        uow.session,
        secret,
        ids,
        keys=resident_keys_in(event),
        written_at=envelope.time if envelope is not None else None,
    )


# Asked for every guarded event a consumer applies, with its inbox row.
_CLAIMED_UNLESS_ERASED = (
    "SELECT claimed_unless_erased($1, $2, $3, $4::bigint[], $5::text[], $6::text[], $7)"
)


async def delete_outbox_rows_naming(session: AsyncSession, identifiers: Iterable[str]) -> int:
    """Delete every outbox row (published or not) whose event names one of ``identifiers``
    (case ids, resident ids, keys, offer ids…), so a replay of the outbox cannot send them
    again. Two statements:

    - the rows **keyed** by one of them (``message_key = ANY(…)``, on its index): every event
      about a case is keyed by the case id, a flag by the resident key;
    - the rows of the event types that can name one **inside an event keyed by something
      else** (every type but ``_KEYED_BY_WHAT_THEY_NAME``: a merge keyed by the surviving
      case, subject access and erasure keyed by their request, a gap by its episode, and any
      type not in the catalogue), matched on the envelope's text: the identifiers are UUIDs
      and 64-hex keys, which do not occur by chance. Only those types' rows are read whole;
      the others are passed over on their ``event_type``.

    The envelope search is a sequential scan of those types' rows (an index on every word of
    every envelope would cost each event written more than an erasure saves)."""
    ids = list(dict.fromkeys(i for i in identifiers if i))
    if not ids:
        return 0
    keyed = await rows_affected(
        session, delete(outbox).where(outbox.c.message_key == sa.any_(sa.cast(ids, ARRAY(Text))))
    )
    patterns = [f"%{i}%" for i in ids]
    keyed_by_what_they_name = sa.cast(list(_KEYED_BY_WHAT_THEY_NAME), ARRAY(Text))
    inside = await rows_affected(
        session,
        delete(outbox).where(
            outbox.c.event_type != sa.all_(keyed_by_what_they_name),
            sa.cast(outbox.c.envelope, Text).like(sa.any_(sa.cast(patterns, ARRAY(Text)))),
        ),
    )
    return keyed + inside


def _keyed_by_what_they_name() -> frozenset[str]:
    """The event types every service writes keyed by the one case (a ``case_id`` field) or
    resident key (a ``resident_key`` field) they are about. What one of them names is that
    case's or that key's: an erasure erases the case (or key) with everything it names, so
    its rows go with the first statement. Every other type is searched."""
    return frozenset(
        event_type.name
        for event_type in CATALOGUE.event_types
        if {"case_id", "resident_key"} & set(event_type.payload.model_fields)
    )


_KEYED_BY_WHAT_THEY_NAME = _keyed_by_what_they_name()


async def pseudonymise_audit(session: AsyncSession, secret: str, identifiers: Iterable[str]) -> int:
    """In the audit trail, each of ``identifiers`` becomes its tombstone hash (the reads
    stay, whose they were does not); the rows changed."""
    ids = list(dict.fromkeys(identifiers))
    if not ids:
        return 0
    hashes = [tombstone(secret, i) for i in ids]
    changed = await session.scalar(
        select(func.audit_log_erase(sa.cast(ids, sa.ARRAY(Text)), sa.cast(hashes, sa.ARRAY(Text))))
    )
    return int(changed or 0)


async def sweep_audit(session: AsyncSession, before: datetime, *, limit: int) -> int:
    """Delete up to ``limit`` audit rows older than ``before`` (retention)."""
    deleted = await session.scalar(select(func.audit_log_sweep(before, limit)))
    return int(deleted or 0)


# -- migrations ----------------------------------------------------------------------------


def create_erasure_v1() -> None:
    """The tombstone table; the audit trail's trigger, now letting through its two
    functions (and nothing else)."""
    from alembic import op

    op.create_table(
        TOMBSTONE_TABLE,
        sa.Column("hash", sa.Text(), primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute(
        """
        CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            -- Erasure: only resident_ids and case_ids change, each keeps its length, and
            -- every value not there before is a tombstone hash (64 hex characters).
            IF TG_OP = 'UPDATE'
               AND current_setting('upstream.audit_erasure', true) = 'on'
               AND to_jsonb(NEW) - 'resident_ids' - 'case_ids'
                   = to_jsonb(OLD) - 'resident_ids' - 'case_ids'
               AND jsonb_array_length(NEW.resident_ids) = jsonb_array_length(OLD.resident_ids)
               AND jsonb_array_length(NEW.case_ids) = jsonb_array_length(OLD.case_ids)
               AND NOT EXISTS (
                   SELECT 1 FROM jsonb_array_elements_text(NEW.resident_ids) AS e
                   WHERE NOT (OLD.resident_ids ? e OR e ~ '^[0-9a-f]{64}$'))
               AND NOT EXISTS (
                   SELECT 1 FROM jsonb_array_elements_text(NEW.case_ids) AS e
                   WHERE NOT (OLD.case_ids ? e OR e ~ '^[0-9a-f]{64}$')) THEN
                RETURN NEW;
            END IF;
            -- Retention: only rows older than the sweep's own cutoff.
            IF TG_OP = 'DELETE'
               AND OLD.at < NULLIF(
                   current_setting('upstream.audit_retention_before', true), '')::timestamptz
            THEN
                RETURN OLD;
            END IF;
            RAISE EXCEPTION 'the audit trail is append-only';
        END
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION audit_log_erase(ids text[], hashes text[]) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        DECLARE changed integer;
        BEGIN
            PERFORM set_config('upstream.audit_erasure', 'on', true);
            UPDATE audit_log SET
                resident_ids = COALESCE((
                    SELECT jsonb_agg(CASE WHEN e = ANY(ids)
                                     THEN hashes[array_position(ids, e)] ELSE e END)
                    FROM jsonb_array_elements_text(resident_ids) AS e), '[]'::jsonb),
                case_ids = COALESCE((
                    SELECT jsonb_agg(CASE WHEN e = ANY(ids)
                                     THEN hashes[array_position(ids, e)] ELSE e END)
                    FROM jsonb_array_elements_text(case_ids) AS e), '[]'::jsonb)
            WHERE resident_ids ?| ids OR case_ids ?| ids;
            GET DIAGNOSTICS changed = ROW_COUNT;
            PERFORM set_config('upstream.audit_erasure', 'off', true);
            RETURN changed;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION audit_log_sweep(before timestamptz, batch integer) RETURNS integer
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        DECLARE deleted integer;
        BEGIN
            PERFORM set_config('upstream.audit_retention_before', before::text, true);
            DELETE FROM audit_log WHERE id IN (
                SELECT id FROM audit_log WHERE at < before ORDER BY id LIMIT batch);
            GET DIAGNOSTICS deleted = ROW_COUNT;
            PERFORM set_config('upstream.audit_retention_before', '', true);
            RETURN deleted;
        END
        $$
        """
    )


def drop_erasure_v1() -> None:
    from alembic import op

    op.execute("DROP FUNCTION audit_log_sweep(timestamptz, integer)")
    op.execute("DROP FUNCTION audit_log_erase(text[], text[])")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the audit trail is append-only';
        END
        $$
        """
    )
    op.drop_table(TOMBSTONE_TABLE)


def create_erasure_guard_v1() -> None:
    """``erased_once_locked``: the guard's locks and its look at the tombstones in one
    round trip. PL/pgSQL, VOLATILE: each statement in it takes a fresh snapshot (READ
    COMMITTED), so the look, made after the locks, sees an erasure committed while they
    were awaited; one statement doing both would read the tombstones as of before."""
    from alembic import op

    op.execute(
        f"""
        CREATE FUNCTION erased_once_locked(
            locks bigint[], hashes text[], key_hashes text[], written_at timestamptz
        ) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
        DECLARE
            erased boolean;
        BEGIN
            PERFORM pg_advisory_xact_lock(key) FROM unnest(locks) AS taken(key);
            SELECT EXISTS (
                SELECT FROM {TOMBSTONE_TABLE}
                WHERE hash = ANY(hashes)
                   OR (hash = ANY(key_hashes)
                       AND (written_at IS NULL OR erased_at >= written_at))
            ) INTO erased;
            RETURN erased;
        END
        $$
        """
    )


def drop_erasure_guard_v1() -> None:
    from alembic import op

    op.execute("DROP FUNCTION erased_once_locked(bigint[], text[], text[], timestamptz)")


def create_inbox_claim_v1() -> None:
    """``claimed_unless_erased``: a guarded event's inbox row written, then, the first time
    only, the guard (``erased_once_locked``, with its own snapshots): NULL if the row was
    there already (a duplicate: nothing taken, nothing looked at), else whether the event
    is about something erased. One round trip for what was two. An event naming nothing
    takes no lock and looks at nothing."""
    from alembic import op

    op.execute(
        f"""
        CREATE FUNCTION claimed_unless_erased(
            consumer_ text, event_id_ text, event_type_ text,
            locks bigint[], hashes text[], key_hashes text[], written_at timestamptz
        ) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            INSERT INTO {inbox.name} (consumer, event_id, event_type)
            VALUES (consumer_, event_id_, event_type_)
            ON CONFLICT DO NOTHING;
            IF NOT FOUND THEN
                RETURN NULL;
            END IF;
            IF cardinality(locks) = 0 THEN
                RETURN false;
            END IF;
            RETURN erased_once_locked(locks, hashes, key_hashes, written_at);
        END
        $$
        """
    )


def drop_inbox_claim_v1() -> None:
    from alembic import op

    arguments = "text, text, text, bigint[], text[], text[], timestamptz"
    op.execute(f"DROP FUNCTION claimed_unless_erased({arguments})")
