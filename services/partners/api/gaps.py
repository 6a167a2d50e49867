"""Gaps in service: needs no partner could take, and why, for operators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import func, select

from services.partners.adapters.tables import requests
from shared.auth import OrganisationKind, Principal, Role, require
from shared.http import DbSession

router = APIRouter(prefix="/v1", tags=["directory"])
Operator = Annotated[
    Principal, Depends(require(kinds=[OrganisationKind.OPERATOR], roles=[Role.OPERATOR]))
]


class Gap(BaseModel):
    council: str
    need: str
    reason: str
    cases: int


@router.get("/gaps", response_model=list[Gap], summary="Needs currently unroutable, by reason")
async def gaps(principal: Operator, session: DbSession) -> list[Gap]:
    rows = (
        await session.execute(
            select(
                requests.c.council,
                requests.c.need,
                requests.c.unroutable_reason,
                func.count().label("cases"),
            )
            .where(requests.c.status == "unroutable")
            .group_by(requests.c.council, requests.c.need, requests.c.unroutable_reason)
            .order_by(func.count().desc())
        )
    ).all()
    return [
        Gap(council=r.council, need=r.need, reason=r.unroutable_reason, cases=r.cases) for r in rows
    ]
