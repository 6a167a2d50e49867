"""Erasure requests (UK GDPR Article 17), for a council's information-governance team (or
an operator): erase a resident on a ground of Article 17(1), and follow the request until
every service has confirmed. Use cases: ``service_layer/erasure.py``."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from services.referrals.api.deps import ReferralsWork
from services.referrals.service_layer import erasure
from shared.audit import Category, personal_data
from shared.auth import InformationGovernance
from shared.erasure import ErasureGround

router = APIRouter(prefix="/v1/erasure-requests", tags=["information governance"])


class ErasureRequestCreate(BaseModel):
    resident_id: uuid.UUID = Field(description="the resident (referrals service id)")
    ground: ErasureGround = Field(description="the UK GDPR Article 17(1) ground")


class ErasureRequestPublic(BaseModel):
    id: str
    council: str
    ground: ErasureGround
    requested_by: str
    requested_by_org: str
    requested_at: datetime
    completed_at: datetime | None = Field(description="when the last service confirmed")
    erased: dict[str, int] = Field(description="what the referrals service erased: counts")
    confirmed: list[str] = Field(description="the services that have erased and confirmed")
    pending: list[str] = Field(description="the services still to confirm")

    @classmethod
    def of(cls, request: erasure.ErasureRequest) -> ErasureRequestPublic:
        return cls.model_validate(request, from_attributes=True)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ErasureRequestPublic,
    responses={
        404: {"description": "no such resident in the caller's council"},
        409: {"description": "erasure does not apply (Article 17(3)): the reason says why"},
    },
    summary="Erase a resident from every service (the right to erasure)",
    openapi_extra=personal_data(Category.PROGRESS),
)
async def request_erasure(
    body: ErasureRequestCreate, principal: InformationGovernance, uow: ReferralsWork
) -> ErasureRequestPublic:
    request = await erasure.request_erasure(uow, principal, str(body.resident_id), body.ground)
    return ErasureRequestPublic.of(request)


@router.get(
    "/{request_id}",
    response_model=ErasureRequestPublic,
    summary="How far an erasure has got: which services have confirmed, which are pending",
    openapi_extra=personal_data(Category.PROGRESS),
)
async def erasure_status(
    request_id: uuid.UUID, principal: InformationGovernance, uow: ReferralsWork
) -> ErasureRequestPublic:
    return ErasureRequestPublic.of(await erasure.erasure_status(uow, principal, str(request_id)))
