"""Gaps in service: needs no partner could take, and why, for operators."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from services.partners.api.deps import Operator, PartnersWork
from services.partners.api.schemas import Gap
from services.partners.service_layer import directory

router = APIRouter(prefix="/v1", tags=["directory"])


@router.get("/gaps", response_model=list[Gap], summary="Needs currently unroutable, by reason")
async def gaps(principal: Operator, uow: PartnersWork) -> list[Gap]:
    return [Gap(**asdict(gap)) for gap in await directory.gaps(uow)]
