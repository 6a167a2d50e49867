"""The partner inbox over HTTP: a partner sees only the offers made to it, answers them,
records progress and outcomes, and manages its webhook. Use cases:
``service_layer/offers.py`` and ``service_layer/webhooks.py``."""

from __future__ import annotations

import uuid
from dataclasses import asdict

from fastapi import APIRouter, status

from services.partners.api.deps import Partner, PartnersWork
from services.partners.api.schemas import (
    DeclineIn,
    DeliveryRecord,
    NoteIn,
    Offer,
    OutcomeIn,
    Webhook,
    WebhookIn,
)
from services.partners.service_layer import offers, webhooks
from services.partners.service_layer.offers import Decline, InboxOffer, RecordOutcome
from shared.audit import Category, personal_data

router = APIRouter(prefix="/v1/inbox", tags=["partner inbox"])


def _offer(offer: InboxOffer) -> Offer:
    return Offer(**asdict(offer))


@router.get(
    "/offers",
    response_model=list[Offer],
    summary="This partner's offers in hand, and those closed lately",
    description="Every offer offered, accepted or in progress, and those closed (an outcome "
    "recorded) in the last 90 days, as the deployment sets it; an older closed offer is "
    "still shown by its id.",
    openapi_extra=personal_data(
        Category.IDENTITY, Category.CONTACT, Category.NEEDS, Category.FREE_TEXT, Category.PROGRESS
    ),
)
async def list_offers(principal: Partner, uow: PartnersWork) -> list[Offer]:
    return [_offer(o) for o in await offers.list_offers(uow, principal)]


@router.get(
    "/offers/{offer_id}",
    response_model=Offer,
    summary="One offer and its packet",
    openapi_extra=personal_data(
        Category.IDENTITY, Category.CONTACT, Category.NEEDS, Category.FREE_TEXT, Category.PROGRESS
    ),
)
async def get_offer(offer_id: uuid.UUID, principal: Partner, uow: PartnersWork) -> Offer:
    return _offer(await offers.get_offer(uow, principal, str(offer_id)))


@router.post(
    "/offers/{offer_id}/accept",
    response_model=Offer,
    summary="Accept an offer",
    openapi_extra=personal_data(
        Category.IDENTITY, Category.CONTACT, Category.NEEDS, Category.FREE_TEXT, Category.PROGRESS
    ),
)
async def accept(offer_id: uuid.UUID, principal: Partner, uow: PartnersWork) -> Offer:
    return _offer(await offers.accept_offer(uow, principal, str(offer_id)))


@router.post(
    "/offers/{offer_id}/decline",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Decline an offer: it is handed on, and this partner sees no more of it",
    openapi_extra=personal_data(),
)
async def decline(
    offer_id: uuid.UUID, body: DeclineIn, principal: Partner, uow: PartnersWork
) -> None:
    command = Decline(reason=body.reason, note=body.note)
    await offers.decline_offer(uow, principal.organisation, str(offer_id), command)


@router.post(
    "/offers/{offer_id}/progress",
    response_model=Offer,
    summary="Record that the partner is working with the resident",
    openapi_extra=personal_data(
        Category.IDENTITY, Category.CONTACT, Category.NEEDS, Category.FREE_TEXT, Category.PROGRESS
    ),
)
async def progress(
    offer_id: uuid.UUID, body: NoteIn, principal: Partner, uow: PartnersWork
) -> Offer:
    return _offer(await offers.record_progress(uow, principal, str(offer_id), body.note))


@router.post(
    "/offers/{offer_id}/outcome",
    response_model=Offer,
    summary="Record the outcome",
    openapi_extra=personal_data(
        Category.IDENTITY, Category.CONTACT, Category.NEEDS, Category.FREE_TEXT, Category.PROGRESS
    ),
)
async def outcome(
    offer_id: uuid.UUID, body: OutcomeIn, principal: Partner, uow: PartnersWork
) -> Offer:
    command = RecordOutcome(outcome=body.outcome, note=body.note)
    return _offer(await offers.record_outcome(uow, principal, str(offer_id), command))


# -- webhooks -------------------------------------------------------------------------------


@router.put(
    "/webhook",
    response_model=Webhook,
    summary="Register the partner's webhook",
    openapi_extra=personal_data(),
)
async def register_webhook(body: WebhookIn, principal: Partner, uow: PartnersWork) -> Webhook:
    registered = await webhooks.register_webhook(uow, principal.organisation, str(body.url))
    return Webhook(**asdict(registered))


@router.post(
    "/webhook/rotate",
    response_model=Webhook,
    responses={404: {"description": "no webhook registered"}},
    summary="A new secret; the old one keeps signing too for 24 hours",
    openapi_extra=personal_data(),
)
async def rotate_secret(principal: Partner, uow: PartnersWork) -> Webhook:
    return Webhook(**asdict(await webhooks.rotate_webhook_secret(uow, principal.organisation)))


@router.get(
    "/webhook/deliveries",
    response_model=list[DeliveryRecord],
    summary="The delivery log, newest first",
    openapi_extra=personal_data(),
)
async def delivery_log(principal: Partner, uow: PartnersWork) -> list[DeliveryRecord]:
    log = await webhooks.delivery_log(uow, principal.organisation)
    return [DeliveryRecord(**asdict(delivery)) for delivery in log]
