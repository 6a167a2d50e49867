"""The kinds of email a partner is sent (one word each, stored on every queued delivery in
``email_deliveries.kind``): one place for the service layer that queues them and the adapter
that asks which were queued."""

from __future__ import annotations

from enum import StrEnum


class EmailKind(StrEnum):
    OFFER_MADE = "offer.made"  # a new offer
    OFFER_REMINDER = "offer.reminder"  # still unanswered as its deadline nears
    OFFER_EXPIRED = "offer.expired"  # not answered in time, handed on
    OFFER_OVERDUE = "offer.overdue"  # accepted, and past its follow-up deadline
    SIGN_IN = "sign-in"  # a sign-in link: its body is erased once sent or given up
