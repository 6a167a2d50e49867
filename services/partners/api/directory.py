"""The directory over HTTP: operators add partners (with their agreements: more in
``api/agreements.py``); a partner edits its own services and can pause intake. Import and
export in Open Referral UK shape. Use cases: ``service_layer/directory.py``."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from services.partners.api.deps import (
    OperatorOrPartner,
    PartnersWork,
    editor,
    manager,
)
from services.partners.api.schemas import (
    Created,
    ImportReport,
    InboxAddresses,
    OrganizationIn,
    PauseIn,
    ServiceIn,
    ServiceLoad,
)
from services.partners.service_layer import directory, web_access
from shared.audit import Category, personal_data
from shared.auth import Operator
from shared.errors import Invalid
from shared.vocabulary import PartnerKind

router = APIRouter(prefix="/v1", tags=["directory"])


@router.post(
    "/organizations",
    status_code=status.HTTP_201_CREATED,
    response_model=Created,
    summary="Add a partner organisation with its data-sharing agreements (one per council)",
    openapi_extra=personal_data(),
)
async def add_organization(body: OrganizationIn, principal: Operator, uow: PartnersWork) -> Created:
    return Created(id=await directory.add_organization(uow, body, by=manager(principal)))


@router.put(
    "/organizations/{organization_id}/inbox-addresses",
    response_model=InboxAddresses,
    summary="Set the addresses that sign in to a partner's web inbox and get its emails",
    openapi_extra=personal_data(Category.CONTACT),
)
async def set_inbox_addresses(
    organization_id: uuid.UUID, body: InboxAddresses, principal: Operator, uow: PartnersWork
) -> InboxAddresses:
    saved = await web_access.register_addresses(
        uow, str(organization_id), body.addresses, reader=principal
    )
    return InboxAddresses(addresses=saved)


@router.get(
    "/organizations/{organization_id}/inbox-addresses",
    response_model=InboxAddresses,
    summary="The addresses that sign in to a partner's web inbox",
    openapi_extra=personal_data(Category.CONTACT),
)
async def inbox_addresses(
    organization_id: uuid.UUID, principal: Operator, uow: PartnersWork
) -> InboxAddresses:
    return InboxAddresses(
        addresses=await web_access.inbox_addresses(uow, str(organization_id), reader=principal)
    )


@router.post(
    "/services",
    status_code=status.HTTP_201_CREATED,
    response_model=Created,
    summary="Add a service (operators; a partner for its own organisation)",
    openapi_extra=personal_data(),
)
async def add_service(body: ServiceIn, principal: OperatorOrPartner, uow: PartnersWork) -> Created:
    return Created(id=await directory.add_service(uow, editor(principal), body))


@router.put(
    "/services/{service_id}",
    response_model=Created,
    summary="Edit a service",
    openapi_extra=personal_data(),
)
async def edit_service(
    service_id: uuid.UUID, body: ServiceIn, principal: OperatorOrPartner, uow: PartnersWork
) -> Created:
    await directory.edit_service(uow, editor(principal), str(service_id), body)
    return Created(id=str(service_id))


@router.post(
    "/services/{service_id}/pause",
    response_model=Created,
    summary="Pause intake: offers not yet answered are handed on",
    openapi_extra=personal_data(),
)
async def pause(
    service_id: uuid.UUID, body: PauseIn, principal: OperatorOrPartner, uow: PartnersWork
) -> Created:
    await directory.pause_service(uow, editor(principal), str(service_id), body.reason)
    return Created(id=str(service_id))


@router.post(
    "/services/{service_id}/resume",
    response_model=Created,
    summary="Resume intake",
    openapi_extra=personal_data(),
)
async def resume(service_id: uuid.UUID, principal: OperatorOrPartner, uow: PartnersWork) -> Created:
    await directory.resume_service(uow, editor(principal), str(service_id))
    return Created(id=str(service_id))


@router.get(
    "/services/{service_id}/load",
    response_model=ServiceLoad,
    summary="Capacity and current load, derived from offers",
    openapi_extra=personal_data(),
)
async def load(
    service_id: uuid.UUID, principal: OperatorOrPartner, uow: PartnersWork
) -> ServiceLoad:
    return ServiceLoad(
        **asdict(await directory.service_load(uow, editor(principal), str(service_id)))
    )


@router.get(
    "/directory/export",
    summary="The whole directory as Open Referral UK services",
    openapi_extra=personal_data(),
)
async def export(principal: Operator, uow: PartnersWork) -> list[dict[str, Any]]:
    return await directory.export_directory(uow)


@router.post(
    "/directory/import",
    response_model=ImportReport,
    summary="Import Open Referral UK services (a list, or a page with contents)",
    openapi_extra=personal_data(),
)
async def import_directory(
    body: dict[str, Any] | list[Any],
    principal: Operator,
    uow: PartnersWork,
    kind: PartnerKind = PartnerKind.COMMUNITY,
    capacity: Annotated[int, Query(ge=0, le=10_000)] = 10,
) -> ImportReport:
    documents = body.get("contents", []) if isinstance(body, dict) else body
    if not isinstance(documents, list):
        raise Invalid("contents", "must be a list of Open Referral UK services")
    report = await directory.import_directory(uow, documents, kind=kind, capacity=capacity)
    return ImportReport(**asdict(report))
