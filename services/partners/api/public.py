"""The public Open Referral UK read endpoints: no token, open to any origin."""

from __future__ import annotations

import math
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from sqlalchemy import func, select

from services.partners.adapters.tables import organizations, services
from services.partners.domain import oruk
from shared.http import DbSession
from shared.vocabulary import Need

router = APIRouter(tags=["open referral uk"])
ORUK_PROFILE = "https://openreferraluk.org/UK-profile"


def _cors(response: Response) -> None:
    response.headers["Access-Control-Allow-Origin"] = "*"


def _page(items: list[dict[str, Any]], total: int, page: int, per_page: int) -> dict[str, Any]:
    pages = max(1, math.ceil(total / per_page))
    return {
        "total_items": total,
        "total_pages": pages,
        "page_number": page,
        "size": len(items),
        "first_page": page == 1,
        "last_page": page >= pages,
        "empty": not items,
        "contents": items,
    }


_ORG = [
    organizations.c.name.label("org_name"),
    organizations.c.description.label("org_description"),
    organizations.c.email.label("org_email"),
    organizations.c.website.label("org_website"),
]


def _org(row: Any) -> dict[str, Any]:
    return {
        "id": row["organization_id"],
        "name": row["org_name"],
        "description": row["org_description"],
        "email": row["org_email"],
        "website": row["org_website"],
    }


@router.get("/", summary="About this Open Referral UK API")
async def api_details(response: Response) -> dict[str, str]:
    _cors(response)
    return {"version": "3.0", "profile": ORUK_PROFILE, "openapi_url": "/openapi.json"}


@router.get("/services", summary="Services, paginated")
async def list_services(
    response: Response,
    session: DbSession,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 50,
    text: Annotated[str | None, Query(max_length=200, alias="search")] = None,
    taxonomy_term_id: str | None = None,
) -> dict[str, Any]:
    _cors(response)
    query = select(services, *_ORG).join(
        organizations, organizations.c.id == services.c.organization_id
    )
    if text:
        pattern = f"%{text}%"
        query = query.where(services.c.name.ilike(pattern) | services.c.description.ilike(pattern))
    if taxonomy_term_id:
        need = oruk.NEED_BY_TERM.get(taxonomy_term_id)
        query = query.where(services.c.needs.contains([need]) if need else False)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = (
        (
            await session.execute(
                query.order_by(services.c.name, services.c.id)
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
        )
        .mappings()
        .all()
    )
    return _page([oruk.service_summary(r, _org(r)) for r in rows], total, page, per_page)


@router.get("/services/{service_id}", summary="One service, in full")
async def get_service(service_id: str, response: Response, session: DbSession) -> dict[str, Any]:
    _cors(response)
    try:
        uuid.UUID(service_id)
    except ValueError:
        raise HTTPException(404, "service not found") from None
    row = (
        (
            await session.execute(
                select(services, *_ORG)
                .join(organizations, organizations.c.id == services.c.organization_id)
                .where(services.c.id == service_id)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise HTTPException(404, "service not found")
    return oruk.service_full(row, _org(row))


@router.get("/taxonomies", summary="Taxonomies, paginated")
async def taxonomies(response: Response) -> dict[str, Any]:
    _cors(response)
    return _page([oruk.TAXONOMY], 1, 1, 50)


@router.get("/taxonomy_terms", summary="Taxonomy terms, paginated")
async def taxonomy_terms(
    response: Response,
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    _cors(response)
    terms = [oruk.taxonomy_term(n.value) for n in Need]
    return _page(terms[(page - 1) * per_page : page * per_page], len(terms), page, per_page)
