"""The events the referrals service consumes, by full event type name."""

from __future__ import annotations

from shared.messaging.consumer import Handler

EVENT_HANDLERS: dict[str, Handler] = {}
