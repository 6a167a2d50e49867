"""Erasure in the partners service (``service_layer/erasure.py``): everything held about a
council's cases: their route requests (and packets), offers, webhook and email deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.partners.adapters.tables import deliveries, email_deliveries, offers, requests
from shared.db import fetch_all, rows_affected


async def offer_ids(session: AsyncSession, council: str, case_ids: Sequence[str]) -> list[str]:
    rows = await fetch_all(
        session,
        select(offers.c.id)
        .join(requests, requests.c.id == offers.c.request_id)
        .where(offers.c.case_id.in_(case_ids), requests.c.council == council),
    )
    return [str(r["id"]) for r in rows]


async def erase(
    session: AsyncSession, council: str, case_ids: Sequence[str], offer_ids: Sequence[str]
) -> dict[str, int]:
    """Delete the cases' records, children first; how many of each kind."""
    return {
        "email_deliveries": await rows_affected(
            session, delete(email_deliveries).where(email_deliveries.c.offer_id.in_(offer_ids))
        ),
        "webhook_deliveries": await rows_affected(
            session, delete(deliveries).where(deliveries.c.offer_id.in_(offer_ids))
        ),
        "offers": await rows_affected(session, delete(offers).where(offers.c.id.in_(offer_ids))),
        "packets": await rows_affected(
            session,
            delete(requests).where(requests.c.case_id.in_(case_ids), requests.c.council == council),
        ),
    }


# -- retention ------------------------------------------------------------------------------

ENDED = ("declined", "expired", "withdrawn")
ROUTING = ("open", "waiting")
# Written into the statement, not bound: a prepared statement's generic plan can use the
# partial index of ended offers (ix_offers_ended) only if its condition is in the SQL.
_IS_ENDED = text("offers.status IN (" + ", ".join(f"'{status}'" for status in ENDED) + ")")


async def delete_ended_offers_before(session: AsyncSession, cutoff: datetime, batch: int) -> int:
    """Offers declined, expired or withdrawn before ``cutoff`` whose need is no longer being
    routed (an open or waiting request still needs them, not to offer the same partner
    twice), with their deliveries: at most ``batch``."""
    due = (
        select(offers.c.id)
        .join(requests, requests.c.id == offers.c.request_id)
        .where(
            _IS_ENDED,
            offers.c.updated_at < cutoff,
            requests.c.status.not_in(ROUTING),
        )
        .order_by(offers.c.updated_at)  # oldest first: read from ix_offers_ended
        .limit(batch)
    )
    ids = [str(r["id"]) for r in await fetch_all(session, due)]
    if not ids:
        return 0
    await session.execute(delete(email_deliveries).where(email_deliveries.c.offer_id.in_(ids)))
    await session.execute(delete(deliveries).where(deliveries.c.offer_id.in_(ids)))
    return await rows_affected(session, delete(offers).where(offers.c.id.in_(ids)))
