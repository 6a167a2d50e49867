"""Email deliveries in the database: queued with the change they report, swept by the
worker, retried with backoff and logged, like webhook deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.partners.adapters.tables import email_deliveries, offers, requests
from services.partners.domain.notifications import EmailKind
from services.partners.domain.webhooks import AttemptResult, DeliveryStatus
from shared.db import fetch_all, update_where


async def add(session: AsyncSession, **values: Any) -> None:
    """Queued once per offer, kind (an ``EmailKind``) and address (a repeat is ignored)."""
    values["kind"] = EmailKind(values["kind"]).value
    await session.execute(
        pg_insert(email_deliveries)
        .values(status=DeliveryStatus.PENDING.value, attempts=0, **values)
        .on_conflict_do_nothing(index_elements=["offer_id", "kind", "to_address"])
    )


async def due(session: AsyncSession, now: datetime, limit: int) -> Sequence[RowMapping]:
    return await fetch_all(
        session,
        select(email_deliveries)
        .where(
            email_deliveries.c.status == DeliveryStatus.PENDING.value,
            email_deliveries.c.next_attempt_at <= now,
        )
        .order_by(email_deliveries.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True),
    )


async def record_attempt(
    session: AsyncSession,
    delivery_id: str,
    result: AttemptResult,
    now: datetime,
    *,
    erase_body: bool = False,
) -> None:
    """The attempt's result; ``erase_body`` once it is final, sent or given up (a sign-in
    link's token stays in the database only while its email waits to go)."""
    values: dict[str, Any] = {
        "status": result.status.value,
        "attempts": result.attempts,
        "last_error": result.last_error,
    }
    if result.next_attempt_at is not None:
        values["next_attempt_at"] = result.next_attempt_at
    if result.status is DeliveryStatus.DELIVERED:
        values["delivered_at"] = now
    if erase_body and result.status in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED):
        values["body"] = "(erased: it held a sign-in link)"
    await update_where(session, email_deliveries, {"id": delivery_id}, values)


async def log_of(session: AsyncSession, organization_id: str) -> Sequence[RowMapping]:
    return await fetch_all(
        session,
        select(email_deliveries)
        .where(email_deliveries.c.organization_id == organization_id)
        .order_by(email_deliveries.c.created_at.desc())
        .limit(200),
    )


async def offers_to_remind(
    session: AsyncSession, now: datetime, until: datetime, limit: int
) -> Sequence[RowMapping]:
    """Offers still unanswered whose deadline falls before ``until``, with no reminder
    queued yet, and the urgency from their packet."""
    reminded = exists().where(
        and_(
            email_deliveries.c.offer_id == offers.c.id,
            email_deliveries.c.kind == EmailKind.OFFER_REMINDER.value,
        )
    )
    return await fetch_all(
        session,
        select(
            offers.c.id,
            offers.c.organization_id,
            offers.c.need,
            offers.c.respond_by,
            requests.c.packet["urgency"].astext.label("urgency"),
        )
        .join(requests, requests.c.id == offers.c.request_id)
        .where(
            offers.c.status == "offered",
            offers.c.respond_by > now,
            offers.c.respond_by <= until,
            ~reminded,
        )
        .order_by(offers.c.respond_by)
        .limit(limit),
    )
