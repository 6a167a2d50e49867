"""Data-sharing agreements over HTTP: operators (every council's) and a council's
information-governance team (its own council's) record, list, read and end them early. Use
cases: ``service_layer/agreements.py``."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, status

from services.partners.api.deps import PartnersWork, manager
from services.partners.api.schemas import Agreement, AgreementIn, Created, EndAgreementIn
from services.partners.service_layer import agreements
from shared.audit import personal_data
from shared.auth import InformationGovernance
from shared.vocabulary import GSS_CODE

router = APIRouter(prefix="/v1/agreements", tags=["data-sharing agreements"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Created,
    summary="Record a data-sharing agreement between a council and a partner",
    openapi_extra=personal_data(),
)
async def add_agreement(
    body: AgreementIn, principal: InformationGovernance, uow: PartnersWork
) -> Created:
    return Created(id=await agreements.add_agreement(uow, manager(principal), body))


@router.get(
    "",
    response_model=list[Agreement],
    summary="The data-sharing agreements the caller manages (an IG team: its council's)",
    openapi_extra=personal_data(),
)
async def list_agreements(
    principal: InformationGovernance,
    uow: PartnersWork,
    council: Annotated[str | None, Query(pattern=GSS_CODE.pattern)] = None,
    organization_id: uuid.UUID | None = None,
) -> list[Agreement]:
    found = await agreements.list_agreements(
        uow,
        manager(principal),
        council=council,
        organization_id=str(organization_id) if organization_id else None,
    )
    return [Agreement(**asdict(a)) for a in found]


@router.get(
    "/{agreement_id}",
    response_model=Agreement,
    summary="One data-sharing agreement, with what happened to it",
    openapi_extra=personal_data(),
)
async def get_agreement(
    agreement_id: uuid.UUID, principal: InformationGovernance, uow: PartnersWork
) -> Agreement:
    return Agreement(
        **asdict(await agreements.agreement(uow, manager(principal), str(agreement_id)))
    )


@router.post(
    "/{agreement_id}/end",
    response_model=Agreement,
    summary="End an agreement early: no new offers under it (offers made are not withdrawn)",
    openapi_extra=personal_data(),
)
async def end_agreement(
    agreement_id: uuid.UUID,
    body: EndAgreementIn,
    principal: InformationGovernance,
    uow: PartnersWork,
) -> Agreement:
    ended = await agreements.end_agreement(uow, manager(principal), str(agreement_id), body.reason)
    return Agreement(**asdict(ended))
