"""Webhook use cases: a partner registers its endpoint and rotates its secret; changes to
its offers are queued with the change itself; the worker delivers them, signed, retried with
backoff and logged, so a slow partner never holds anything up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.partners.adapters import webhooks as store
from services.partners.domain.webhooks import (
    ROTATION_OVERLAP,
    SIGNATURE_HEADER,
    DeliveryStatus,
    after_attempt,
    encoded,
    new_secret,
    secrets_in_force,
    signature_header,
)
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from shared.errors import Invalid, NotFound


@dataclass(frozen=True)
class RegisteredWebhook:
    url: str
    secret: str  # shown once
    previous_secret_valid_until: datetime | None = None


@dataclass(frozen=True)
class Delivery:
    id: str
    event: str
    offer_id: str | None
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime


async def register_webhook(
    uow: PartnersUnitOfWork, organization_id: str, url: str, *, scheme: str
) -> RegisteredWebhook:
    """The partner's endpoint, with a new secret; https unless development allows http."""
    if scheme != "https" and not uow.settings.allow_http_webhooks:
        raise Invalid("url", "must be https")
    secret = new_secret()
    async with uow.transaction():
        await store.register(uow.session, organization_id, url, secret, uow.now())
    return RegisteredWebhook(url=url, secret=secret)


async def rotate_webhook_secret(uow: PartnersUnitOfWork, organization_id: str) -> RegisteredWebhook:
    """A new secret; the old one keeps signing too for a while, so receivers never miss."""
    async with uow.transaction():
        current = await store.webhook_for_update(uow.session, organization_id)
        if current is None:
            raise NotFound("no webhook registered")
        now = uow.now()
        secret, until = new_secret(), now + ROTATION_OVERLAP
        await store.rotate(uow.session, organization_id, secret, current["secret"], until, now)
    return RegisteredWebhook(url=current["url"], secret=secret, previous_secret_valid_until=until)


async def delivery_log(uow: PartnersUnitOfWork, organization_id: str) -> list[Delivery]:
    """The partner's last 200 deliveries, newest first."""
    rows = await store.delivery_log(uow.session, organization_id)
    return [
        Delivery(
            id=row["id"],
            event=row["event"],
            offer_id=row["offer_id"],
            status=DeliveryStatus(row["status"]),
            attempts=row["attempts"],
            last_status_code=row["last_status_code"],
            last_error=row["last_error"],
            created_at=row["created_at"],
            delivered_at=row["delivered_at"],
            next_attempt_at=row["next_attempt_at"],
        )
        for row in rows
    ]


async def queue_webhook(
    uow: PartnersUnitOfWork,
    organization_id: str,
    offer_id: str | None,
    event: str,
    body: dict[str, Any],
    *,
    now: datetime,
) -> None:
    """Inside the caller's transaction: written with the change it reports (if the partner
    has a webhook), sent later by the worker."""
    if not await store.has_webhook(uow.session, organization_id):
        return
    await store.add_delivery(
        uow.session,
        uow.new_id(),
        organization_id,
        offer_id,
        event,
        {"event": event, "occurred_at": now.isoformat(), **body},
        now,
    )


async def deliver_due_webhooks(uow: PartnersUnitOfWork, *, limit: int = 50) -> int:
    """Send the deliveries whose time has come; one failure never holds up the others.
    How many were attempted."""
    settings = uow.settings
    async with uow.transaction():
        now = uow.now()
        due = await store.due_deliveries(uow.session, now, limit)
        if not due:
            return 0
        async with uow.open_webhook_sender(settings.webhook_timeout_seconds) as sender:
            for row in due:
                body = encoded(row["body"])
                signing = secrets_in_force(
                    row["secret"], row["previous_secret"], row["previous_valid_until"], now
                )
                answer = await sender.post(
                    row["url"],
                    body,
                    {
                        "Content-Type": "application/json",
                        "User-Agent": "Upstream-Webhooks/1",
                        "Upstream-Delivery": row["id"],
                        "Upstream-Event": row["event"],
                        SIGNATURE_HEADER: signature_header(signing, int(now.timestamp()), body),
                    },
                )
                result = after_attempt(
                    row["attempts"],
                    answer.status_code,
                    answer.error,
                    max_attempts=settings.webhook_max_attempts,
                    now=now,
                )
                await store.record_attempt(uow.session, row["id"], result, now)
    return len(due)
