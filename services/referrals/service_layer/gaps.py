"""Gaps in service: the partners service says a need of a council's residents cannot be met
(no partner could take it, or it waited too long for a place); the council's queue shows
the gap above its cases while any of its open cases has that need in the gap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.referrals.adapters import gaps as gaps_db
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared.auth import Principal


@dataclass(frozen=True)
class Gap:
    """A gap episode, as partners detected it: counts and areas, never a resident."""

    gap_id: str
    council: str
    need: str
    reason: str
    detail: str | None
    postcode_districts: tuple[str, ...]
    languages: tuple[str, ...]
    age_bands: tuple[str, ...]
    residents_waiting: int
    waiting_since: datetime
    longest_wait_hours: float
    detected_at: datetime


@dataclass(frozen=True)
class QueuedGap:
    """A gap in the council's queue, with how many of its open cases have the need in it."""

    gap: Gap
    cases: int


async def record_gap(uow: ReferralsUnitOfWork, gap: Gap) -> None:
    """Keep the gap (the newest detection of each episode) for the council's queue; a gap
    for a council this deployment does not serve is kept too: operators see every one."""
    async with uow.transaction() as session:
        await gaps_db.record(
            session,
            {
                "id": gap.gap_id,
                "council": gap.council,
                "need": gap.need,
                "reason": gap.reason,
                "detail": gap.detail,
                "postcode_districts": list(gap.postcode_districts),
                "languages": list(gap.languages),
                "age_bands": list(gap.age_bands),
                "residents_waiting": gap.residents_waiting,
                "waiting_since": gap.waiting_since,
                "longest_wait_hours": gap.longest_wait_hours,
                "detected_at": gap.detected_at,
            },
        )


async def gaps_in_queue(uow: ReferralsUnitOfWork, principal: Principal) -> list[QueuedGap]:
    """Inside the caller's transaction: the gaps the principal's queue shows, newest first."""
    rows = await gaps_db.open_gaps(uow.session, principal)
    return [
        QueuedGap(
            Gap(
                gap_id=row["id"],
                council=row["council"],
                need=row["need"],
                reason=row["reason"],
                detail=row["detail"],
                postcode_districts=tuple(row["postcode_districts"]),
                languages=tuple(row["languages"]),
                age_bands=tuple(row["age_bands"]),
                residents_waiting=row["residents_waiting"],
                waiting_since=row["waiting_since"],
                longest_wait_hours=row["longest_wait_hours"],
                detected_at=row["detected_at"],
            ),
            cases=int(row["cases"]),
        )
        for row in rows
    ]
