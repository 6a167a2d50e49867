"""Signals in, assessments and flags out, inside the caller's transaction.

Residents are profiles found through their keys (keyed hashes of normalised identifiers).
Identifiers are used to derive keys and, for a resident who is flagged, sealed into the
flag for the referrals service; they are never written to this service's tables.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters.tables import assessments, cases, profile_keys, profiles, signals
from services.risk.domain.feeds import Row
from services.risk.domain.rules import (
    ReferralFacts,
    Result,
    Ruleset,
    SignalFact,
    build_profile,
    jsonable_attributes,
)
from services.risk.domain.signals import SignalType
from shared.events.payloads import Reason, ResidentFlagged, RiskAssessed
from shared.identity import resident_keys, seal_identity
from shared.messaging.outbox import Outbox
from shared.vocabulary import RiskLevel


@dataclass
class BatchOutcome:
    stored: int = 0
    duplicate: int = 0
    flagged: int = 0
    cases_assessed: int = 0


async def lock_council(session: AsyncSession, council: str) -> None:
    """One writer of profiles per council at a time, so a new resident gets one profile."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"risk|{council}"))))


async def resolve_profiles(
    session: AsyncSession, council: str, key_sets: Sequence[Sequence[str]]
) -> list[str]:
    """The profile of each key set (strongest key first), created when none is known."""
    wanted = {key for keys in key_sets for key in keys}
    known = dict(
        (
            await session.execute(
                select(profile_keys.c.key, profile_keys.c.profile_id).where(
                    profile_keys.c.key.in_(wanted)
                )
            )
        ).all()
    )
    new_profiles: list[str] = []
    found: list[str] = []
    for keys in key_sets:
        profile = next((known[k] for k in keys if k in known), None)
        if profile is None:
            profile = str(uuid.uuid4())
            new_profiles.append(profile)
        for key in keys:
            known.setdefault(key, profile)
        found.append(profile)
    if new_profiles:
        await session.execute(
            insert(profiles), [{"id": p, "council": council} for p in new_profiles]
        )
    await session.execute(
        pg_insert(profile_keys)
        .values([{"key": k, "profile_id": known[k]} for k in wanted])
        .on_conflict_do_nothing()
    )
    return found


def keys_for(secret: str, row: Row) -> list[str]:
    person = row.signal.resident
    return resident_keys(
        secret,
        given_name=person.given_name,
        family_name=person.family_name,
        date_of_birth=person.date_of_birth,
        postcode=person.postcode,
        uprn=person.uprn,
    )


def _fingerprint(key: str, row: Row, attributes: dict[str, Any]) -> str:
    fact = [
        key,
        row.signal.type.value,
        row.signal.source,
        row.signal.observed_on.isoformat(),
        attributes,
    ]
    return hashlib.sha256(json.dumps(fact, sort_keys=True, default=str).encode()).hexdigest()


async def ingest(
    session: AsyncSession,
    outbox: Outbox,
    rows: Sequence[Row],
    *,
    secret: str,
    ruleset: Ruleset,
    cooling_off: timedelta,
    now: datetime,
) -> BatchOutcome:
    """Store a batch of valid rows of one council; assess whoever got a new signal."""
    outcome = BatchOutcome()
    if not rows:
        return outcome
    by_council: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_council[row.signal.council].append(row)
    for council, council_rows in by_council.items():
        await lock_council(session, council)
        key_sets = [keys_for(secret, row) for row in council_rows]
        profile_ids = await resolve_profiles(session, council, key_sets)
        values = []
        for row, keys, profile in zip(council_rows, key_sets, profile_ids, strict=True):
            attributes = jsonable_attributes(row.attributes)
            values.append(
                {
                    "id": str(uuid.uuid4()),
                    "profile_id": profile,
                    "type": row.signal.type.value,
                    "attributes": attributes,
                    "source": row.signal.source,
                    "observed_on": row.signal.observed_on,
                    "expires_on": row.expires_on,
                    "fingerprint": _fingerprint(keys[0], row, attributes),
                }
            )
        inserted = (
            (
                await session.execute(
                    pg_insert(signals)
                    .values(values)
                    .on_conflict_do_nothing()
                    .returning(signals.c.profile_id)
                )
            )
            .scalars()
            .all()
        )
        outcome.stored += len(inserted)
        outcome.duplicate += len(values) - len(inserted)
        # Who to flag is decided with the identity of their latest row in this batch; it is
        # held in memory only for this transaction.
        latest: dict[str, tuple[Row, str]] = {}
        for row, keys, profile in zip(council_rows, key_sets, profile_ids, strict=True):
            latest[profile] = (row, keys[0])
        affected = list(dict.fromkeys(inserted))
        if not affected:
            continue
        # What the rules need about everyone affected, read once for the batch.
        open_cases: dict[str, list[str]] = defaultdict(list)
        for profile, case_id in (
            await session.execute(
                select(cases.c.profile_id, cases.c.case_id).where(
                    cases.c.profile_id.in_(affected), cases.c.open
                )
            )
        ).all():
            open_cases[profile].append(case_id)
        facts = await facts_of(session, affected)
        last_flags = {
            r.profile_id: r
            for r in (
                await session.execute(
                    select(assessments.c.profile_id, assessments.c.level, assessments.c.created_at)
                    .where(assessments.c.profile_id.in_(affected), assessments.c.flagged)
                    .order_by(assessments.c.profile_id, assessments.c.created_at.desc())
                    .ext(distinct_on(assessments.c.profile_id))
                )
            ).all()
        }
        for profile in affected:
            if open_cases[profile]:
                for case_id in open_cases[profile]:
                    await assess_case(session, outbox, case_id, ruleset=ruleset, now=now)
                    outcome.cases_assessed += 1
                continue
            row, key = latest[profile]
            result = ruleset.evaluate(build_profile(facts[profile], None, today=now.date()))
            if _should_flag(result, last_flags.get(profile), ruleset, cooling_off, now):
                await _flag(
                    session,
                    outbox,
                    profile,
                    council,
                    row,
                    key,
                    result,
                    secret=secret,
                    ruleset=ruleset,
                    now=now,
                )
                outcome.flagged += 1
    return outcome


