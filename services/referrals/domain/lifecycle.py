"""The case lifecycle: every status, and which may follow which, in one pure function."""

from __future__ import annotations

from enum import StrEnum

from shared.errors import Conflict
from shared.vocabulary import Outcome


class CaseStatus(StrEnum):
    RECEIVED = "received"
    ASSESSED = "assessed"
    AWAITING_CONSENT = "awaiting_consent"  # no basis to share with a partner yet
    READY_FOR_ROUTING = "ready_for_routing"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    UNROUTABLE = "unroutable"  # escalated to the council team
    CLOSED = "closed"  # with an outcome
    WITHDRAWN = "withdrawn"


S = CaseStatus
# Withdrawing consent returns a routed case to AWAITING_CONSENT; closing needs an outcome.
ALLOWED: dict[CaseStatus, frozenset[CaseStatus]] = {
    S.RECEIVED: frozenset({S.ASSESSED, S.WITHDRAWN}),
    S.ASSESSED: frozenset({S.READY_FOR_ROUTING, S.AWAITING_CONSENT, S.CLOSED, S.WITHDRAWN}),
    S.AWAITING_CONSENT: frozenset({S.READY_FOR_ROUTING, S.CLOSED, S.WITHDRAWN}),
    S.READY_FOR_ROUTING: frozenset({S.OFFERED, S.UNROUTABLE, S.AWAITING_CONSENT, S.WITHDRAWN}),
    S.OFFERED: frozenset({S.ACCEPTED, S.UNROUTABLE, S.AWAITING_CONSENT, S.WITHDRAWN}),
    S.ACCEPTED: frozenset({S.IN_PROGRESS, S.CLOSED, S.AWAITING_CONSENT, S.WITHDRAWN}),
    S.IN_PROGRESS: frozenset({S.CLOSED, S.AWAITING_CONSENT, S.WITHDRAWN}),
    S.UNROUTABLE: frozenset({S.READY_FOR_ROUTING, S.CLOSED, S.WITHDRAWN}),
    S.CLOSED: frozenset(),
    S.WITHDRAWN: frozenset(),
}

OPEN_STATUSES = frozenset(s for s in CaseStatus if ALLOWED[s])
TERMINAL_STATUSES = frozenset(CaseStatus) - OPEN_STATUSES
# With partners already: new needs are routed too, and a consent withdrawal takes it back.
ROUTED_STATUSES = frozenset({S.READY_FOR_ROUTING, S.OFFERED, S.ACCEPTED, S.IN_PROGRESS})
# Some of its needs are with partners: an unroutable case may have others offered or met.
WITH_PARTNERS_STATUSES = ROUTED_STATUSES | {S.UNROUTABLE}


class TransitionRefused(Conflict):
    """The case cannot go to ``target`` from ``current`` (a 409 with ``current_status`` and
    the statuses ``allowed`` instead)."""

    def __init__(self, current: CaseStatus, target: CaseStatus, reason: str) -> None:
        super().__init__(reason, current.value, sorted(ALLOWED[current]))
        self.current, self.target = current, target


def transition(
    current: CaseStatus, target: CaseStatus, *, outcome: Outcome | None = None
) -> CaseStatus:
    """The next status, or TransitionRefused saying why and what is allowed instead."""
    if target not in ALLOWED[current]:
        allowed = ", ".join(sorted(ALLOWED[current])) or "none: the case is finished"
        raise TransitionRefused(
            current, target, f"a {current} case cannot become {target}; allowed: {allowed}"
        )
    if target is CaseStatus.CLOSED and outcome is None:
        raise TransitionRefused(current, target, "a case cannot close without an outcome")
    return target
