"""The offer lifecycle: every status, which may follow which, the sets the rest of the
service asks about, and how long a partner has to answer. Pure rules, no I/O.

A partner accepts or declines an offer; an accepted offer moves to in progress (as often as
the partner records progress) and ends with an outcome. An offer nobody answered expires.
Until it ends, an offer is withdrawn when consent is withdrawn, the case closes, or (still
unanswered) its service pauses intake. The need then goes to the next partner, unless the
case itself has stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.errors import Conflict
from shared.vocabulary import Need, OfferStatus, Outcome

S = OfferStatus
ALLOWED: dict[OfferStatus, frozenset[OfferStatus]] = {
    S.OFFERED: frozenset({S.ACCEPTED, S.DECLINED, S.EXPIRED, S.WITHDRAWN}),
    S.ACCEPTED: frozenset({S.IN_PROGRESS, S.OUTCOME_RECORDED, S.DECLINED, S.WITHDRAWN}),
    # Progress may be recorded again and again, each time with a new note.
    S.IN_PROGRESS: frozenset({S.IN_PROGRESS, S.OUTCOME_RECORDED, S.WITHDRAWN}),
    S.OUTCOME_RECORDED: frozenset(),
    S.DECLINED: frozenset(),
    S.EXPIRED: frozenset(),
    S.WITHDRAWN: frozenset(),
}

# Still open: the partner holds the packet, and the offer counts against its capacity.
ACTIVE_STATUSES = frozenset(s for s in OfferStatus if ALLOWED[s])
TERMINAL_STATUSES = frozenset(OfferStatus) - ACTIVE_STATUSES
# Waiting for the partner's answer: what expires, and what a pause hands on.
PENDING_STATUSES = frozenset({S.OFFERED})
# Ended without the partner's work (it declined, or the offer was taken away): the partner
# sees nothing more of the case.
GONE_STATUSES = frozenset({S.DECLINED, S.EXPIRED, S.WITHDRAWN})
# What the partner's inbox shows: open offers and the ones it finished.
VISIBLE_STATUSES = frozenset(OfferStatus) - GONE_STATUSES
# A partner's record: accepted counts what it took, made everything not taken away.
TAKEN_STATUSES = frozenset({S.ACCEPTED, S.IN_PROGRESS, S.OUTCOME_RECORDED})
ON_RECORD_STATUSES = frozenset(OfferStatus) - {S.WITHDRAWN}

_BECOMING = {
    S.OFFERED: "offered again",
    S.ACCEPTED: "accepted",
    S.IN_PROGRESS: "in progress",
    S.OUTCOME_RECORDED: "given an outcome",
    S.DECLINED: "declined",
    S.EXPIRED: "expired",
    S.WITHDRAWN: "withdrawn",
}


class OfferTransitionRefused(Conflict):
    """The offer cannot go to ``target`` from ``current``; ``allowed`` is where it can go
    (a 409 with ``current_status`` and ``allowed``)."""

    def __init__(self, current: OfferStatus, target: OfferStatus, reason: str) -> None:
        super().__init__(reason, current.value, sorted(ALLOWED[current]))
        self.current, self.target = current, target


def transition(current: OfferStatus, target: OfferStatus) -> OfferStatus:
    """The next status, or OfferTransitionRefused saying why and what is allowed instead."""
    if target not in ALLOWED[current]:
        allowed = ", ".join(sorted(ALLOWED[current])) or "none: the offer is finished"
        raise OfferTransitionRefused(
            current,
            target,
            f"an offer that is {current} cannot be {_BECOMING[target]}; allowed: {allowed}",
        )
    return target


@dataclass(frozen=True)
class Offer:
    """One offer of one need of a case to one partner service."""

    id: str
    request_id: str
    case_id: str
    need: Need
    service_id: str
    organization_id: str
    status: OfferStatus
    respond_by: datetime
    attempt: int
    outcome: Outcome | None = None


# -- the deadline -------------------------------------------------------------------------

DEFAULT_URGENCY = "medium"
DEFAULT_RESPONSE_HOURS = 72.0  # an urgency the settings do not name: as for medium


def respond_by(
    offered_at: datetime, urgency: str | None, response_hours: Mapping[str, float]
) -> datetime:
    """When the partner must have answered: ``response_hours`` by the case's urgency
    (a case without one counts as medium)."""
    hours = response_hours.get(urgency or DEFAULT_URGENCY, DEFAULT_RESPONSE_HOURS)
    return offered_at + timedelta(hours=hours)
