"""Webhooks to partners: how they are signed, how often they are retried, and how a partner
verifies them. Pure rules; sending is an adapter (``adapters/webhook_sender.py``).

Each delivery is POSTed with ``Upstream-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the partner's secret>``. While a rotated secret's previous value is still
valid, a second ``v1=`` signature made with it is added, so receivers verify without a gap.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

SIGNATURE_HEADER = "Upstream-Signature"
TOLERANCE_SECONDS = 300
ROTATION_OVERLAP = timedelta(hours=24)  # how long a rotated-out secret keeps signing


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # to be sent (again) at next_attempt_at
    DELIVERED = "delivered"
    FAILED = "failed"  # given up after the last attempt


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets_in_force: list[str], timestamp: int, body: bytes) -> str:
    return ",".join(
        [f"t={timestamp}", *(f"v1={signature(s, timestamp, body)}" for s in secrets_in_force)]
    )


_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def verify(secret: str, header: str, body: bytes, *, now: int) -> bool:
    """What a partner's receiver does: a matching v1 signature on a recent timestamp."""
    parts = [part.split("=", 1) for part in header.split(",") if "=" in part]
    # ASCII digits, few of them (``isdigit`` takes "²", which ``int`` refuses).
    timestamps = [int(v) for k, v in parts if k == "t" and _TIMESTAMP.fullmatch(v)]
    if not timestamps or abs(now - timestamps[0]) > TOLERANCE_SECONDS:
        return False
    expected = signature(secret, timestamps[0], body)
    return any(k == "v1" and hmac.compare_digest(v, expected) for k, v in parts)


def backoff(attempts: int) -> timedelta:
    """10 s, 20 s, 40 s … capped at an hour."""
    return timedelta(seconds=min(3600, 10 * 2 ** max(0, attempts - 1)))


def encoded(body: dict[str, Any]) -> bytes:
    """The bytes signed and sent: compact, keys sorted."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def secrets_in_force(
    secret: str, previous: str | None, previous_valid_until: datetime | None, now: datetime
) -> list[str]:
    if previous and previous_valid_until and previous_valid_until > now:
        return [secret, previous]
    return [secret]


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt leaves on the delivery."""

    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None  # None once delivered


def after_attempt(
    attempts_before: int,
    status_code: int | None,
    error: str | None,
    *,
    max_attempts: int,
    now: datetime,
) -> AttemptResult:
    """A 2xx answer delivers; anything else is retried with backoff until the last attempt."""
    attempts = attempts_before + 1
    if status_code is not None and 200 <= status_code < 300:
        return AttemptResult(DeliveryStatus.DELIVERED, attempts, status_code, None, None)
    if error is None:
        error = f"answered {status_code}"
    given_up = attempts >= max_attempts
    return AttemptResult(
        DeliveryStatus.FAILED if given_up else DeliveryStatus.PENDING,
        attempts,
        status_code,
        error,
        now + backoff(attempts),
    )


def refused_attempt(attempts_before: int, reason: str) -> AttemptResult:
    """A destination the rules refuse (``webhook_targets``): no connection is made and the
    delivery fails at once, with the reason, rather than being retried towards an address it
    may never reach; the partner sees why in its delivery log and registers a public URL."""
    return AttemptResult(
        DeliveryStatus.FAILED, attempts_before + 1, None, f"refused, not sent: {reason}", None
    )
