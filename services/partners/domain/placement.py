"""Where the routing of one need of a case stands, and when to stop trying partners."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.partners.domain.routing import Decision
from shared.vocabulary import LawfulBasis, Need, PartnerKind


class RouteRequestStatus(StrEnum):
    OPEN = "open"  # waiting to be placed
    WAITING = "waiting"  # every service that could take it is full (or paused): queued
    PLACED = "placed"  # offered to a partner
    UNROUTABLE = "unroutable"  # back to the council, with the reason
    CLOSED = "closed"  # consent withdrawn or case closed: the packet is gone


@dataclass(frozen=True)
class RouteRequest:
    """One need of a case to be placed with a partner."""

    id: str
    case_id: str
    need: Need
    council: str
    packet: dict[str, Any] | None  # the routing packet as JSON; None once the case stopped
    lawful_basis: LawfulBasis
    consent_kinds: frozenset[PartnerKind]
    status: RouteRequestStatus
    attempts: int  # offers made so far
    urgency: str | None = None  # the packet's
    waiting_since: datetime | None = None  # waiting for a place since
    agreement_reference: str | None = None  # the data-sharing agreement the case names


# A case that is ready for routing again starts these needs afresh; the others keep going.
RESTARTABLE = frozenset({RouteRequestStatus.UNROUTABLE, RouteRequestStatus.CLOSED})


def _words(need: Need) -> str:
    return need.value.replace("_", " ")


# Where a need waits for a place: the most urgent first, then the longest waiting.
URGENCY_ORDER = ("crisis", "high", "medium", "low", "none")


def queue_rank(urgency: str | None) -> int:
    """A need's place in the waiting queue by urgency (lower first; none given: medium)."""
    level = urgency or "medium"
    return URGENCY_ORDER.index(level) if level in URGENCY_ORDER else len(URGENCY_ORDER)


def should_wait(decision: Decision, attempts: int, max_offers: int) -> bool:
    """No candidate now, but a service that could take the need is full or paused: the need
    waits for a place (unless it has been offered ``max_offers`` times already)."""
    return decision.chosen is None and decision.full and attempts < max_offers


def reason_to_give_up(decision: Decision, need: Need, attempts: int, max_offers: int) -> str | None:
    """Why the need goes back to the council (no candidate left, or ``max_offers`` partners
    offered it already), in plain words; None to offer it to the chosen candidate (or, when
    ``should_wait``, to queue it)."""
    if should_wait(decision, attempts, max_offers):
        return None
    if decision.chosen is None:
        return decision.unroutable_reason or f"no partner can take {_words(need)}"
    if attempts >= max_offers:
        return f"{attempts} partners were offered {_words(need)} and none took it"
    return None
