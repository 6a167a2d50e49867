"""Each council's transparency record (ATRS v3.0), public: as JSON by the standard's
attribute names, or as a page (``?format=html``, or a browser's ``Accept``). And its
organisational details, set by operators or the council's information-governance team."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import JSONResponse

from services.risk.api.deps import RiskWork
from services.risk.domain.atrs import CouncilDetails
from services.risk.service_layer.transparency import describe_council, record_of
from services.risk.web.pages import record_page
from shared.audit import personal_data
from shared.auth import CurrentPrincipal
from shared.vocabulary import GSS_CODE

router = APIRouter(prefix="/v1", tags=["transparency"])

CouncilCode = Annotated[str, Path(pattern=GSS_CODE.pattern, description="the council's GSS code")]


def wants_html(fmt: str | None, accept: str | None) -> bool:
    """``format`` decides; without it, whichever of HTML and JSON the Accept header prefers
    (JSON when neither is named, or both equally)."""
    if fmt is not None:
        return fmt == "html"
    quality: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        quality[media.lower()] = max(q, quality.get(media.lower(), 0.0))
    html = quality.get("text/html", 0.0)
    return html > 0 and html > quality.get("application/json", 0.0)


@router.get(
    "/transparency/{council}",
    summary="A council's algorithmic transparency record (ATRS v3.0), public",
    response_model=dict[str, Any],
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}},
    openapi_extra=personal_data(),
)
async def council_record(
    council: CouncilCode,
    uow: RiskWork,
    format: Annotated[Literal["json", "html"] | None, Query()] = None,
    accept: Annotated[str | None, Header(max_length=1000)] = None,
) -> Any:
    record = await record_of(uow, council)
    if wants_html(format, accept):
        return record_page(record)
    return JSONResponse(record)


@router.put(
    "/councils/{council}/transparency",
    response_model=CouncilDetails,
    summary="Set a council's details for its transparency record (operators, the council's IG)",
    openapi_extra=personal_data(),
)
async def set_council_details(
    council: CouncilCode, details: CouncilDetails, principal: CurrentPrincipal, uow: RiskWork
) -> CouncilDetails:
    return await describe_council(uow, council, details, by=principal)
