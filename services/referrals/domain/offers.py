"""The offers partners make on a case, as this service mirrors them: the partners service
owns the offer lifecycle; this service keeps a copy for the caseworker, brought up to date
in the order the changes happened, not the order they arrived (``domain/needs.py`` moves
the need and, through it, the case)."""

from __future__ import annotations

from datetime import datetime

from shared.vocabulary import OfferStatus

# Offer states that still need something from a partner.
PENDING_OFFER_STATUSES = frozenset(
    {OfferStatus.OFFERED, OfferStatus.ACCEPTED, OfferStatus.IN_PROGRESS}
)
# An offer the partner holds and should report progress on: it can be overdue.
FOLLOWED_UP = frozenset({OfferStatus.ACCEPTED, OfferStatus.IN_PROGRESS})

# An offer's own steps: at one time, a later step wins over an earlier one.
_STEP: dict[OfferStatus, int] = {
    OfferStatus.OFFERED: 0,
    OfferStatus.ACCEPTED: 1,
    OfferStatus.IN_PROGRESS: 2,
    OfferStatus.OUTCOME_RECORDED: 3,
    OfferStatus.DECLINED: 3,
    OfferStatus.EXPIRED: 3,
    OfferStatus.WITHDRAWN: 3,
}


def offer_update_applies(
    current: OfferStatus | None, current_at: datetime | None, new: OfferStatus, at: datetime
) -> bool:
    """Whether a report about an offer brings its mirror up to date: the mirror knows
    nothing yet, or the report is newer, or of the same time and a later step of the
    offer's lifecycle. An older one only fills in what the mirror does not know."""
    if current is None or current_at is None:
        return True
    if at != current_at:
        return at > current_at
    return _STEP[new] >= _STEP[current]


def overdue_applies(current: OfferStatus, current_at: datetime, overdue_at: datetime) -> bool:
    """An overdue report marks the offer unless it has moved on since (an outcome, a
    decline, progress after the report was made)."""
    return current in FOLLOWED_UP and overdue_at >= current_at


def still_overdue(overdue_at: datetime | None, new: OfferStatus, at: datetime) -> bool:
    """After a report at ``at``: an overdue mark stays only while the offer is still
    followed up and the report is older than the mark (progress clears it; an outcome,
    decline or withdrawal ends it)."""
    return overdue_at is not None and new in FOLLOWED_UP and at < overdue_at
