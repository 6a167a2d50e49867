"""Possible duplicate residents: a caseworker confirms (merge) or rejects; never silent."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Literal

from fastapi import APIRouter, status

from services.referrals.api.deps import CaseworkerOrOperator, ReferralsWork
from services.referrals.api.schemas import MergeIn, PossibleDuplicate
from services.referrals.service_layer import residents

router = APIRouter(prefix="/v1", tags=["residents"])


def _duplicate(found: residents.PossibleDuplicate) -> PossibleDuplicate:
    return PossibleDuplicate(**asdict(found))


@router.get(
    "/duplicates",
    response_model=list[PossibleDuplicate],
    summary="Possible duplicate residents to review",
)
async def list_duplicates(
    principal: CaseworkerOrOperator,
    uow: ReferralsWork,
    state: Literal["open", "confirmed", "rejected"] = "open",
) -> list[PossibleDuplicate]:
    return [_duplicate(d) for d in await residents.possible_duplicates(uow, principal, state)]


@router.post(
    "/duplicates/{duplicate_id}/confirm",
    response_model=PossibleDuplicate,
    summary="The same person: merge the newer record into the one known first",
)
async def confirm_duplicate(
    duplicate_id: uuid.UUID, principal: CaseworkerOrOperator, uow: ReferralsWork
) -> PossibleDuplicate:
    return _duplicate(
        await residents.decide_duplicate(uow, principal, str(duplicate_id), "confirmed")
    )


@router.post(
    "/duplicates/{duplicate_id}/reject",
    response_model=PossibleDuplicate,
    summary="Different people: keep both records",
)
async def reject_duplicate(
    duplicate_id: uuid.UUID, principal: CaseworkerOrOperator, uow: ReferralsWork
) -> PossibleDuplicate:
    return _duplicate(
        await residents.decide_duplicate(uow, principal, str(duplicate_id), "rejected")
    )


@router.post(
    "/residents/{resident_id}/merge",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Merge this resident's record into another's",
)
async def merge(
    resident_id: uuid.UUID, body: MergeIn, principal: CaseworkerOrOperator, uow: ReferralsWork
) -> None:
    await residents.merge_resident(uow, principal, str(resident_id), str(body.into))
