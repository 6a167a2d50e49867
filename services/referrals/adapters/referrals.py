"""Queries over referrals, their progress as the referrer sees it, and idempotency keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters import Row
from services.referrals.adapters.scope import referrals_visible_to
from services.referrals.adapters.tables import cases, idempotency_keys, referrals, timeline
from shared.auth import Principal
from shared.db import fetch_all, fetch_one

# Only first answers are stored, and a first answer is always "201 Created".
_CREATED = 201


# The statements of intake, built once: building and keying a statement for every
# referral cost more CPU than the database's work on it. Each value is bound.
_INSERT_REFERRAL = referrals.insert()
_STORED_ANSWER = select(idempotency_keys).where(
    idempotency_keys.c.organisation == bindparam("organisation"),
    idempotency_keys.c.key == bindparam("key"),
)
_STORE_ANSWER = (
    pg_insert(idempotency_keys).on_conflict_do_nothing().returning(idempotency_keys.c.key)
)


async def insert_referral(session: AsyncSession, **values: Any) -> None:
    await session.execute(_INSERT_REFERRAL, values)


async def visible_referral(
    session: AsyncSession, principal: Principal, referral_id: str
) -> Row | None:
    """The referral with its case's status and council, if the principal may see it."""
    return await fetch_one(
        session,
        select(
            referrals, cases.c.status.label("case_status"), cases.c.council.label("case_council")
        )
        .join(cases, cases.c.id == referrals.c.case_id)
        .where(referrals.c.id == referral_id, referrals_visible_to(principal)),
    )


async def progress_for_referrer(
    session: AsyncSession, referral: Row, *, with_opening: bool = True
) -> Sequence[Row]:
    """Timeline entries since the referral: status changes, and the referrer's own entries;
    nothing from other referrers. Without the opening, the case's first entry (a status
    with none before it) is left out too, so that a referral that opened the case and one
    that joined it read alike."""
    shown = timeline.c.status_to.is_not(None) | (timeline.c.actor_org == referral["referrer_org"])
    if not with_opening:
        shown = shown & (timeline.c.status_to.is_(None) | timeline.c.status_from.is_not(None))
    return await fetch_all(
        session,
        select(timeline)
        .where(
            timeline.c.case_id == referral["case_id"],
            timeline.c.referrer_visible,
            timeline.c.at >= referral["created_at"],
            shown,
        )
        .order_by(timeline.c.id),
    )


async def stored_answer(session: AsyncSession, organisation: str, key: str) -> Row | None:
    return await fetch_one(session, _STORED_ANSWER, {"organisation": organisation, "key": key})


async def store_answer(
    session: AsyncSession, organisation: str, key: str, request_hash: str, answer: dict[str, Any]
) -> bool:
    """Keep the first answer for the key; False if another request stored one meanwhile (its
    transaction committed while this one waited on the key)."""
    stored = await fetch_one(
        session,
        _STORE_ANSWER,
        {
            "organisation": organisation,
            "key": key,
            "request_hash": request_hash,
            "status_code": _CREATED,
            "response": answer,
        },
    )
    return stored is not None
