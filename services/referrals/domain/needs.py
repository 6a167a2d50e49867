"""Each need of a case on its own: its status, how partners' events and the council's
decisions move it, and the one function that derives the case's status from its needs.

Partners route need by need, so a case with food offered and debt advice unroutable is
both at once; the case status is a summary of its needs (``case_status``), never an event
of its own. Pure: no I/O.

**Order.** Partners' events about a need carry the time of the change (``at``, the partners
service's clock). A need remembers the time of the last partners' event applied to it
(``last_event_at``); an event older than that does not move it (it may still fill in a
milestone it missed), so a replayed or late event never takes a need backwards. Events of
one time (partners write a decline and the next offer in one transaction) are told apart by
the offer they are about: at the time of the last event applied, only the need's current
offer can end it, accept it or record its outcome; a later event about another offer means
partners moved on to that one. The use case also keeps each mirrored offer in its own
order (``domain/offers.py``) and moves the need only on a report that is news for its
offer. The council's own decisions (consent withdrawn, routed again, closed) are taken in
this service's transactions, in their order, and are not compared with partners' clocks:
they reset the need, and events about offers from before the reset no longer move it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from services.referrals.domain.lifecycle import CaseStatus
from shared.vocabulary import OfferStatus, Outcome


class NeedStatus(StrEnum):
    RECEIVED = "received"  # the case waits for its risk assessment
    ASSESSED = "assessed"  # assessed; not sent (e.g. held while a duplicate is settled)
    WAITING_FOR_CONSENT = "waiting_for_consent"  # no basis to share it with a partner yet
    ROUTING = "routing"  # with the partners service, looking for a partner (or handed on)
    WAITING_FOR_CAPACITY = "waiting_for_capacity"  # every partner that could take it is full
    OFFERED = "offered"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    UNROUTABLE = "unroutable"  # no partner can take it: back to the council
    MET = "met"  # an outcome that helped: support provided, partly resolved
    NOT_MET = "not_met"  # any other outcome (uncontactable, declined, not eligible, …)
    CLOSED = "closed"  # the council closed the case before this need had an outcome
    WITHDRAWN = "withdrawn"  # the case was withdrawn (or merged) before it had one


N = NeedStatus
FINAL = frozenset({N.MET, N.NOT_MET, N.CLOSED, N.WITHDRAWN})
OPEN = frozenset(NeedStatus) - FINAL
# The partners service holds the need: its events may move it.
WITH_PARTNERS = frozenset(
    {N.ROUTING, N.WAITING_FOR_CAPACITY, N.OFFERED, N.ACCEPTED, N.IN_PROGRESS, N.UNROUTABLE}
)
# Not yet with partners: sending the packet routes these.
NOT_SENT = frozenset({N.RECEIVED, N.ASSESSED, N.WAITING_FOR_CONSENT, N.UNROUTABLE})
MET_OUTCOMES = frozenset({Outcome.SUPPORT_PROVIDED, Outcome.PARTLY_RESOLVED})

# An open case is as far along as its most advanced open need…
_ADVANCE: tuple[tuple[NeedStatus, CaseStatus], ...] = (
    (N.IN_PROGRESS, CaseStatus.IN_PROGRESS),
    (N.ACCEPTED, CaseStatus.ACCEPTED),
    (N.OFFERED, CaseStatus.OFFERED),
    (N.ROUTING, CaseStatus.READY_FOR_ROUTING),
    (N.WAITING_FOR_CAPACITY, CaseStatus.READY_FOR_ROUTING),
    (N.ASSESSED, CaseStatus.ASSESSED),
)


def case_status(needs: Collection[NeedStatus], *, without_needs: CaseStatus) -> CaseStatus:
    """The case's status from the statuses of its needs, first rule that applies:

    1. no needs (an outreach case whose flag suggested none): ``without_needs``, the status
       the case's lifecycle gave it;
    2. every need final: ``withdrawn`` if any was withdrawn, else ``closed``;
    3. any open need ``received``: ``received`` (the case is not assessed yet);
    4. any open need ``unroutable``: ``unroutable`` — the council must act, whatever its
       other needs do, so the case no longer flips with the order of events;
    5. any open need ``waiting_for_consent``: ``awaiting_consent``;
    6. else the most advanced open need: in progress, accepted, offered, routing or waiting
       for capacity (``ready_for_routing``), assessed.
    """
    if not needs:
        return without_needs
    open_needs = {n for n in needs if n in OPEN}
    if not open_needs:
        return CaseStatus.WITHDRAWN if N.WITHDRAWN in needs else CaseStatus.CLOSED
    for need, status in (
        (N.RECEIVED, CaseStatus.RECEIVED),
        (N.UNROUTABLE, CaseStatus.UNROUTABLE),
        (N.WAITING_FOR_CONSENT, CaseStatus.AWAITING_CONSENT),
        *_ADVANCE,
    ):
        if need in open_needs:
            return status
    raise AssertionError(f"no rule for {sorted(open_needs)}")  # pragma: no cover


def status_for_outcome(outcome: Outcome) -> NeedStatus:
    return N.MET if outcome in MET_OUTCOMES else N.NOT_MET


def initial_status(case: CaseStatus) -> NeedStatus:
    """A need that joins a case (a new referral, a merge, consent for more needs) starts
    where the case is; a routed case sends it to partners next (``NOT_SENT``)."""
    return {
        CaseStatus.RECEIVED: N.RECEIVED,
        CaseStatus.AWAITING_CONSENT: N.WAITING_FOR_CONSENT,
        CaseStatus.CLOSED: N.CLOSED,
        CaseStatus.WITHDRAWN: N.WITHDRAWN,
    }.get(case, N.ASSESSED)


def after_case_decision(status: NeedStatus, target: CaseStatus, *, held: bool) -> NeedStatus:
    """What a decision about the whole case (assessed, consent sought, routed, closed,
    withdrawn) does to one need. Final needs keep their status; a need held for a possible
    duplicate is not routed until the hold is settled."""
    if status in FINAL:
        return status
    if target is CaseStatus.ASSESSED:
        return N.ASSESSED if status is N.RECEIVED else status
    if target is CaseStatus.AWAITING_CONSENT:
        return N.WAITING_FOR_CONSENT
    if target is CaseStatus.READY_FOR_ROUTING:
        if status in NOT_SENT:
            return N.ASSESSED if held else N.ROUTING
        return status
    if target is CaseStatus.CLOSED:
        return N.CLOSED
    if target is CaseStatus.WITHDRAWN:
        return N.WITHDRAWN
    return status


# -- partners' events --------------------------------------------------------------------


class Report(StrEnum):
    """What partners say about a need."""

    OFFERED = "offered"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    OUTCOME = "outcome"
    HANDED_ON = "handed_on"  # declined, expired or withdrawn: the need goes to the next
    WAITING = "waiting"  # every partner that could take it is full
    UNROUTABLE = "unroutable"


REPORT_OF_OFFER: dict[OfferStatus, Report] = {
    OfferStatus.OFFERED: Report.OFFERED,
    OfferStatus.ACCEPTED: Report.ACCEPTED,
    OfferStatus.IN_PROGRESS: Report.IN_PROGRESS,
    OfferStatus.OUTCOME_RECORDED: Report.OUTCOME,
    OfferStatus.DECLINED: Report.HANDED_ON,
    OfferStatus.EXPIRED: Report.HANDED_ON,
    OfferStatus.WITHDRAWN: Report.HANDED_ON,
}


@dataclass(frozen=True)
class NeedState:
    status: NeedStatus
    offer_id: str | None = None  # the offer partners hold it under now
    last_event_at: datetime | None = None  # the last partners' event applied
    outcome: Outcome | None = None


@dataclass(frozen=True)
class PartnerEvent:
    report: Report
    at: datetime
    offer_id: str | None = None  # none for waiting and unroutable
    outcome: Outcome | None = None


# Which need statuses each report moves, and to what.
_MOVES: dict[Report, tuple[frozenset[NeedStatus], NeedStatus | None]] = {
    Report.OFFERED: (WITH_PARTNERS, N.OFFERED),
    Report.ACCEPTED: (frozenset({N.ROUTING, N.WAITING_FOR_CAPACITY, N.OFFERED}), N.ACCEPTED),
    Report.IN_PROGRESS: (
        frozenset({N.ROUTING, N.WAITING_FOR_CAPACITY, N.OFFERED, N.ACCEPTED, N.IN_PROGRESS}),
        N.IN_PROGRESS,
    ),
    Report.OUTCOME: (WITH_PARTNERS - {N.UNROUTABLE}, None),  # met or not met
    Report.HANDED_ON: (frozenset({N.OFFERED, N.ACCEPTED, N.IN_PROGRESS}), N.ROUTING),
    Report.WAITING: (frozenset({N.ROUTING, N.OFFERED, N.UNROUTABLE}), N.WAITING_FOR_CAPACITY),
    Report.UNROUTABLE: (
        frozenset({N.ROUTING, N.WAITING_FOR_CAPACITY, N.OFFERED, N.UNROUTABLE}),
        N.UNROUTABLE,
    ),
}
# Reports about an offer already made.
_ABOUT_OFFER = frozenset({Report.ACCEPTED, Report.IN_PROGRESS, Report.OUTCOME, Report.HANDED_ON})


def after_partner_event(state: NeedState, event: PartnerEvent) -> NeedState:
    """The need after a partners' event; the same state when the event is older than the
    last one applied, is about an offer that is no longer the need's, or means nothing in
    the need's status (see the module's note on order). Applying it twice gives the same."""
    if state.last_event_at is not None and event.at < state.last_event_at:
        return state
    moves_from, target = _MOVES[event.report]
    if state.status not in moves_from:
        return state
    offer = event.offer_id
    tie = state.last_event_at is not None and event.at == state.last_event_at
    if event.report in _ABOUT_OFFER and state.offer_id != offer:
        # Of one time as the last event, only the need's own offer (or, when it has none,
        # any) moves it: partners end one offer and make the next in one transaction.
        if tie and state.offer_id is not None:
            return state
        if event.report is Report.HANDED_ON and (tie or state.offer_id is None):
            return state
    seen = replace(state, last_event_at=event.at)
    if event.report is Report.OUTCOME:
        assert event.outcome is not None  # an outcome report carries its outcome
        return replace(
            seen,
            status=status_for_outcome(event.outcome),
            offer_id=offer,
            outcome=event.outcome,
        )
    assert target is not None
    if event.report in (Report.HANDED_ON, Report.WAITING, Report.UNROUTABLE):
        offer = None
    return replace(seen, status=target, offer_id=offer)


# -- gaps in service -----------------------------------------------------------------------

# Which needs of a council's open cases a gap in service is about, by its reason: no
# partner could take them at all, or they wait (routing, or waiting for a place) too long.
_IN_GAP: dict[str, frozenset[NeedStatus]] = {
    "unroutable": frozenset({N.UNROUTABLE}),
    "waiting_too_long": frozenset({N.ROUTING, N.WAITING_FOR_CAPACITY}),
}


def statuses_in_gap(reason: str) -> frozenset[NeedStatus]:
    """The need statuses a gap of ``reason`` holds residents in (any other reason, such as
    no agreement covering the need: every one not yet placed)."""
    return _IN_GAP.get(reason, frozenset({N.ROUTING, N.WAITING_FOR_CAPACITY, N.UNROUTABLE}))
