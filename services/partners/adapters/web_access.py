"""The web inbox's sign-in in the database: the addresses operators register for a partner,
sign-in links and sessions (stored as hashes of their tokens, never the tokens), and the
requests for links (by a hash of the address asked for) that the rate limit counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.partners.adapters.tables import (
    SENT_SIGN_IN_EMAIL,
    email_deliveries,
    inbox_addresses,
    sign_in_links,
    sign_in_requests,
    web_sessions,
)
from shared.db import (
    advisory_lock,
    fetch_all,
    fetch_one,
    oldest_first_deletion,
    rows_affected,
)


async def addresses_of(session: AsyncSession, organization_id: str) -> list[str]:
    rows = await fetch_all(
        session,
        select(inbox_addresses.c.email)
        .where(inbox_addresses.c.organization_id == organization_id)
        .order_by(inbox_addresses.c.email),
    )
    return [row["email"] for row in rows]


async def replace_addresses(
    session: AsyncSession, organization_id: str, emails: list[str], now: datetime
) -> None:
    """The organisation's addresses become ``emails``; an address dropped loses its way in at
    once: its sessions end and its unused links are spent."""
    await session.execute(
        delete(inbox_addresses).where(inbox_addresses.c.organization_id == organization_id)
    )
    dropped_sessions = web_sessions.c.organization_id == organization_id
    dropped_links = sign_in_links.c.organization_id == organization_id
    if emails:
        dropped_sessions &= web_sessions.c.email.not_in(emails)
        dropped_links &= sign_in_links.c.email.not_in(emails)
    await session.execute(
        update(web_sessions)
        .where(dropped_sessions, web_sessions.c.ended_at.is_(None))
        .values(ended_at=now)
    )
    await session.execute(
        update(sign_in_links)
        .where(dropped_links, sign_in_links.c.used_at.is_(None))
        .values(used_at=now)
    )
    if emails:
        await session.execute(
            insert(inbox_addresses),
            [{"email": email, "organization_id": organization_id} for email in emails],
        )


async def taken_elsewhere(
    session: AsyncSession, organization_id: str, emails: list[str]
) -> list[str]:
    """The addresses already registered to another organisation."""
    rows = await fetch_all(
        session,
        select(inbox_addresses.c.email).where(
            inbox_addresses.c.email.in_(emails),
            inbox_addresses.c.organization_id != organization_id,
        ),
    )
    return [row["email"] for row in rows]


async def organization_of_address(session: AsyncSession, email: str) -> str | None:
    row = await fetch_one(
        session,
        select(inbox_addresses.c.organization_id).where(inbox_addresses.c.email == email),
    )
    return row["organization_id"] if row is not None else None


async def count_requests(session: AsyncSession, address_key: str, since: datetime) -> int:
    """The address's requests since then, the address locked till the transaction ends: two
    requests at once are counted one after the other, so neither slips past the limit."""
    await advisory_lock(session, f"sign-in|{address_key}")
    count = await session.scalar(
        select(func.count())
        .select_from(sign_in_requests)
        .where(sign_in_requests.c.address_key == address_key, sign_in_requests.c.at > since)
    )
    return count or 0


async def add_request(
    session: AsyncSession, request_id: str, address_key: str, at: datetime
) -> None:
    await session.execute(
        insert(sign_in_requests).values(id=request_id, address_key=address_key, at=at)
    )


async def prune_requests(session: AsyncSession, before: datetime) -> None:
    await session.execute(delete(sign_in_requests).where(sign_in_requests.c.at <= before))


async def add_link(session: AsyncSession, **values: Any) -> None:
    await session.execute(insert(sign_in_links).values(**values))


def _still_registered(email: Any, organization_id: Any) -> Any:
    """The address is (still) one the operator registered for that organisation."""
    return (
        select(inbox_addresses.c.email)
        .where(
            inbox_addresses.c.email == email, inbox_addresses.c.organization_id == organization_id
        )
        .exists()
    )


async def use_link(session: AsyncSession, token_hash: str, now: datetime) -> RowMapping | None:
    """Marks the link used if it is unused, in date and its address still registered,
    returning it; None otherwise (so a link works once, however many requests race)."""
    return await fetch_one(
        session,
        update(sign_in_links)
        .where(
            sign_in_links.c.token_hash == token_hash,
            sign_in_links.c.used_at.is_(None),
            sign_in_links.c.expires_at > now,
            _still_registered(sign_in_links.c.email, sign_in_links.c.organization_id),
        )
        .values(used_at=now)
        .returning(sign_in_links),
    )


async def add_session(session: AsyncSession, **values: Any) -> None:
    await session.execute(insert(web_sessions).values(**values))


async def live_session(session: AsyncSession, token_hash: str, now: datetime) -> RowMapping | None:
    return await fetch_one(
        session,
        select(web_sessions).where(
            web_sessions.c.token_hash == token_hash,
            web_sessions.c.ended_at.is_(None),
            web_sessions.c.expires_at > now,
            _still_registered(web_sessions.c.email, web_sessions.c.organization_id),
        ),
    )


async def end_session(session: AsyncSession, token_hash: str, now: datetime) -> bool:
    return (
        await rows_affected(
            session,
            update(web_sessions)
            .where(web_sessions.c.token_hash == token_hash, web_sessions.c.ended_at.is_(None))
            .values(ended_at=now),
        )
        > 0
    )


_EXPIRED = [
    *(oldest_first_deletion(table, "expires_at") for table in (sign_in_links, web_sessions)),
    # A sign-in e-mail's row keeps its address once its body (the link) is erased; from
    # ix_email_deliveries_sign_in, whose condition this is.
    oldest_first_deletion(email_deliveries, "created_at", SENT_SIGN_IN_EMAIL),
]


async def delete_sign_ins_expired_before(
    session: AsyncSession, cutoff: datetime, batch: int
) -> int:
    """Sign-in links and web sessions that expired before ``cutoff``, and sign-in e-mails
    written before it and no longer waiting to go, oldest first: at most ``batch`` of each."""
    deleted = 0
    for expired in _EXPIRED:
        deleted += await rows_affected(session, expired, {"before": cutoff, "limit": batch})
    return deleted
