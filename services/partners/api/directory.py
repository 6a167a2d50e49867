"""The directory: operators add partners and their agreements; a partner edits its own
services and can pause intake. Import and export in Open Referral UK shape."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.partners.adapters.tables import agreements, offers, organizations, services
from services.partners.domain import oruk
from services.partners.placement import ACTIVE_OFFER, place, withdraw_offers
from shared.auth import GSS_CODE, OrganisationKind, Principal, Role, require
from shared.events.envelope import utc_now
from shared.http import DbSession, invalid
from shared.vocabulary import LawfulBasis, Need, PartnerKind

router = APIRouter(prefix="/v1", tags=["directory"])
Operator = Annotated[
    Principal, Depends(require(kinds=[OrganisationKind.OPERATOR], roles=[Role.OPERATOR]))
]
OperatorOrPartner = Annotated[
    Principal,
    Depends(
        require(
            kinds=[OrganisationKind.OPERATOR, OrganisationKind.VCS],
            roles=[Role.OPERATOR, Role.PARTNER],
        )
    ),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AgreementIn(Strict):
    lawful_bases: list[LawfulBasis] = Field(min_length=1)
    data_categories: list[Literal["special_category"]] = Field(
        default=[], description="special_category: may receive health or safeguarding needs"
    )
    reference: str | None = Field(default=None, max_length=200)


class OrganizationIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=2000)
    kind: PartnerKind
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    website: HttpUrl | None = None
    agreement: AgreementIn


class Contact(Strict):
    name: str | None = Field(default=None, max_length=200)
    title: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)


class ServiceIn(Strict):
    organization_id: uuid.UUID
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=4000)
    status: Literal["active", "inactive", "defunct", "temporarily closed"] = "active"
    url: HttpUrl | None = None
    email: str | None = Field(default=None, max_length=254)
    needs: list[Need] = Field(min_length=1)
    councils: list[Annotated[str, Field(pattern=GSS_CODE.pattern)]] = []
    postcode_districts: list[Annotated[str, Field(pattern=r"^[A-Z]{1,2}[0-9][0-9A-Z]?$")]] = []
    minimum_age: int | None = Field(default=None, ge=0, le=120)
    maximum_age: int | None = Field(default=None, ge=0, le=120)
    eligibility_description: str | None = Field(default=None, max_length=1000)
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]] = ["en"]
    interpretation: bool = False
    contacts: list[Contact] = []
    capacity: int = Field(ge=0, le=10_000, description="open offers and active referrals at once")


class Created(BaseModel):
    id: str


def _owns(principal: Principal, organization_id: str) -> bool:
    return principal.kind is OrganisationKind.OPERATOR or principal.organisation == organization_id


async def _save_service(session: AsyncSession, service_id: str, body: ServiceIn) -> None:
    if not body.councils and not body.postcode_districts:
        raise invalid("councils", "a service covers at least one council or postcode district")
    if (
        body.minimum_age is not None
        and body.maximum_age is not None
        and (body.minimum_age > body.maximum_age)
    ):
        raise invalid("maximum_age", "must not be below minimum_age")
    values = body.model_dump(mode="json")
    values["organization_id"] = str(body.organization_id)
    statement = insert(services).values(
        id=service_id, paused=False, last_modified=utc_now(), **values
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[services.c.id], set_={**values, "last_modified": utc_now()}
        )
    )


@router.post(
    "/organizations",
    status_code=status.HTTP_201_CREATED,
    response_model=Created,
    summary="Add a partner organisation with its data-sharing agreement",
)
async def add_organization(
    body: OrganizationIn, principal: Operator, session: DbSession
) -> Created:
    organization_id = str(uuid.uuid4())
    async with session.begin():
        values = body.model_dump(mode="json", exclude={"agreement"})
        await session.execute(insert(organizations).values(id=organization_id, **values))
        await session.execute(
            insert(agreements).values(
                organization_id=organization_id, **body.agreement.model_dump(mode="json")
            )
        )
    return Created(id=organization_id)


@router.put(
    "/organizations/{organization_id}/agreement",
    response_model=Created,
    summary="Replace a partner's data-sharing agreement",
)
async def set_agreement(
    organization_id: uuid.UUID, body: AgreementIn, principal: Operator, session: DbSession
) -> Created:
    async with session.begin():
        values = body.model_dump(mode="json")
        updated = await session.execute(
            update(agreements)
            .where(agreements.c.organization_id == str(organization_id))
            .values(**values, updated_at=utc_now())
        )
        if updated.rowcount == 0:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "organization not found")
    return Created(id=str(organization_id))


@router.post(
    "/services",
    status_code=status.HTTP_201_CREATED,
    response_model=Created,
    summary="Add a service (operators; a partner for its own organisation)",
)
async def add_service(body: ServiceIn, principal: OperatorOrPartner, session: DbSession) -> Created:
    if not _owns(principal, str(body.organization_id)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a partner edits only its own services")
    service_id = str(uuid.uuid4())
    async with session.begin():
        if (
            await session.scalar(
                select(organizations.c.id).where(organizations.c.id == str(body.organization_id))
            )
            is None
        ):
            raise invalid("organization_id", "no such organization")
        await _save_service(session, service_id, body)
    return Created(id=service_id)


async def _own_service(
    session: AsyncSession, principal: Principal, service_id: uuid.UUID
) -> dict[str, Any]:
    row = (
        (
            await session.execute(
                select(services).where(services.c.id == str(service_id)).with_for_update()
            )
        )
        .mappings()
        .first()
    )
    if row is None or not _owns(principal, row["organization_id"]):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "service not found")
    return dict(row)


@router.put("/services/{service_id}", response_model=Created, summary="Edit a service")
async def edit_service(
    service_id: uuid.UUID, body: ServiceIn, principal: OperatorOrPartner, session: DbSession
) -> Created:
    async with session.begin():
        current = await _own_service(session, principal, service_id)
        if str(body.organization_id) != current["organization_id"]:
            raise invalid("organization_id", "a service cannot move to another organisation")
        await _save_service(session, str(service_id), body)
    return Created(id=str(service_id))


class PauseIn(Strict):
    reason: str = Field(min_length=1, max_length=500)


@router.post(
    "/services/{service_id}/pause",
    response_model=Created,
    summary="Pause intake: offers not yet answered are handed on",
)
async def pause(
    service_id: uuid.UUID,
    body: PauseIn,
    principal: OperatorOrPartner,
    request: Request,
    session: DbSession,
) -> Created:
    now, outbox, settings = utc_now(), request.app.state.outbox, request.app.state.settings
    async with session.begin():
        await _own_service(session, principal, service_id)
        await session.execute(
            update(services)
            .where(services.c.id == str(service_id))
            .values(paused=True, pause_reason=body.reason)
        )
        waiting = (
            (
                await session.execute(
                    select(offers)
                    .where(offers.c.service_id == str(service_id), offers.c.status == "offered")
                    .with_for_update()
                )
            )
            .mappings()
            .all()
        )
        await withdraw_offers(
            session, outbox, settings, waiting, f"the service paused intake: {body.reason}", now=now
        )
        for offer in waiting:
            await place(session, outbox, settings, offer["request_id"], now=now)
    return Created(id=str(service_id))


@router.post("/services/{service_id}/resume", response_model=Created, summary="Resume intake")
async def resume(
    service_id: uuid.UUID, principal: OperatorOrPartner, session: DbSession
) -> Created:
    async with session.begin():
        await _own_service(session, principal, service_id)
        await session.execute(
            update(services)
            .where(services.c.id == str(service_id))
            .values(paused=False, pause_reason=None)
        )
    return Created(id=str(service_id))


class ServiceLoad(BaseModel):
    id: str
    name: str
    paused: bool
    capacity: int
    open_offers_and_referrals: int


@router.get(
    "/services/{service_id}/load",
    response_model=ServiceLoad,
    summary="Capacity and current load, derived from offers",
)
async def load(
    service_id: uuid.UUID, principal: OperatorOrPartner, session: DbSession
) -> ServiceLoad:
    row = await _own_service(session, principal, service_id)
    active = await session.scalar(
        select(func.count())
        .select_from(offers)
        .where(offers.c.service_id == str(service_id), offers.c.status.in_(ACTIVE_OFFER))
    )
    return ServiceLoad(
        id=row["id"],
        name=row["name"],
        paused=row["paused"],
        capacity=row["capacity"],
        open_offers_and_referrals=active or 0,
    )


@router.get("/directory/export", summary="The whole directory as Open Referral UK services")
async def export(principal: Operator, session: DbSession) -> list[dict[str, Any]]:
    rows = (
        (
            await session.execute(
                select(
                    services,
                    organizations.c.name.label("org_name"),
                    organizations.c.description.label("org_description"),
                    organizations.c.email.label("org_email"),
                    organizations.c.website.label("org_website"),
                )
                .join(organizations, organizations.c.id == services.c.organization_id)
                .order_by(services.c.name)
            )
        )
        .mappings()
        .all()
    )
    return [oruk.service_full(row, _org(row)) for row in rows]


def _org(row: Any) -> dict[str, Any]:
    return {
        "id": row["organization_id"],
        "name": row["org_name"],
        "description": row["org_description"],
        "email": row["org_email"],
        "website": row["org_website"],
    }


class ImportReport(BaseModel):
    organizations: int
    services: int
    skipped: list[str]


@router.post(
    "/directory/import",
    response_model=ImportReport,
    summary="Import Open Referral UK services (a list, or a page with contents)",
)
async def import_directory(
    body: dict[str, Any] | list[dict[str, Any]],
    principal: Operator,
    session: DbSession,
    kind: PartnerKind = PartnerKind.COMMUNITY,
    capacity: int = 10,
) -> ImportReport:
    documents = body.get("contents", []) if isinstance(body, dict) else body
    seen_orgs: set[str] = set()
    imported, skipped = 0, []
    async with session.begin():
        for document in documents:
            try:
                org, service = oruk.from_service(document)
                uuid.UUID(service["id"])
                uuid.UUID(org["id"] or "")
            except (KeyError, TypeError, ValueError):
                skipped.append(
                    str(document.get("id", "?")) + ": not an ORUK service with an organization"
                )
                continue
            if not service["needs"] or not (service["councils"] or service["postcode_districts"]):
                skipped.append(f"{service['id']}: no Upstream need or no service area")
                continue
            await session.execute(
                insert(organizations).values(kind=kind.value, **org).on_conflict_do_nothing()
            )
            await session.execute(
                insert(agreements)
                .values(
                    organization_id=org["id"],
                    lawful_bases=[LawfulBasis.CONSENT.value],
                    data_categories=[],
                )
                .on_conflict_do_nothing()
            )
            seen_orgs.add(org["id"])
            service_in = ServiceIn.model_validate(
                {
                    **{k: v for k, v in service.items() if k != "id" and v is not None},
                    "capacity": capacity,
                }
            )
            await _save_service(session, service["id"], service_in)
            imported += 1
    return ImportReport(organizations=len(seen_orgs), services=imported, skipped=skipped)