async def facts_of(
    session: AsyncSession, profile_ids: Sequence[str]
) -> dict[str, list[SignalFact]]:
    """Every stored signal of these profiles, in one query."""
    rows = (
        await session.execute(
            select(
                signals.c.profile_id,
                signals.c.type,
                signals.c.attributes,
                signals.c.observed_on,
                signals.c.expires_on,
            ).where(signals.c.profile_id.in_(profile_ids))
        )
    ).all()
    facts: dict[str, list[SignalFact]] = defaultdict(list)
    for r in rows:
        facts[r.profile_id].append(
            SignalFact(SignalType(r.type), r.attributes, r.observed_on, r.expires_on)
        )
    return facts


def _reasons(result: Result) -> list[Reason]:
    return [Reason(rule_id=f.rule_id, explanation=f.explanation) for f in result.fired]


async def _record(
    session: AsyncSession,
    profile_id: str,
    case_id: str | None,
    result: Result,
    ruleset: Ruleset,
    *,
    flagged: bool,
    now: datetime,
) -> None:
    await session.execute(
        insert(assessments).values(
            id=str(uuid.uuid4()),
            profile_id=profile_id,
            case_id=case_id,
            level=result.level.value,
            score=result.score,
            reasons=[r.model_dump() for r in _reasons(result)],
            suggested_needs=[n.value for n in result.suggested_needs],
            ruleset_version=ruleset.version,
            flagged=flagged,
            created_at=now,
        )
    )


async def assess_case(
    session: AsyncSession, outbox: Outbox, case_id: str, *, ruleset: Ruleset, now: datetime
) -> Result:
    case = (await session.execute(select(cases).where(cases.c.case_id == case_id))).mappings().one()
    result = ruleset.evaluate(
        build_profile(
            (await facts_of(session, [case["profile_id"]]))[case["profile_id"]],
            ReferralFacts.from_json(case["referral"]),
            today=now.date(),
        )
    )
    await _record(session, case["profile_id"], case_id, result, ruleset, flagged=False, now=now)
    await outbox.add(
        session,
        RiskAssessed(
            case_id=case_id,
            level=result.level,
            score=result.score,
            reasons=_reasons(result),
            suggested_needs=list(result.suggested_needs),
            ruleset_version=ruleset.version,
            assessed_at=now,
        ),
        subject=case_id,
    )
    return result


def _should_flag(
    result: Result, last_flag: Any, ruleset: Ruleset, cooling_off: timedelta, now: datetime
) -> bool:
    """At or above the flag level, unless already flagged at this level or higher lately."""
    if result.level.rank < ruleset.spec.flag_level.rank:
        return False
    return not (
        last_flag is not None
        and last_flag.created_at > now - cooling_off
        and RiskLevel(last_flag.level).rank >= result.level.rank
    )


async def _flag(
    session: AsyncSession,
    outbox: Outbox,
    profile_id: str,
    council: str,
    row: Row,
    key: str,
    result: Result,
    *,
    secret: str,
    ruleset: Ruleset,
    now: datetime,
) -> None:
    await _record(session, profile_id, None, result, ruleset, flagged=True, now=now)
    person = row.signal.resident
    await outbox.add(
        session,
        ResidentFlagged(
            resident_key=key,
            council=council,
            level=result.level,
            score=result.score,
            reasons=_reasons(result),
            suggested_needs=list(result.suggested_needs),
            ruleset_version=ruleset.version,
            sealed_identity=seal_identity(
                secret, person.model_dump(mode="json", exclude_none=True)
            ),
            flagged_at=now,
        ),
        subject=key,
    )


async def open_case(
    session: AsyncSession,
    *,
    case_id: str,
    council: str,
    keys: list[str],
    referral: dict[str, Any] | None,
) -> str:
    """Record a case the referrals service opened (or received a referral for)."""
    await lock_council(session, council)
    (profile_id,) = await resolve_profiles(session, council, [keys])
    statement = pg_insert(cases).values(
        case_id=case_id, profile_id=profile_id, council=council, open=True, referral=referral
    )
    update_set: dict[str, Any] = {"open": True}
    if referral is not None:
        update_set["referral"] = referral
    await session.execute(
        statement.on_conflict_do_update(index_elements=[cases.c.case_id], set_=update_set)
    )
    return profile_id


async def close_case(session: AsyncSession, case_id: str) -> None:
    await session.execute(update(cases).where(cases.c.case_id == case_id).values(open=False))


__all__ = ["BatchOutcome", "assess_case", "close_case", "ingest", "open_case"]
