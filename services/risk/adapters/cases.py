"""The cases the referrals service opened, as this service knows them: the profile (none for
a resident without a key), whether the case is open, and the referral's facts (no
identifiers)."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters.tables import cases
from services.risk.domain.rules import ReferralFacts
from shared.db import bound, bound_columns, driver, fetch_all, fetch_one


@dataclass(frozen=True)
class Case:
    case_id: str
    profile_id: str | None  # None: the resident has no key, so no signal can be matched
    council: str
    referral: ReferralFacts | None


async def upsert_open(
    session: AsyncSession,
    *,
    case_id: str,
    profile_id: str | None,
    council: str,
    referral: dict[str, Any] | None,
) -> None:
    """Record the case as open; a referral's facts replace any held, none keeps them. A case
    keeps its profile; one without (its resident had no key) takes the profile given."""
    values = {
        "case_id": case_id,
        "profile_id": profile_id,
        "council": council,
        "referral": referral,
    }
    await session.execute(_upsert_open(referral_given=referral is not None), bound(values))


@functools.cache
def _upsert_open(*, referral_given: bool) -> Any:
    """Built once (each referral runs one): with a referral's facts, or keeping those held."""
    columns = bound_columns(cases, ("case_id", "profile_id", "council", "referral"))
    statement = pg_insert(cases).values(**columns, open=True)
    update_set: dict[str, Any] = {
        "open": True,
        "profile_id": func.coalesce(cases.c.profile_id, statement.excluded.profile_id),
    }
    if referral_given:
        update_set["referral"] = statement.excluded.referral
    return statement.on_conflict_do_update(index_elements=[cases.c.case_id], set_=update_set)


async def close(session: AsyncSession, case_id: str) -> None:
    await session.execute(update(cases).where(cases.c.case_id == case_id).values(open=False))


async def get(session: AsyncSession, case_id: str) -> Case | None:
    row = await fetch_one(session, select(cases).where(cases.c.case_id == case_id))
    if row is None:
        return None
    return Case(
        row["case_id"], row["profile_id"], row["council"], ReferralFacts.from_json(row["referral"])
    )


async def open_cases_of(session: AsyncSession, profile_ids: Sequence[str]) -> dict[str, list[str]]:
    """The open cases of each of these profiles (in one query, the profiles as one array)."""
    found: dict[str, list[str]] = defaultdict(list)
    db = await driver(session)
    for profile_id, case_id in await db.fetch(
        "SELECT profile_id::text, case_id::text FROM cases "
        "WHERE profile_id = ANY($1::uuid[]) AND open",
        list(profile_ids),
    ):
        found[profile_id].append(case_id)
    return found


async def open_referrals(
    session: AsyncSession, council: str | None = None
) -> dict[str, ReferralFacts | None]:
    """The referral facts of each profile with an open case (of one council's, if given)."""
    query = select(cases.c.profile_id, cases.c.referral).where(
        cases.c.open, cases.c.profile_id.is_not(None)
    )
    if council is not None:
        query = query.where(cases.c.council == council)
    return {
        row["profile_id"]: ReferralFacts.from_json(row["referral"])
        for row in await fetch_all(session, query)
    }
