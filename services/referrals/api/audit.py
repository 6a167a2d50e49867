"""The audit trail of reads, for a council's information-governance team."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.referrals.api.deps import InformationGovernance, ReferralsWork
from services.referrals.service_layer import audit

router = APIRouter(prefix="/v1/audit", tags=["information governance"])


class AuditEntry(BaseModel):
    at: datetime
    subject: str
    organisation: str
    organisation_kind: str
    roles: list[str]
    operation: str
    purpose: str
    council: str | None
    resident_ids: list[str]
    case_ids: list[str]
    data_categories: list[str]


@router.get(
    "",
    response_model=list[AuditEntry],
    summary="Who read a resident's data, or what a user read (newest first)",
)
async def audit_trail(
    principal: InformationGovernance,
    uow: ReferralsWork,
    resident: uuid.UUID | None = None,
    subject: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    entries = await audit.audit_trail(
        uow,
        principal,
        resident_id=str(resident) if resident else None,
        subject=subject,
        limit=limit,
    )
    return [AuditEntry(**asdict(e)) for e in entries]
