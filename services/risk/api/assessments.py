"""Why was this flagged? In plain English, for a caseworker to read to the resident."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.risk.api.deps import Caseworker, RiskWork, council_of
from services.risk.api.schemas import Why
from services.risk.service_layer import assessments
from shared.audit import Category, personal_data

router = APIRouter(prefix="/v1", tags=["assessments"])


@router.get(
    "/cases/{case_id}/assessment",
    response_model=Why,
    summary="Why a case has its level: the latest assessment, in plain English",
    openapi_extra=personal_data(Category.RISK, Category.NEEDS),
)
async def case_assessment(case_id: uuid.UUID, principal: Caseworker, uow: RiskWork) -> Why:
    explained = await assessments.explain_case(
        uow, str(case_id), council=council_of(principal), reader=principal
    )
    return Why.of(explained)


@router.get(
    "/residents/{resident_key}/assessment",
    response_model=Why,
    summary="Why a resident was flagged, by the resident key a flag carried",
    openapi_extra=personal_data(Category.RISK, Category.NEEDS),
)
async def resident_assessment(resident_key: str, principal: Caseworker, uow: RiskWork) -> Why:
    explained = await assessments.explain_resident(
        uow, resident_key, council=council_of(principal), reader=principal
    )
    return Why.of(explained)
