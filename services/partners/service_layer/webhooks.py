"""Webhook use cases: a partner registers its endpoint and rotates its secret; changes to
its offers are queued with the change itself; the worker delivers them, signed, retried with
backoff and logged, so a slow partner never holds routing up. Deliveries of one sweep go one
after another: a partner timing out delays the others' by its timeout
(``UPSTREAM_WEBHOOK_TIMEOUT_SECONDS``) for each of its due rows, until its backoff grows.

Where a webhook may go (``domain/webhook_targets.py``) is checked when it is registered and
again before each delivery, after resolving the host name, so it never reaches inward."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.partners.adapters import directory as directory_store
from services.partners.adapters import webhooks as store
from services.partners.adapters.webhook_sender import Answer, WebhookSender
from services.partners.domain.webhook_targets import (
    IPAddress,
    TargetRules,
    host_and_port,
    ip_literal,
)
from services.partners.domain.webhooks import (
    ROTATION_OVERLAP,
    SIGNATURE_HEADER,
    AttemptResult,
    DeliveryStatus,
    after_attempt,
    encoded,
    new_secret,
    refused_attempt,
    secrets_in_force,
    signature_header,
)
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from services.partners.settings import PartnersSettings
from shared.errors import Forbidden, Invalid, NotFound


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


def target_rules(settings: PartnersSettings) -> TargetRules:
    """The development setting that allows http also allows loopback (a receiver on the same
    machine); operators name the on-premises partners' hosts that may be private."""
    return TargetRules.of(
        allow_http=settings.allow_http_webhooks,
        allow_loopback=settings.allow_http_webhooks,
        private_hosts=settings.webhook_allowed_private_hosts,
    )


async def register_webhook(
    uow: PartnersUnitOfWork, organization_id: str, url: str
) -> RegisteredWebhook:
    """The partner's endpoint, with a new secret: https to a public address (a host name is
    checked again, resolved, at each delivery). Only a partner in the directory has one."""
    refusal = target_rules(uow.settings).url_refusal(url)
    if refusal is not None:
        raise Invalid("url", refusal)
    secret = new_secret()
    async with uow.transaction():
        if not await _in_directory(uow, organization_id):
            raise Forbidden(
                "your organisation is not in the partner directory: "
                "an operator adds it before it can register a webhook"
            )
        await store.register(uow.session, organization_id, url, secret, uow.now())
    return RegisteredWebhook(url=url, secret=secret)


async def _in_directory(uow: PartnersUnitOfWork, organization_id: str) -> bool:
    try:
        uuid.UUID(organization_id)
    except ValueError:
        return False  # not an id the directory could hold
    return await directory_store.organization_exists(uow.session, organization_id)


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
    A destination the rules refuse is not connected to: that delivery fails at once with the
    reason. How many were attempted."""
    settings = uow.settings
    rules = target_rules(settings)
    async with uow.transaction():
        now = uow.now()
        due = await store.due_deliveries(uow.session, now, limit)
        if not due:
            return 0
        async with uow.open_webhook_sender(settings.webhook_timeout_seconds) as sender:
            for row in due:
                result = await _attempt(uow, sender, rules, row, now)
                await store.record_attempt(uow.session, row["id"], result, now)
    return len(due)


async def _attempt(
    uow: PartnersUnitOfWork,
    sender: WebhookSender,
    rules: TargetRules,
    row: Mapping[Any, Any],  # a due delivery with its webhook
    now: datetime,
) -> AttemptResult:
    """One delivery: refused without a connection, or signed and sent to the address that
    was checked."""
    destination = await _destination(uow, rules, row["url"])
    if destination.refused is not None:
        return refused_attempt(row["attempts"], destination.refused)
    if destination.address is None:
        answer = Answer(error=destination.unresolved)
    else:
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
            address=destination.address,
        )
    return after_attempt(
        row["attempts"],
        answer.status_code,
        answer.error,
        max_attempts=uow.settings.webhook_max_attempts,
        now=now,
    )


@dataclass(frozen=True)
class _Destination:
    """Where one delivery may connect, or why it may not."""

    address: str | None = None
    refused: str | None = None  # the rules refuse it: failed at once, no connection
    unresolved: str | None = None  # the name did not resolve: retried like any failure


async def _destination(uow: PartnersUnitOfWork, rules: TargetRules, url: str) -> _Destination:
    """The registered URL checked again under today's settings, and its host resolved: every
    address it resolves to must be allowed, and the sender connects to the first."""
    refusal = rules.url_refusal(url)
    if refusal is not None:
        return _Destination(refused=refusal)
    host, port = host_and_port(url)
    literal = ip_literal(host)  # url_refusal has refused anything that is not an address
    if literal is not None:
        return _Destination(address=str(literal))
    try:
        found = await uow.resolve_host(host, port)
    except OSError as exc:
        return _Destination(unresolved=f"could not resolve {host}: {exc}"[:500])
    addresses: list[IPAddress] = []
    for address in found:
        try:
            addresses.append(ipaddress.ip_address(address))
        except ValueError:
            return _Destination(refused=f"{host} resolves to {address!r}, not an address")
    if not addresses:
        return _Destination(unresolved=f"could not resolve {host}: no address")
    refusal = rules.resolved_refusal(host, addresses)
    if refusal is not None:
        return _Destination(refused=refusal)
    return _Destination(address=str(addresses[0]))
