"""Assessments as recorded: of a case (with its referral) or of a resident (flagged or not)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, null, select, true
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.adapters.tables import assessments, cases, profile_keys, profiles
from services.risk.domain.flags import LastFlag
from shared.db import driver, fetch_one
from shared.vocabulary import RiskLevel


@dataclass(frozen=True)
class NewAssessment:
    id: str
    profile_id: str | None  # None: a case whose resident has no key
    case_id: str | None
    level: str
    score: int
    reasons: list[dict[str, Any]]
    suggested_needs: list[str]
    ruleset_version: str
    flagged: bool
    created_at: datetime
    # A flag after help arrived: the signals' standing, returning or not, the last help.
    signals: list[dict[str, Any]] | None = None
    returning_resident: bool = False
    helped_at: datetime | None = None


@dataclass(frozen=True)
class StoredAssessment:
    level: RiskLevel
    score: int
    created_at: datetime
    ruleset_version: str
    reasons: list[dict[str, Any]]  # rule_id, explanation
    suggested_needs: list[str]
    signals: list[dict[str, Any]] | None = None  # type, observed_on, standing
    returning_resident: bool = False
    helped_at: datetime | None = None


async def record(session: AsyncSession, assessment: NewAssessment) -> None:
    values = asdict(assessment)
    if values["signals"] is None:
        values["signals"] = null()  # SQL NULL, not JSON null
    await session.execute(assessments.insert().values(**values))


_COLUMNS = tuple(NewAssessment.__dataclass_fields__)


async def record_all(session: AsyncSession, batch: Sequence[NewAssessment]) -> None:
    """Many assessments (a feed's flags) in one ``COPY``."""
    if not batch:
        return
    db = await driver(session)
    await db.copy_records_to_table(
        "assessments",
        columns=_COLUMNS,
        records=[
            (
                a.id,
                a.profile_id,
                a.case_id,
                a.level,
                a.score,
                json.dumps(a.reasons),
                json.dumps(a.suggested_needs),
                a.ruleset_version,
                a.flagged,
                a.created_at,
                None if a.signals is None else json.dumps(a.signals),
                a.returning_resident,
                a.helped_at,
            )
            for a in batch
        ],
    )


async def last_flags(session: AsyncSession, profile_ids: Sequence[str]) -> dict[str, LastFlag]:
    """The latest flag of each of these profiles that was ever flagged (in one query, the
    profiles as one array)."""
    db = await driver(session)
    rows = await db.fetch(
        "SELECT DISTINCT ON (profile_id) profile_id::text, level, created_at FROM assessments "
        "WHERE profile_id = ANY($1::uuid[]) AND flagged "
        "ORDER BY profile_id, created_at DESC",
        list(profile_ids),
    )
    return {profile_id: LastFlag(RiskLevel(level), at) for profile_id, level, at in rows}


def _in_council(council: str | None, column: ColumnElement[str]) -> ColumnElement[bool]:
    return true() if council is None else (column == council)


def _stored(row: RowMapping | None) -> StoredAssessment | None:
    if row is None:
        return None
    return StoredAssessment(
        level=RiskLevel(row["level"]),
        score=row["score"],
        created_at=row["created_at"],
        ruleset_version=row["ruleset_version"],
        reasons=row["reasons"],
        suggested_needs=row["suggested_needs"],
        signals=row["signals"],
        returning_resident=row["returning_resident"],
        helped_at=row["helped_at"],
    )


async def latest_of_case(
    session: AsyncSession, case_id: str, *, council: str | None
) -> StoredAssessment | None:
    """The case's latest assessment, if the case is the council's (any council: None)."""
    return _stored(
        await fetch_one(
            session,
            select(assessments)
            .join(cases, cases.c.case_id == assessments.c.case_id)
            .where(assessments.c.case_id == case_id, _in_council(council, cases.c.council))
            .order_by(assessments.c.created_at.desc())
            .limit(1),
        )
    )


async def latest_of_resident(
    session: AsyncSession, resident_key: str, *, council: str | None
) -> StoredAssessment | None:
    """The latest assessment of the resident a key belongs to, if the council's (any: None)."""
    return _stored(
        await fetch_one(
            session,
            select(assessments)
            .join(profile_keys, profile_keys.c.profile_id == assessments.c.profile_id)
            .join(profiles, profiles.c.id == assessments.c.profile_id)
            .where(profile_keys.c.key == resident_key, _in_council(council, profiles.c.council))
            .order_by(assessments.c.created_at.desc())
            .limit(1),
        )
    )
