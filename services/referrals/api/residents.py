"""Possible duplicate residents: a caseworker confirms (merge) or rejects; never silent. A
merge can be undone."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Literal

from fastapi import APIRouter, status

from services.referrals.api.deps import CaseworkerOrOperator, ReferralsWork
from services.referrals.api.schemas import Merge, MergeIn, PossibleDuplicate, UndoMergeIn
from services.referrals.service_layer import residents
from shared.audit import Category, personal_data

router = APIRouter(prefix="/v1", tags=["residents"])


def _duplicate(found: residents.PossibleDuplicate) -> PossibleDuplicate:
    return PossibleDuplicate(**asdict(found))


@router.get(
    "/duplicates",
    response_model=list[PossibleDuplicate],
    summary="Possible duplicate residents to review",
    openapi_extra=personal_data(Category.IDENTITY, Category.MATCHING, Category.NEEDS),
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
    openapi_extra=personal_data(Category.IDENTITY, Category.MATCHING, Category.NEEDS),
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
    openapi_extra=personal_data(Category.IDENTITY, Category.MATCHING, Category.NEEDS),
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
    openapi_extra=personal_data(),
)
async def merge(
    resident_id: uuid.UUID, body: MergeIn, principal: CaseworkerOrOperator, uow: ReferralsWork
) -> None:
    await residents.merge_resident(uow, principal, str(resident_id), str(body.into))


def _merge(found: residents.MergeRecord) -> Merge:
    return Merge(**asdict(found))


@router.get(
    "/merges",
    response_model=list[Merge],
    summary="Merges of resident records, newest first (of one resident, if named)",
    # Ids only, but which two residents were judged one person: matching evidence.
    openapi_extra=personal_data(Category.MATCHING),
)
async def list_merges(
    principal: CaseworkerOrOperator, uow: ReferralsWork, resident: uuid.UUID | None = None
) -> list[Merge]:
    found = await residents.merges(uow, principal, str(resident) if resident else None)
    return [_merge(m) for m in found]


@router.post(
    "/merges/{merge_id}/undo",
    response_model=Merge,
    summary="Two people after all: undo the merge, keeping both timelines",
    responses={409: {"description": "already undone, or no longer possible to undo exactly"}},
    openapi_extra=personal_data(Category.MATCHING),  # the merge it answers with, as above
)
async def undo_merge(
    merge_id: uuid.UUID, body: UndoMergeIn, principal: CaseworkerOrOperator, uow: ReferralsWork
) -> Merge:
    return _merge(await residents.undo_merge(uow, principal, str(merge_id), body.reason))
