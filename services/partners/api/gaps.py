"""For councils (their own) and operators (all): gaps in service (needs no partner could
take, or waiting for a place, and why) and overdue offers (accepted, no progress by the
follow-up deadline)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from services.partners.api.deps import CouncilOrOperator, PartnersWork, council_scope
from services.partners.api.schemas import Gap, OverdueCount
from services.partners.service_layer import directory, offers
from shared.audit import personal_data

router = APIRouter(prefix="/v1", tags=["directory"])


@router.get(
    "/gaps",
    response_model=list[Gap],
    summary="Needs currently unroutable or waiting for a place, by reason: a council's own, "
    "every council's for operators",
    openapi_extra=personal_data(),
)
async def gaps(principal: CouncilOrOperator, uow: PartnersWork) -> list[Gap]:
    return [Gap(**asdict(gap)) for gap in await directory.gaps(uow, council_scope(principal))]


@router.get(
    "/overdue",
    response_model=list[OverdueCount],
    summary="Accepted offers past their follow-up deadline, by council and partner",
    openapi_extra=personal_data(),
)
async def overdue(principal: CouncilOrOperator, uow: PartnersWork) -> list[OverdueCount]:
    counts = await offers.overdue_counts(uow, council_scope(principal))
    return [OverdueCount(**asdict(count)) for count in counts]
