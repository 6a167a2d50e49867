"""Partners' webhooks and the log of their deliveries, in the database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.partners.adapters.tables import deliveries, webhooks
from services.partners.domain.webhooks import AttemptResult, DeliveryStatus
from shared.db import fetch_all, fetch_one


async def register(
    session: AsyncSession, organization_id: str, url: str, secret: str, now: datetime
) -> None:
    """The partner's one webhook, replaced with a new URL and secret if it had one."""
    statement = insert(webhooks).values(organization_id=organization_id, url=url, secret=secret)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[webhooks.c.organization_id],
            set_={
                "url": url,
                "secret": secret,
                "previous_secret": None,
                "previous_valid_until": None,
                "updated_at": now,
            },
        )
    )


async def webhook_for_update(session: AsyncSession, organization_id: str) -> RowMapping | None:
    return await fetch_one(
        session,
        select(webhooks).where(webhooks.c.organization_id == organization_id).with_for_update(),
    )


async def rotate(
    session: AsyncSession,
    organization_id: str,
    secret: str,
    previous: str,
    previous_valid_until: datetime,
    now: datetime,
) -> None:
    await session.execute(
        update(webhooks)
        .where(webhooks.c.organization_id == organization_id)
        .values(
            secret=secret,
            previous_secret=previous,
            previous_valid_until=previous_valid_until,
            updated_at=now,
        )
    )


async def has_webhook(session: AsyncSession, organization_id: str) -> bool:
    registered = await session.scalar(
        select(webhooks.c.organization_id).where(webhooks.c.organization_id == organization_id)
    )
    return registered is not None


async def add_delivery(
    session: AsyncSession,
    delivery_id: str,
    organization_id: str,
    offer_id: str | None,
    event: str,
    body: dict[str, Any],
    now: datetime,
) -> None:
    await session.execute(
        insert(deliveries).values(
            id=delivery_id,
            organization_id=organization_id,
            offer_id=offer_id,
            event=event,
            body=body,
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            next_attempt_at=now,
        )
    )


async def due_deliveries(session: AsyncSession, now: datetime, limit: int) -> Sequence[RowMapping]:
    """Pending deliveries whose time has come, with their webhook's URL and secrets; rows
    another worker holds are skipped, and these stay locked until the sweep commits."""
    return await fetch_all(
        session,
        select(
            deliveries,
            webhooks.c.url,
            webhooks.c.secret,
            webhooks.c.previous_secret,
            webhooks.c.previous_valid_until,
        )
        .join(webhooks, webhooks.c.organization_id == deliveries.c.organization_id)
        .where(
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.next_attempt_at <= now,
        )
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
        .with_for_update(of=deliveries, skip_locked=True),
    )


async def record_attempt(
    session: AsyncSession, delivery_id: str, result: AttemptResult, now: datetime
) -> None:
    values: dict[str, Any] = {
        "status": result.status.value,
        "attempts": result.attempts,
        "last_status_code": result.last_status_code,
        "last_error": result.last_error,
    }
    if result.status is DeliveryStatus.DELIVERED:
        values["delivered_at"] = now
    if result.next_attempt_at is not None:
        values["next_attempt_at"] = result.next_attempt_at
    await session.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(values))


async def delivery_log(
    session: AsyncSession, organization_id: str, limit: int = 200
) -> Sequence[RowMapping]:
    """A partner's deliveries, newest first."""
    return await fetch_all(
        session,
        select(deliveries)
        .where(deliveries.c.organization_id == organization_id)
        .order_by(deliveries.c.created_at.desc())
        .limit(limit),
    )
