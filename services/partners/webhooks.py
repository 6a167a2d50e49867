"""Webhooks to partners: signed, retried with exponential backoff, logged, never blocking.

Each delivery is POSTed with ``Upstream-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the partner's secret>``. While a rotated secret's previous value is still
valid, a second ``v1=`` signature made with it is added, so receivers verify without a gap.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select, update

from services.partners.adapters.tables import deliveries, webhooks
from services.partners.settings import PartnersSettings
from shared.events.envelope import utc_now
from shared.service import TimerContext

SIGNATURE_HEADER = "Upstream-Signature"
TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets_in_force: list[str], timestamp: int, body: bytes) -> str:
    return ",".join(
        [f"t={timestamp}", *(f"v1={signature(s, timestamp, body)}" for s in secrets_in_force)]
    )


def verify(secret: str, header: str, body: bytes, *, now: int) -> bool:
    """What a partner's receiver does: a matching v1 signature on a recent timestamp."""
    parts = [part.split("=", 1) for part in header.split(",") if "=" in part]
    timestamps = [int(v) for k, v in parts if k == "t" and v.isdigit()]
    if not timestamps or abs(now - timestamps[0]) > TOLERANCE_SECONDS:
        return False
    expected = signature(secret, timestamps[0], body)
    return any(k == "v1" and hmac.compare_digest(v, expected) for k, v in parts)


def backoff(attempts: int) -> timedelta:
    """10 s, 20 s, 40 s … capped at an hour."""
    return timedelta(seconds=min(3600, 10 * 2 ** max(0, attempts - 1)))


async def deliver_due(
    context: TimerContext, *, client: httpx.AsyncClient | None = None, limit: int = 50
) -> int:
    """Send the deliveries whose time has come; one failure never holds up the others."""
    settings = context.settings
    assert isinstance(settings, PartnersSettings)
    now = utc_now()
    async with context.sessions() as session, session.begin():
        due = (
            (
                await session.execute(
                    select(
                        deliveries,
                        webhooks.c.url,
                        webhooks.c.secret,
                        webhooks.c.previous_secret,
                        webhooks.c.previous_valid_until,
                    )
                    .join(webhooks, webhooks.c.organization_id == deliveries.c.organization_id)
                    .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now)
                    .order_by(deliveries.c.next_attempt_at)
                    .limit(limit)
                    .with_for_update(of=deliveries, skip_locked=True)
                )
            )
            .mappings()
            .all()
        )
        if not due:
            return 0
        owned = client is None
        http = client or httpx.AsyncClient(timeout=settings.webhook_timeout_seconds)
        try:
            for row in due:
                await _attempt(session, http, row, settings, now)
        finally:
            if owned:
                await http.aclose()
    return len(due)


async def _attempt(
    session, http: httpx.AsyncClient, row, settings: PartnersSettings, now: datetime
) -> None:
    body = json.dumps(row["body"], separators=(",", ":"), sort_keys=True).encode()
    in_force = [row["secret"]]
    if row["previous_secret"] and row["previous_valid_until"] and row["previous_valid_until"] > now:
        in_force.append(row["previous_secret"])
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Upstream-Webhooks/1",
        "Upstream-Delivery": row["id"],
        "Upstream-Event": row["event"],
        SIGNATURE_HEADER: signature_header(in_force, int(now.timestamp()), body),
    }
    attempts = row["attempts"] + 1
    status_code: int | None = None
    error: str | None = None
    try:
        response = await http.post(row["url"], content=body, headers=headers)
        status_code = response.status_code
        if 200 <= status_code < 300:
            await session.execute(
                update(deliveries)
                .where(deliveries.c.id == row["id"])
                .values(
                    status="delivered",
                    attempts=attempts,
                    last_status_code=status_code,
                    last_error=None,
                    delivered_at=now,
                )
            )
            return
        error = f"answered {status_code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    given_up = attempts >= settings.webhook_max_attempts
    await session.execute(
        update(deliveries)
        .where(deliveries.c.id == row["id"])
        .values(
            status="failed" if given_up else "pending",
            attempts=attempts,
            last_status_code=status_code,
            last_error=error,
            next_attempt_at=now + backoff(attempts),
        )
    )
