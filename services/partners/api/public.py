"""The public Open Referral UK read endpoints: no token, open to any origin."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from services.partners.api.deps import PartnersWork
from services.partners.service_layer import directory
from shared.audit import personal_data

router = APIRouter(tags=["open referral uk"])
ORUK_PROFILE = "https://openreferraluk.org/UK-profile"


def _cors(response: Response) -> None:
    response.headers["Access-Control-Allow-Origin"] = "*"


@router.get("/", summary="About this Open Referral UK API", openapi_extra=personal_data())
async def api_details(response: Response) -> dict[str, str]:
    _cors(response)
    return {"version": "3.0", "profile": ORUK_PROFILE, "openapi_url": "/openapi.json"}


@router.get("/services", summary="Services, paginated", openapi_extra=personal_data())
async def list_services(
    response: Response,
    uow: PartnersWork,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 50,
    text: Annotated[str | None, Query(max_length=200, alias="search")] = None,
    taxonomy_term_id: str | None = None,
) -> dict[str, Any]:
    _cors(response)
    return await directory.public_services(
        uow, number=page, per_page=per_page, text=text, taxonomy_term_id=taxonomy_term_id
    )


@router.get("/services/{service_id}", summary="One service, in full", openapi_extra=personal_data())
async def get_service(service_id: str, response: Response, uow: PartnersWork) -> dict[str, Any]:
    _cors(response)
    return await directory.public_service(uow, service_id)


@router.get("/taxonomies", summary="Taxonomies, paginated", openapi_extra=personal_data())
async def taxonomies(response: Response) -> dict[str, Any]:
    _cors(response)
    return directory.taxonomies()


@router.get("/taxonomy_terms", summary="Taxonomy terms, paginated", openapi_extra=personal_data())
async def taxonomy_terms(
    response: Response,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    _cors(response)
    return directory.taxonomy_terms(page, per_page)
