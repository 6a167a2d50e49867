"""What the risk service holds about a resident, for a subject access request
(``service_layer/subject_access.py``): the profiles the resident's keys and cases reach, and
each profile's keys, signals, cases, assessments, outcomes and handled signals."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters.tables import (
    assessments,
    audit_log,
    cases,
    handled_signals,
    outcomes,
    profile_keys,
    profiles,
    signals,
)
from shared.db import fetch_all
from shared.events.payloads import AccessRead
from shared.subject_access import reads_about


async def profile_ids(
    session: AsyncSession, council: str, keys: Sequence[str], case_ids: Sequence[str]
) -> list[str]:
    """The council's profiles one of the keys, or one of the cases, reaches."""
    by_key = (
        select(profiles.c.id)
        .join(profile_keys, profile_keys.c.profile_id == profiles.c.id)
        .where(profile_keys.c.key.in_(keys), profiles.c.council == council)
    )
    # (The profile's council too: a case is only ever on its own council's profile, since
    # migration 0011, and a subject access is one council's.)
    by_case = (
        select(profiles.c.id)
        .join(cases, cases.c.profile_id == profiles.c.id)
        .where(cases.c.case_id.in_(case_ids), cases.c.council == council)
        .where(profiles.c.council == council)
    )
    rows = await fetch_all(session, by_key.union(by_case))
    return sorted({str(row["id"]) for row in rows})


async def held(
    session: AsyncSession, council: str, profile_ids: Sequence[str], case_ids: Sequence[str]
) -> dict[str, Sequence[RowMapping]]:
    """By kind, every record about these profiles and the council's cases named."""
    return {
        "profiles": await fetch_all(
            session, select(profiles).where(profiles.c.id.in_(profile_ids)).order_by(profiles.c.id)
        ),
        "keys": await fetch_all(
            session,
            select(profile_keys)
            .where(profile_keys.c.profile_id.in_(profile_ids))
            .order_by(profile_keys.c.key),
        ),
        "signals": await fetch_all(
            session,
            select(signals)
            .where(signals.c.profile_id.in_(profile_ids))
            .order_by(signals.c.observed_on, signals.c.id),
        ),
        "cases": await fetch_all(
            session,
            select(cases)
            .where(
                or_(
                    cases.c.profile_id.in_(profile_ids),
                    (cases.c.case_id.in_(case_ids)) & (cases.c.council == council),
                )
            )
            .order_by(cases.c.case_id),
        ),
        "assessments": await fetch_all(
            session,
            select(assessments)
            .where(
                or_(
                    assessments.c.profile_id.in_(profile_ids),
                    assessments.c.case_id.in_(case_ids),
                )
            )
            .order_by(assessments.c.created_at, assessments.c.id),
        ),
        "outcomes": await fetch_all(
            session,
            select(outcomes)
            .where(outcomes.c.profile_id.in_(profile_ids))
            .order_by(outcomes.c.recorded_at, outcomes.c.id),
        ),
        "handled_signals": await fetch_all(
            session,
            select(handled_signals)
            .where(handled_signals.c.profile_id.in_(profile_ids))
            .order_by(handled_signals.c.handled_at, handled_signals.c.signal_id),
        ),
    }


async def reads(
    session: AsyncSession, profile_ids: Sequence[str], case_ids: Sequence[str]
) -> list[AccessRead]:
    return await reads_about(session, audit_log, resident_ids=profile_ids, case_ids=case_ids)
