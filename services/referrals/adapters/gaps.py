"""Gaps in service detected by the partners service, and the ones a council's queue shows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters import Row
from services.referrals.adapters.scope import cases_visible_to, gaps_visible_to
from services.referrals.adapters.tables import case_needs, cases, gaps
from services.referrals.domain.lifecycle import OPEN_STATUSES
from services.referrals.domain.needs import statuses_in_gap
from shared.auth import Principal
from shared.db import fetch_all


async def record(session: AsyncSession, values: dict[str, Any]) -> None:
    """The gap episode, or its newer detection (an older one, or the same again, changes
    nothing)."""
    statement = pg_insert(gaps).values(**values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[gaps.c.id],
            set_={k: statement.excluded[k] for k in values if k != "id"},
            where=gaps.c.detected_at < statement.excluded.detected_at,
        )
    )


def _in_gap() -> Any:
    """A need row of an open case that the gap holds (its reason decides which statuses)."""
    by_reason = or_(
        *(
            and_(
                gaps.c.reason == reason,
                case_needs.c.status.in_([s.value for s in statuses_in_gap(reason)]),
            )
            for reason in ("unroutable", "waiting_too_long")
        ),
        and_(
            gaps.c.reason.not_in(["unroutable", "waiting_too_long"]),
            case_needs.c.status.in_([s.value for s in statuses_in_gap("")]),
        ),
    )
    return and_(
        case_needs.c.case_id == cases.c.id,
        case_needs.c.need == gaps.c.need,
        cases.c.council == gaps.c.council,
        cases.c.status.in_([s.value for s in OPEN_STATUSES]),
        cases.c.needs.has_key(case_needs.c.need),
        by_reason,
    )


async def open_gaps(session: AsyncSession, principal: Principal) -> Sequence[Row]:
    """The latest gap of each council and need the principal may see, while any of the
    council's open cases has that need in the gap; with how many cases do."""
    latest = (
        select(gaps)
        .where(gaps_visible_to(principal))
        .ext(distinct_on(gaps.c.council, gaps.c.need))
        .order_by(gaps.c.council, gaps.c.need, gaps.c.detected_at.desc())
        .subquery()
    )
    held = (
        select(func.count(func.distinct(cases.c.id)))
        .select_from(cases.join(case_needs, case_needs.c.case_id == cases.c.id))
        .where(cases_visible_to(principal), _in_gap())
        .scalar_subquery()
    )
    shown = select(gaps, held.label("cases")).where(gaps.c.id.in_(select(latest.c.id))).subquery()
    return await fetch_all(
        session,
        select(shown).where(shown.c.cases > 0).order_by(shown.c.detected_at.desc(), shown.c.id),
    )
