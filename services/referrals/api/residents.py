"""Possible duplicate residents: a caseworker confirms (merge) or rejects; never silent."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, status
from pydantic import BaseModel
from sqlalchemy import or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters.tables import (
    cases,
    possible_duplicates,
    referrals,
    residents,
)
from services.referrals.api.deps import CaseworkerOrOperator, actor, not_found, refused
from services.referrals.cases import Actor, add_timeline
from services.referrals.domain.lifecycle import OPEN_STATUSES
from shared.auth import OrganisationKind, Principal
from shared.events.envelope import utc_now
from shared.http import DbSession

router = APIRouter(prefix="/v1", tags=["residents"])


class PossibleDuplicate(BaseModel):
    id: str
    council: str
    resident_id: str
    resident_name: str
    candidate_id: str
    candidate_name: str
    reason: str
    status: str
    created_at: datetime


def _council_scope(principal: Principal, column):
    return (
        true()
        if principal.kind is OrganisationKind.OPERATOR
        else (column == principal.organisation)
    )


@router.get(
    "/duplicates",
    response_model=list[PossibleDuplicate],
    summary="Possible duplicate residents to review",
)
async def list_duplicates(
    principal: CaseworkerOrOperator,
    session: DbSession,
    state: Literal["open", "confirmed", "rejected"] = "open",
) -> list[PossibleDuplicate]:
    new, known = residents.alias("new"), residents.alias("known")
    rows = (
        (
            await session.execute(
                select(
                    possible_duplicates,
                    (new.c.given_name + " " + new.c.family_name).label("resident_name"),
                    (known.c.given_name + " " + known.c.family_name).label("candidate_name"),
                )
                .join(new, new.c.id == possible_duplicates.c.resident_id)
                .join(known, known.c.id == possible_duplicates.c.candidate_id)
                .where(
                    possible_duplicates.c.status == state,
                    _council_scope(principal, possible_duplicates.c.council),
                )
                .order_by(possible_duplicates.c.created_at)
            )
        )
        .mappings()
        .all()
    )
    return [PossibleDuplicate(**row) for row in rows]


async def merge_residents(
    session: AsyncSession, *, merged: str, into: str, who: Actor, now: datetime
) -> None:
    """``merged`` becomes part of ``into``: its cases and referrals move across, both
    timelines are kept, and the merged record stays, pointing at the survivor."""
    # A resident belongs to one council, so two open cases would break one-open-case-each.
    with_open_case = set(
        (
            await session.execute(
                select(cases.c.resident_id).where(
                    cases.c.resident_id.in_([merged, into]),
                    cases.c.status.in_([s.value for s in OPEN_STATUSES]),
                )
            )
        ).scalars()
    )
    if with_open_case == {merged, into}:
        raise refused("both residents have an open case: close or withdraw one of them first")
    moved = (
        (
            await session.execute(
                update(cases)
                .where(cases.c.resident_id == merged)
                .values(resident_id=into, updated_at=now)
                .returning(cases.c.id)
            )
        )
        .scalars()
        .all()
    )
    await session.execute(
        update(referrals).where(referrals.c.resident_id == merged).values(resident_id=into)
    )
    await session.execute(
        update(residents).where(residents.c.id == merged).values(merged_into=into, updated_at=now)
    )
    for case_id in moved:
        await add_timeline(
            session,
            case_id,
            who,
            "resident records merged",
            now=now,
            detail=f"resident {merged} merged into {into}",
        )


async def _decide(
    session: AsyncSession,
    principal: Principal,
    duplicate_id: uuid.UUID,
    decision: Literal["confirmed", "rejected"],
) -> PossibleDuplicate:
    async with session.begin():
        row = (
            (
                await session.execute(
                    select(possible_duplicates)
                    .where(
                        possible_duplicates.c.id == str(duplicate_id),
                        _council_scope(principal, possible_duplicates.c.council),
                    )
                    .with_for_update()
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise not_found("possible duplicate")
        if row["status"] != "open":
            raise refused(f"already {row['status']}")
        now = utc_now()
        if decision == "confirmed":
            # The resident known first survives; the newer record merges into it.
            await merge_residents(
                session,
                merged=row["resident_id"],
                into=row["candidate_id"],
                who=actor(principal),
                now=now,
            )
        await session.execute(
            update(possible_duplicates)
            .where(possible_duplicates.c.id == row["id"])
            .values(status=decision, decided_by=principal.subject, decided_at=now)
        )
    listed = await list_duplicates(principal, session, state=decision)
    return next(d for d in listed if d.id == row["id"])


@router.post(
    "/duplicates/{duplicate_id}/confirm",
    response_model=PossibleDuplicate,
    summary="The same person: merge the newer record into the one known first",
)
async def confirm_duplicate(
    duplicate_id: uuid.UUID, principal: CaseworkerOrOperator, session: DbSession
) -> PossibleDuplicate:
    return await _decide(session, principal, duplicate_id, "confirmed")


@router.post(
    "/duplicates/{duplicate_id}/reject",
    response_model=PossibleDuplicate,
    summary="Different people: keep both records",
)
async def reject_duplicate(
    duplicate_id: uuid.UUID, principal: CaseworkerOrOperator, session: DbSession
) -> PossibleDuplicate:
    return await _decide(session, principal, duplicate_id, "rejected")


class MergeIn(BaseModel):
    into: uuid.UUID


@router.post(
    "/residents/{resident_id}/merge",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Merge this resident's record into another's",
)
async def merge(
    resident_id: uuid.UUID, body: MergeIn, principal: CaseworkerOrOperator, session: DbSession
) -> None:
    async with session.begin():
        found = (
            await session.execute(
                select(residents.c.id, residents.c.council).where(
                    residents.c.id.in_([str(resident_id), str(body.into)]),
                    residents.c.merged_into.is_(None),
                    _council_scope(principal, residents.c.council),
                )
            )
        ).all()
        if len(found) != 2 or resident_id == body.into or found[0].council != found[1].council:
            raise not_found("two distinct residents of one council")
        await merge_residents(
            session,
            merged=str(resident_id),
            into=str(body.into),
            who=actor(principal),
            now=utc_now(),
        )
        # A recorded possible duplicate between them is settled by the merge.
        await session.execute(
            update(possible_duplicates)
            .where(
                possible_duplicates.c.status == "open",
                or_(
                    possible_duplicates.c.resident_id == str(resident_id),
                    possible_duplicates.c.candidate_id == str(resident_id),
                ),
            )
            .values(status="confirmed", decided_by=principal.subject, decided_at=utc_now())
        )
