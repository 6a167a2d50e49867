"""The partner inbox: a partner sees only the offers made to it, answers them, and records
progress and outcomes. After declining (or once an offer is withdrawn or expired) it sees
nothing more of the case."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.partners.adapters.tables import deliveries, offers, requests, services, webhooks
from services.partners.placement import ACTIVE_OFFER, offer_fields, place
from services.partners.webhooks import new_secret
from shared.auth import OrganisationKind, Principal, Role, require
from shared.events.envelope import utc_now
from shared.events.payloads import (
    OfferAccepted,
    OfferDeclined,
    OfferProgressRecorded,
    OutcomeRecorded,
)
from shared.http import ApiProblem, DbSession, invalid
from shared.vocabulary import DeclineReason, Need, Outcome

router = APIRouter(prefix="/v1/inbox", tags=["partner inbox"])
Partner = Annotated[Principal, Depends(require(kinds=[OrganisationKind.VCS], roles=[Role.PARTNER]))]
VISIBLE = ("offered", "accepted", "in_progress", "outcome_recorded")


class Offer(BaseModel):
    id: str
    case_id: str
    need: Need
    service_id: str
    service_name: str
    status: str
    respond_by: datetime
    outcome: Outcome | None = None
    packet: dict[str, Any] | None = Field(
        default=None, description="what the partner needs to contact and help the resident"
    )


def _offer(row: RowMapping) -> Offer:
    return Offer(
        id=row["id"],
        case_id=row["case_id"],
        need=row["need"],
        service_id=row["service_id"],
        service_name=row["service_name"],
        status=row["status"],
        respond_by=row["respond_by"],
        outcome=row["outcome"],
        packet=row["packet"] if row["status"] in ACTIVE_OFFER else None,
    )


_SELECT = (
    select(offers, services.c.name.label("service_name"), requests.c.packet)
    .join(services, services.c.id == offers.c.service_id)
    .join(requests, requests.c.id == offers.c.request_id)
)


@router.get("/offers", response_model=list[Offer], summary="This partner's offers")
async def list_offers(principal: Partner, session: DbSession) -> list[Offer]:
    rows = (
        (
            await session.execute(
                _SELECT.where(
                    offers.c.organization_id == principal.organisation, offers.c.status.in_(VISIBLE)
                ).order_by(offers.c.respond_by)
            )
        )
        .mappings()
        .all()
    )
    return [_offer(r) for r in rows]


async def _mine(
    session: AsyncSession, principal: Principal, offer_id: uuid.UUID, *, lock: bool = False
) -> RowMapping:
    query = _SELECT.where(
        offers.c.id == str(offer_id),
        offers.c.organization_id == principal.organisation,
        offers.c.status.in_(VISIBLE),
    )
    row = (
        (await session.execute(query.with_for_update(of=offers) if lock else query))
        .mappings()
        .first()
    )
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "offer not found")
    return row


@router.get("/offers/{offer_id}", response_model=Offer, summary="One offer and its packet")
async def get_offer(offer_id: uuid.UUID, principal: Partner, session: DbSession) -> Offer:
    return _offer(await _mine(session, principal, offer_id))


def _refuse(offer: RowMapping, action: str, allowed_from: tuple[str, ...]) -> None:
    if offer["status"] not in allowed_from:
        raise ApiProblem(
            status.HTTP_409_CONFLICT,
            f"an offer that is {offer['status']} cannot be {action}",
            current_status=offer["status"],
            allowed_from=list(allowed_from),
        )


async def _set(session: AsyncSession, offer: RowMapping, now: datetime, **values: Any) -> None:
    await session.execute(
        update(offers).where(offers.c.id == offer["id"]).values(updated_at=now, **values)
    )


@router.post("/offers/{offer_id}/accept", response_model=Offer, summary="Accept an offer")
async def accept(
    offer_id: uuid.UUID, principal: Partner, request: Request, session: DbSession
) -> Offer:
    async with session.begin():
        offer, now = await _mine(session, principal, offer_id, lock=True), utc_now()
        _refuse(offer, "accepted", ("offered",))
        await _set(session, offer, now, status="accepted")
        await request.app.state.outbox.add(
            session, OfferAccepted(**offer_fields(offer, now)), subject=offer["case_id"]
        )
    return await get_offer(offer_id, principal, session)


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: DeclineReason
    note: str | None = Field(default=None, max_length=1000)


@router.post(
    "/offers/{offer_id}/decline",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Decline an offer: it is handed on, and this partner sees no more of it",
)
async def decline(
    offer_id: uuid.UUID, body: DeclineIn, principal: Partner, request: Request, session: DbSession
) -> None:
    outbox, settings = request.app.state.outbox, request.app.state.settings
    async with session.begin():
        offer, now = await _mine(session, principal, offer_id, lock=True), utc_now()
        _refuse(offer, "declined", ("offered", "accepted"))
        await _set(
            session, offer, now, status="declined", decline_reason=body.reason.value, note=body.note
        )
        await outbox.add(
            session,
            OfferDeclined(**offer_fields(offer, now), reason=body.reason, note=body.note),
            subject=offer["case_id"],
        )
        await place(session, outbox, settings, offer["request_id"], now=now)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=1000)


@router.post(
    "/offers/{offer_id}/progress",
    response_model=Offer,
    summary="Record that the partner is working with the resident",
)
async def progress(
    offer_id: uuid.UUID, body: NoteIn, principal: Partner, request: Request, session: DbSession
) -> Offer:
    async with session.begin():
        offer, now = await _mine(session, principal, offer_id, lock=True), utc_now()
        _refuse(offer, "in progress", ("accepted", "in_progress"))
        await _set(session, offer, now, status="in_progress", note=body.note)
        await request.app.state.outbox.add(
            session,
            OfferProgressRecorded(**offer_fields(offer, now), note=body.note),
            subject=offer["case_id"],
        )
    return await get_offer(offer_id, principal, session)


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Outcome
    note: str | None = Field(default=None, max_length=1000)


@router.post("/offers/{offer_id}/outcome", response_model=Offer, summary="Record the outcome")
async def outcome(
    offer_id: uuid.UUID, body: OutcomeIn, principal: Partner, request: Request, session: DbSession
) -> Offer:
    async with session.begin():
        offer, now = await _mine(session, principal, offer_id, lock=True), utc_now()
        _refuse(offer, "given an outcome", ("accepted", "in_progress"))
        await _set(
            session,
            offer,
            now,
            status="outcome_recorded",
            outcome=body.outcome.value,
            note=body.note,
        )
        await request.app.state.outbox.add(
            session,
            OutcomeRecorded(**offer_fields(offer, now), outcome=body.outcome, note=body.note),
            subject=offer["case_id"],
        )
    return await get_offer(offer_id, principal, session)


# -- webhooks -------------------------------------------------------------------------------


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: HttpUrl


class Webhook(BaseModel):
    url: str
    secret: str = Field(description="shown once: keep it to verify signatures")
    previous_secret_valid_until: datetime | None = None


@router.put("/webhook", response_model=Webhook, summary="Register the partner's webhook")
async def register_webhook(
    body: WebhookIn, principal: Partner, request: Request, session: DbSession
) -> Webhook:
    settings = request.app.state.settings
    if body.url.scheme != "https" and not settings.allow_http_webhooks:
        raise invalid("url", "must be https")
    secret = new_secret()
    async with session.begin():
        statement = insert(webhooks).values(
            organization_id=principal.organisation, url=str(body.url), secret=secret
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[webhooks.c.organization_id],
                set_={
                    "url": str(body.url),
                    "secret": secret,
                    "previous_secret": None,
                    "previous_valid_until": None,
                    "updated_at": utc_now(),
                },
            )
        )
    return Webhook(url=str(body.url), secret=secret)


@router.post(
    "/webhook/rotate",
    response_model=Webhook,
    summary="A new secret; the old one keeps signing too for 24 hours",
)
async def rotate_secret(principal: Partner, session: DbSession) -> Webhook:
    async with session.begin():
        current = (
            (
                await session.execute(
                    select(webhooks)
                    .where(webhooks.c.organization_id == principal.organisation)
                    .with_for_update()
                )
            )
            .mappings()
            .first()
        )
        if current is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no webhook registered")
        secret, until = new_secret(), utc_now() + timedelta(hours=24)
        await session.execute(
            update(webhooks)
            .where(webhooks.c.organization_id == principal.organisation)
            .values(
                secret=secret,
                previous_secret=current["secret"],
                previous_valid_until=until,
                updated_at=utc_now(),
            )
        )
    return Webhook(url=current["url"], secret=secret, previous_secret_valid_until=until)


class DeliveryRecord(BaseModel):
    id: str
    event: str
    offer_id: str | None
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime


@router.get(
    "/webhook/deliveries",
    response_model=list[DeliveryRecord],
    summary="The delivery log, newest first",
)
async def delivery_log(principal: Partner, session: DbSession) -> list[DeliveryRecord]:
    rows = (
        (
            await session.execute(
                select(deliveries)
                .where(deliveries.c.organization_id == principal.organisation)
                .order_by(deliveries.c.created_at.desc())
                .limit(200)
            )
        )
        .mappings()
        .all()
    )
    return [DeliveryRecord(**row) for row in rows]
