"""What the offers partners make on a case mean for the case: the partners service owns the
offer lifecycle; this service mirrors each offer and moves the case along with it."""

from __future__ import annotations

from collections.abc import Iterable

from services.referrals.domain.lifecycle import CaseStatus
from shared.vocabulary import OfferStatus

# Offer states that still need something from a partner.
PENDING_OFFER_STATUSES = frozenset(
    {OfferStatus.OFFERED, OfferStatus.ACCEPTED, OfferStatus.IN_PROGRESS}
)

# The case follows its offers forward, and only from the status just before.
_CASE_FOLLOWS: dict[OfferStatus, tuple[frozenset[CaseStatus], CaseStatus]] = {
    OfferStatus.OFFERED: (
        frozenset({CaseStatus.READY_FOR_ROUTING, CaseStatus.UNROUTABLE}),
        CaseStatus.OFFERED,
    ),
    OfferStatus.ACCEPTED: (frozenset({CaseStatus.OFFERED}), CaseStatus.ACCEPTED),
    OfferStatus.IN_PROGRESS: (frozenset({CaseStatus.ACCEPTED}), CaseStatus.IN_PROGRESS),
}


def case_status_after(offer: OfferStatus, case: CaseStatus) -> CaseStatus | None:
    """The status a case moves to when one of its offers reaches ``offer``; None: it stays.
    (A decline, expiry or withdrawal leaves the case as it is: the partners service hands
    the need on by itself. An outcome closes the case only once every offer has one, see
    ``every_offer_answered``.)"""
    follows = _CASE_FOLLOWS.get(offer)
    if follows is None or case not in follows[0]:
        return None
    return follows[1]


def every_offer_answered(statuses: Iterable[OfferStatus]) -> bool:
    """No offer of the case still waits on a partner."""
    return not any(status in PENDING_OFFER_STATUSES for status in statuses)
