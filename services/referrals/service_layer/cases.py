"""Cases: the caseworker's queue and case, what a caseworker does to a case, what the risk
and partners services report about it, and consent expiring.

Use cases own their transaction. The steps below them (``move``, ``route_if_allowed``, …)
run inside a caller's transaction and are shared with intake. Decisions come from
``domain/``; the SQL from ``adapters/``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from services.referrals.adapters import Row
from services.referrals.adapters import cases as cases_db
from services.referrals.adapters import holds as holds_db
from services.referrals.adapters import needs as needs_db
from services.referrals.adapters import residents as residents_db
from services.referrals.domain.actors import (
    PARTNERS_SERVICE,
    REFERRALS_SERVICE,
    RISK_SERVICE,
    Actor,
)
from services.referrals.domain.lifecycle import (
    ROUTED_STATUSES,
    TERMINAL_STATUSES,
    WITH_PARTNERS_STATUSES,
    CaseStatus,
    TransitionRefused,
    transition,
)
from services.referrals.domain.needs import REPORT_OF_OFFER, NeedStatus, PartnerEvent, Report
from services.referrals.domain.offers import (
    offer_update_applies,
    overdue_applies,
    still_overdue,
)
from services.referrals.domain.sharing import (
    Article9Condition,
    BasisClaim,
    ConsentRecord,
    SharingDecision,
    article9_condition_for,
    basis_problems,
    may_share_with_partners,
    priority,
    special_category_needs,
    summary,
)
from services.referrals.service_layer import audit
from services.referrals.service_layer import needs as case_needs
from services.referrals.service_layer.callers import actor_of
from services.referrals.service_layer.gaps import QueuedGap, gaps_in_queue
from services.referrals.service_layer.resident_index import ResidentFacts, match_or_create_resident
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared.auth import Principal
from shared.errors import Conflict, Invalid, NotFound
from shared.events.payloads import (
    CaseOpened,
    CaseReadyForRouting,
    ConsentWithdrawn,
    ContactRoute,
    FlaggedIdentity,
    RoutingPacket,
    SharingStopped,
)
from shared.identity import age_in_years, postcode_district, unseal_identity
from shared.input_policy import date_problem
from shared.vocabulary import (
    ContactMethod,
    DeclineReason,
    LawfulBasis,
    Need,
    OfferStatus,
    Outcome,
    PartnerKind,
    RiskLevel,
)

log = logging.getLogger(__name__)


# -- commands and results ----------------------------------------------------------------


@dataclass(frozen=True)
class ConsentGiven:
    """Who consented, how, when, to which kinds of partner, for what, and until when."""

    given_by: str
    method: str
    given_at: datetime
    partner_kinds: tuple[PartnerKind, ...]
    purpose: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class BasisChange:
    """A caseworker puts the case on another lawful basis (not consent: that is recorded
    with the consent), saying why it applies, who decided, and why it changes."""

    basis: LawfulBasis
    reason: str
    justification: str | None = None
    decided_by: str | None = None
    article9_condition: Article9Condition | None = None
    data_sharing_agreement: str | None = None

    @property
    def claim(self) -> BasisClaim:
        return BasisClaim(self.basis, self.justification, self.decided_by, self.article9_condition)


@dataclass(frozen=True)
class CaseAcknowledged:
    case_id: str
    status: str


@dataclass(frozen=True)
class QueueQuery:
    statuses: tuple[CaseStatus, ...] = ()
    risk_levels: tuple[RiskLevel, ...] = ()
    need: Need | None = None
    need_statuses: tuple[NeedStatus, ...] = ()  # a case with a need in one of these
    overdue: bool | None = None  # a case with an overdue offer (False: without)
    council: str | None = None
    assigned_to: str | None = None
    origin: str | None = None
    opened_from: date | None = None
    opened_to: date | None = None  # inclusive
    cursor: str | None = None
    limit: int = 25


@dataclass(frozen=True)
class QueuedCase:
    id: str
    council: str
    status: str
    priority: int
    urgency: str
    risk_level: str | None
    needs: list[str]
    origin: str
    assigned_to: str | None
    resident_name: str
    opened_at: datetime
    updated_at: datetime
    # A need is held while a caseworker settles a possible duplicate: shown first.
    held_for_duplicate: bool = False
    need_statuses: dict[str, str] = field(default_factory=dict)  # {need: its status}
    overdue_offers: int = 0


@dataclass(frozen=True)
class OverdueCount:
    council: str
    offers: int
    cases: int


@dataclass(frozen=True)
class QueuePage:
    items: list[QueuedCase]
    next_cursor: str | None
    # Gaps in service in the principal's councils, above the cases (on the first page).
    gaps: list[QueuedGap] = field(default_factory=list)


@dataclass(frozen=True)
class CaseDetail:
    """Everything a caseworker sees of one case, as plain mappings."""

    case: dict[str, Any]
    resident: dict[str, Any]
    consent: dict[str, Any] | None
    referrals: list[dict[str, Any]]
    offers: list[dict[str, Any]]
    needs: list[dict[str, Any]]  # each need with its status and timestamps
    overdue_offers: list[dict[str, Any]]
    notes: list[dict[str, Any]]
    possible_duplicates: list[dict[str, Any]]
    timeline: list[dict[str, Any]]


@dataclass(frozen=True)
class RuleReason:
    rule_id: str
    explanation: str


@dataclass(frozen=True)
class RiskFinding:
    """What the risk rules found about a case or a resident."""

    level: RiskLevel
    score: int
    reasons: tuple[RuleReason, ...]
    suggested_needs: tuple[Need, ...]
    ruleset_version: str
    at: datetime


@dataclass(frozen=True)
class ResidentFlag:
    """The risk rules flagged a resident from a council data feed; their identity is sealed
    so that only this service reads it."""

    council: str
    resident_key: str
    sealed_identity: str
    finding: RiskFinding


@dataclass(frozen=True)
class OfferChange:
    """One offer of a case, as the partners service reports it. Only the fields its status
    carries are set (``_OFFER_FIELDS``)."""

    offer_id: str
    case_id: str
    need: Need
    partner_id: str
    status: OfferStatus
    at: datetime
    partner_name: str | None = None
    service_name: str | None = None
    respond_by: datetime | None = None
    decline_reason: DeclineReason | None = None
    outcome: Outcome | None = None
    note: str | None = None
    routing_reasons: dict[str, Any] | None = None  # why this partner, in plain words


@dataclass(frozen=True)
class Unroutable:
    case_id: str
    reasons: tuple[str, ...]
    at: datetime
    needs: tuple[Need, ...] = ()  # none named: every need partners are routing


@dataclass(frozen=True)
class OverdueOffer:
    offer_id: str
    case_id: str
    need: Need
    partner_id: str
    follow_up_by: datetime
    at: datetime


@dataclass(frozen=True)
class NeedWaiting:
    """Every partner that could take the need is full: it waits for a place."""

    case_id: str
    need: Need
    at: datetime


# -- steps inside a caller's transaction -------------------------------------------------


async def move(
    uow: ReferralsUnitOfWork,
    case: Row,
    target: CaseStatus,
    *,
    actor: Actor,
    now: datetime,
    reason: str | None = None,
    outcome: Outcome | None = None,
    held: Collection[str] | None = None,
) -> Row:
    """A decision about the whole case, if the lifecycle allows it (TransitionRefused
    otherwise): applied to each of its needs, then the case's status derived from them
    (``needs.settle``: its timestamp, a timeline entry everyone with access may see, and the
    events it means). ``held``: the needs held for a possible duplicate, if the caller has
    just read them."""
    transition(CaseStatus(case["status"]), target, outcome=outcome)
    if held is None:
        held = await holds_db.held_needs(uow.session, case["id"])
    rows = await case_needs.decide(uow, case, target, now=now, held=held)
    return await case_needs.settle(
        uow,
        case,
        actor=actor,
        now=now,
        reason=reason,
        outcome=outcome,
        without_needs=target,
        rows=rows,
    )


async def move_if_allowed(
    uow: ReferralsUnitOfWork,
    case: Row,
    target: CaseStatus,
    *,
    actor: Actor,
    now: datetime,
    reason: str | None = None,
    outcome: Outcome | None = None,
    held: Collection[str] | None = None,
) -> Row:
    """For events from other services: an impossible move is recorded, not raised (the
    event is still applied once; a caseworker sees what happened)."""
    try:
        return await move(
            uow, case, target, actor=actor, now=now, reason=reason, outcome=outcome, held=held
        )
    except TransitionRefused as refused:
        log.warning("transition refused", extra={"case_id": case["id"], "reason": str(refused)})
        await cases_db.add_timeline(
            uow.session,
            case["id"],
            actor,
            f"not moved to {target.value}",
            now=now,
            detail=str(refused),
        )
        return case


async def sharing_decision(
    uow: ReferralsUnitOfWork, case: Row, *, now: datetime
) -> SharingDecision:
    """May this case go to a voluntary partner now, and why (``domain/sharing.py``)."""
    return _sharing(case, await cases_db.current_consent(uow.session, case["id"]), now=now)


def _sharing(case: Row, consent: Row | None, *, now: datetime) -> SharingDecision:
    record = (
        None
        if consent is None
        else ConsentRecord(
            given_at=consent["given_at"],
            expires_at=consent["expires_at"],
            withdrawn_at=consent["withdrawn_at"],
            partner_kinds=tuple(consent["partner_kinds"]),
        )
    )
    return may_share_with_partners(
        LawfulBasis(case["lawful_basis"]),
        record,
        data_sharing_agreement=case["data_sharing_agreement"],
        now=now,
    )


async def route_if_allowed(
    uow: ReferralsUnitOfWork,
    case: Row,
    *,
    actor: Actor,
    now: datetime,
    held: Collection[str] | None = None,
) -> Row:
    """After assessment or new consent: to partners if the lawful basis allows it, else to
    the council team to seek consent. ``held``: the needs held for a possible duplicate, if
    the caller has just read them; the consent is read once, for the decision and the
    packet."""
    consent = await cases_db.current_consent(uow.session, case["id"])
    decision = _sharing(case, consent, now=now)
    if held is None:
        held = await holds_db.held_needs(uow.session, case["id"])
    if held and not set(case["needs"]).difference(held):
        # Every need waits for a caseworker to settle a possible duplicate (no double help).
        await cases_db.add_timeline(
            uow.session,
            case["id"],
            actor,
            "routing held",
            now=now,
            detail="possible duplicate of a resident already helped for "
            + ", ".join(sorted(held))
            + "; a caseworker confirms or rejects it",
        )
        return case
    if not decision.allowed and case["status"] == CaseStatus.AWAITING_CONSENT:
        return case
    target = CaseStatus.READY_FOR_ROUTING if decision.allowed else CaseStatus.AWAITING_CONSENT
    case = await move(uow, case, target, actor=actor, now=now, reason=decision.reason, held=held)
    if decision.allowed and (to_route := _to_route(case, held)):
        await _send_packet(uow, case, consent, to_route, now=now)
    return case


async def send_packet(
    uow: ReferralsUnitOfWork, case: Row, *, now: datetime, held: Collection[str] | None = None
) -> None:
    """``case ready for routing``: partners route the needs they have not placed yet. A need
    held for a possible duplicate stays out of the packet until the hold is settled
    (``held``: as the caller has just read them)."""
    if held is None:
        held = await holds_db.held_needs(uow.session, case["id"])
    if to_route := _to_route(case, held):
        consent = await cases_db.current_consent(uow.session, case["id"])
        await _send_packet(uow, case, consent, to_route, now=now)


def _to_route(case: Row, held: Collection[str]) -> list[str]:
    """The case's needs not held for a possible duplicate, in the case's order."""
    return [n for n in case["needs"] if n not in held]


async def _send_packet(
    uow: ReferralsUnitOfWork, case: Row, consent: Row | None, to_route: list[str], *, now: datetime
) -> None:
    """``send_packet`` with the case's current consent read already, for the needs given."""
    resident = await residents_db.resident(uow.session, case["resident_id"])
    await uow.outbox.add(
        uow.session,
        _ready_for_routing(case, resident, consent, needs=to_route, now=now),
        subject=case["id"],
    )
    await case_needs.send(uow, case, to_route, now=now)


async def stop_sharing(
    uow: ReferralsUnitOfWork,
    case: Row,
    consent: Row,
    *,
    actor: Actor,
    reason: str,
    now: datetime,
    why: SharingStopped = SharingStopped.WITHDRAWN,
) -> Row:
    """The consent is withdrawn (or expired): partners withdraw their open offers and lose
    the packet; a routed case goes back to the council team to seek consent again."""
    session = uow.session
    await cases_db.mark_consent_withdrawn(session, consent["id"], by=actor.subject, now=now)
    action = "consent expired" if why is SharingStopped.EXPIRED else "consent withdrawn"
    await cases_db.add_timeline(session, case["id"], actor, action, now=now, detail=reason)
    return await stop_partners(uow, case, actor=actor, reason=reason, why=why, now=now)


async def stop_partners(
    uow: ReferralsUnitOfWork,
    case: Row,
    *,
    actor: Actor,
    reason: str,
    why: SharingStopped,
    now: datetime,
) -> Row:
    """Partners withdraw their open offers and lose the packet (told why); a routed case
    goes back to the council team."""
    await uow.outbox.add(
        uow.session,
        ConsentWithdrawn(case_id=case["id"], council=case["council"], withdrawn_at=now, reason=why),
        subject=case["id"],
    )
    # Every need partners hold waits for consent again; met and unsent needs stay.
    await case_needs.stop_with_partners(uow, case, now=now)
    routed = CaseStatus(case["status"]) in ROUTED_STATUSES
    return await case_needs.settle(
        uow,
        case,
        actor=actor,
        now=now,
        reason=reason,
        without_needs=CaseStatus.AWAITING_CONSENT if routed else None,
    )


async def open_case(
    uow: ReferralsUnitOfWork,
    *,
    resident_id: str,
    council: str,
    origin: str,
    status: CaseStatus,
    values: dict[str, Any],
    keys: list[str],
    actor: Actor,
    now: datetime,
    flagged_at: datetime | None = None,
) -> Row:
    case_id = uow.new_id()
    uow.case_known(case_id, origin=origin)
    case = await cases_db.insert_case(
        uow.session,
        id=case_id,
        council=council,
        resident_id=resident_id,
        origin=origin,
        status=status.value,
        **{f"{status.value}_at": now},
        **values,
    )
    await case_needs.start(uow, case, now=now)  # a row per need, starting where the case is
    await cases_db.add_timeline(
        uow.session,
        case_id,
        actor,
        f"case opened ({origin})",
        now=now,
        status_to=status.value,
        referrer_visible=True,
    )
    await uow.outbox.add(
        uow.session,
        CaseOpened(
            case_id=case_id,
            council=council,
            origin=origin,
            resident_keys=keys,
            opened_at=now,
            flagged_at=flagged_at,
        ),
        subject=case_id,
    )
    return case


async def add_consent(
    uow: ReferralsUnitOfWork, case_id: str, consent: ConsentGiven, *, recorded_by: Actor
) -> None:
    await cases_db.insert_consent(
        uow.session,
        id=uow.new_id(),
        case_id=case_id,
        given_by=consent.given_by,
        method=consent.method,
        given_at=consent.given_at,
        partner_kinds=[k.value for k in consent.partner_kinds],
        purpose=consent.purpose,
        expires_at=consent.expires_at,
        recorded_by=recorded_by.signature,
    )


def _contact(resident: Row) -> ContactRoute:
    method = ContactMethod(resident["preferred_contact"])
    value = {
        ContactMethod.PHONE: resident["phone"],
        ContactMethod.TEXT: resident["phone"],
        ContactMethod.EMAIL: resident["email"],
        ContactMethod.LETTER: resident["address"],
    }.get(method)
    return ContactRoute(method=method, value=value)


def _ready_for_routing(
    case: Row, resident: Row, consent: Row | None, *, needs: list[str], now: datetime
) -> CaseReadyForRouting:
    """The packet: first name, one contact route, needs, area, language, urgency, summary.
    No family name, date of birth, full address or free text."""
    urgency = max(
        RiskLevel(case["urgency"]),
        RiskLevel(case["risk_level"] or "none"),
        key=lambda level: level.rank,
    )
    return CaseReadyForRouting(
        case_id=case["id"],
        council=case["council"],
        lawful_basis=LawfulBasis(case["lawful_basis"]),
        consent_partner_kinds=list(consent["partner_kinds"]) if consent else [],
        consent_expires_at=consent["expires_at"] if consent else None,
        data_sharing_agreement=case["data_sharing_agreement"],
        packet=RoutingPacket(
            first_name=resident["given_name"],
            contact=_contact(resident),
            needs=[Need(n) for n in needs],
            council=case["council"],
            postcode_district=postcode_district(resident["postcode"])
            if resident["postcode"]
            else None,
            age_years=age_in_years(resident["date_of_birth"], now.date()),
            preferred_language=resident["preferred_language"],
            interpreter_needed=resident["interpreter_needed"],
            accessibility_needs=resident["accessibility_needs"],
            urgency=urgency,
            summary=summary(needs, case["circumstances"], urgency),
        ),
    )


async def _record_finding(uow: ReferralsUnitOfWork, case: Row, finding: RiskFinding) -> Row:
    updated = await cases_db.update_case(
        uow.session,
        case["id"],
        risk_level=finding.level.value,
        risk_score=finding.score,
        risk_reasons=[asdict(reason) for reason in finding.reasons],
        suggested_needs=[need.value for need in finding.suggested_needs],
        ruleset_version=finding.ruleset_version,
        priority=priority(RiskLevel(case["urgency"]), finding.level),
        updated_at=finding.at,
    )
    explanation = "; ".join(r.explanation for r in finding.reasons) or "no rule fired"
    await cases_db.add_timeline(
        uow.session,
        case["id"],
        RISK_SERVICE,
        f"risk assessed: {finding.level.value} (score {finding.score})",
        now=finding.at,
        detail=f"{explanation} [ruleset {finding.ruleset_version}]",
    )
    return updated


async def _case_for_event(uow: ReferralsUnitOfWork, case_id: str) -> Row | None:
    case = await cases_db.lock_case(uow.session, case_id)
    if case is None:
        log.warning(
            "event for a case this service does not hold; ignored",
            extra={"case_id": case_id, "event_type": uow.event_type()},
        )
    else:
        uow.case_known(case["id"], origin=case["origin"])  # its events' lane, not asked
    return case


async def _caseworkers_case(uow: ReferralsUnitOfWork, principal: Principal, case_id: str) -> Row:
    """The case, locked, if the principal may see it; NotFound otherwise."""
    case = await cases_db.visible_case(uow.session, principal, case_id, lock=True)
    if case is None:
        raise NotFound("case not found")
    uow.case_known(case["id"], origin=case["origin"])  # its events' lane, not asked
    return case


def _ack(case: Row) -> CaseAcknowledged:
    return CaseAcknowledged(case_id=case["id"], status=case["status"])


# -- reading -----------------------------------------------------------------------------


def _encode_cursor(row: Row) -> str:
    key = [bool(row["held"]), row["priority"], row["created_at"].isoformat(), row["id"]]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


_MOST_PRIORITY = 32_767  # the column's range (smallint)


def _decode_cursor(cursor: str) -> tuple[bool, int, datetime, str]:
    """The queue position a cursor holds. Anyone can write one (it is base64 JSON, out of
    the input policy's sight), so each part is checked for what ``_encode_cursor`` puts
    there: a flag, a priority a case can have, an aware time within the policy's dates, a
    case id."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if isinstance(key, list) and len(key) == 3:  # given out before held cases came first
            key = [False, *key]
        held, priority, created, case_id = key
        when = datetime.fromisoformat(created) if isinstance(created, str) else None
        if (
            not isinstance(held, bool)
            or type(priority) is not int
            or not 0 <= priority <= _MOST_PRIORITY
            or when is None
            or when.tzinfo is None
            or date_problem(created) is not None
            or not isinstance(case_id, str)
        ):
            raise ValueError("not a queue position")
        return held, priority, when, str(uuid.UUID(case_id))
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise Invalid("cursor", "not a cursor this API gave out") from None


def _queued(row: Row) -> QueuedCase:
    return QueuedCase(
        id=row["id"],
        council=row["council"],
        status=row["status"],
        priority=row["priority"],
        urgency=row["urgency"],
        risk_level=row["risk_level"],
        needs=row["needs"],
        origin=row["origin"],
        assigned_to=row["assigned_to"],
        resident_name=f"{row['given_name']} {row['family_name']}",
        opened_at=row["created_at"],
        updated_at=row["updated_at"],
        held_for_duplicate=bool(row["held"]),
        need_statuses={need: row["need_statuses"].get(need) for need in row["needs"]},
        overdue_offers=int(row["overdue_offers"] or 0),
    )


async def case_queue(
    uow: ReferralsUnitOfWork, principal: Principal, query: QueueQuery
) -> QueuePage:
    """The cases the principal may see, most urgent first, then oldest."""
    after = _decode_cursor(query.cursor) if query.cursor else None
    async with uow.snapshot() as session:
        rows = await cases_db.queue(
            session,
            principal,
            statuses=[s.value for s in query.statuses],
            risk_levels=[r.value for r in query.risk_levels],
            need=query.need.value if query.need else None,
            need_statuses=[s.value for s in query.need_statuses],
            overdue=query.overdue,
            council=query.council,
            assigned_to=query.assigned_to,
            origin=query.origin,
            opened_from=datetime.combine(query.opened_from, time.min)
            if query.opened_from
            else None,
            opened_before=datetime.combine(query.opened_to + timedelta(days=1), time.min)
            if query.opened_to
            else None,
            after=after,
            limit=query.limit + 1,
        )
        shown_gaps = [] if query.cursor else await gaps_in_queue(uow, principal)
        await audit.audited(
            uow,
            principal,
            "case_queue",
            [audit.IDENTITY, audit.NEEDS, audit.PROGRESS],
            [audit.Seen(r["council"], r["resident_id"], r["id"]) for r in rows[: query.limit]],
        )
    page = rows[: query.limit]
    return QueuePage(
        items=[_queued(r) for r in page],
        next_cursor=_encode_cursor(page[-1]) if len(rows) > query.limit else None,
        gaps=shown_gaps,
    )


async def case_detail(uow: ReferralsUnitOfWork, principal: Principal, case_id: str) -> CaseDetail:
    """One case: resident, referrals, assessment, consent, offers, notes, timeline."""
    async with uow.snapshot() as session:
        case = await cases_db.visible_case(session, principal, case_id)
        if case is None:
            raise NotFound("case not found")
        cid = case["id"]
        consent = await cases_db.current_consent(session, cid)
        await audit.audited(
            uow,
            principal,
            "case_detail",
            [
                audit.IDENTITY,
                audit.CONTACT,
                audit.NEEDS,
                audit.FREE_TEXT,
                audit.CONSENT,
                audit.RISK,
                audit.PROGRESS,
                audit.MATCHING,
            ],
            [audit.Seen(case["council"], case["resident_id"], cid)],
        )
        return CaseDetail(
            case=dict(case),
            resident=dict(await residents_db.resident(session, case["resident_id"])),
            consent=None if consent is None else dict(consent),
            referrals=[dict(r) for r in await cases_db.referrals_of(session, cid)],
            offers=[dict(r) for r in await cases_db.offers_of(session, cid)],
            needs=_needs_shown(case, await needs_db.needs_of(session, cid)),
            overdue_offers=[dict(r) for r in await needs_db.overdue_offers_of(session, cid)],
            notes=[dict(r) for r in await cases_db.notes_of(session, cid)],
            possible_duplicates=[
                dict(r) for r in await residents_db.duplicates_of(session, case["resident_id"])
            ],
            timeline=[dict(r) for r in await cases_db.timeline_of(session, cid)],
        )


def _needs_shown(case: Row, rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The case's current needs in its order: status, since when, each milestone."""
    by_need = {row["need"]: row for row in rows}
    return [
        {
            "need": need,
            "status": row["status"],
            "since": row["status_at"],
            "offer_id": row["offer_id"],
            "outcome": row["outcome"],
            "unroutable_reason": row["unroutable_reason"],
            "times": {s.value: row[f"{s.value}_at"] for s in NeedStatus if row[f"{s.value}_at"]},
        }
        for need in case["needs"]
        if (row := by_need.get(need)) is not None
    ]


async def overdue_counts(
    uow: ReferralsUnitOfWork, principal: Principal, council: str | None = None
) -> list[OverdueCount]:
    """How many offers partners are late to report on, and on how many cases, for each
    council the principal may see (a caseworker: their own; operators: every council)."""
    async with uow.snapshot() as session:
        rows = await cases_db.overdue_counts(session, principal, council=council)
    return [OverdueCount(r["council"], int(r["offers"]), int(r["cases"])) for r in rows]


# -- what a caseworker does --------------------------------------------------------------


async def assign_case(
    uow: ReferralsUnitOfWork, principal: Principal, case_id: str, caseworker: str
) -> CaseAcknowledged:
    async with uow.transaction() as session:
        case = await _caseworkers_case(uow, principal, case_id)
        now = uow.now()
        await cases_db.update_case(session, case["id"], assigned_to=caseworker, updated_at=now)
        await cases_db.add_timeline(
            session, case["id"], actor_of(principal), "assigned", now=now, detail=f"to {caseworker}"
        )
    return _ack(case)


async def add_note(
    uow: ReferralsUnitOfWork, principal: Principal, case_id: str, text: str
) -> CaseAcknowledged:
    async with uow.transaction() as session:
        case = await _caseworkers_case(uow, principal, case_id)
        who = actor_of(principal)
        await cases_db.insert_note(
            session, id=uow.new_id(), case_id=case["id"], author=who, text=text
        )
        await cases_db.add_timeline(session, case["id"], who, "note added", now=uow.now())
    return _ack(case)


async def record_consent(
    uow: ReferralsUnitOfWork,
    principal: Principal,
    case_id: str,
    consent: ConsentGiven,
    needs: tuple[Need, ...] | None = None,
) -> CaseAcknowledged:
    """The resident's consent, recorded by a caseworker: sharing rests on it from now on
    (optionally for new needs), and a case waiting for it is routed."""
    async with uow.transaction() as session:
        case = await _caseworkers_case(uow, principal, case_id)
        if CaseStatus(case["status"]) in TERMINAL_STATUSES:
            raise Conflict(f"the case is {case['status']}", case["status"])
        now, who = uow.now(), actor_of(principal)
        await add_consent(uow, case["id"], consent, recorded_by=who)
        values: dict[str, Any] = {"lawful_basis": LawfulBasis.CONSENT.value, "updated_at": now}
        if needs:
            values["needs"] = list(dict.fromkeys(n.value for n in needs))
        earlier = set(case["needs"])
        case = await cases_db.update_case(session, case["id"], **values)
        # Needs added start where the case is (one it had before, withdrawn, starts again).
        await case_needs.current(uow, case, now=now, joined=set(case["needs"]) - earlier)
        await cases_db.add_timeline(
            session,
            case["id"],
            who,
            "consent recorded",
            now=now,
            detail=f"given by {consent.given_by} ({consent.method}) for "
            + ", ".join(k.value for k in consent.partner_kinds),
        )
        if case["status"] in (CaseStatus.AWAITING_CONSENT, CaseStatus.ASSESSED):
            case = await route_if_allowed(uow, case, actor=who, now=now)
        elif CaseStatus(case["status"]) in WITH_PARTNERS_STATUSES and set(case["needs"]) - earlier:
            await send_packet(uow, case, now=now)  # its new needs go to partners too
    return _ack(case)


async def record_consent_withdrawal(
    uow: ReferralsUnitOfWork, principal: Principal, case_id: str, reason: str
) -> CaseAcknowledged:
    """The resident withdraws consent: routing stops, partners withdraw open offers."""
    async with uow.transaction() as session:
        case = await _caseworkers_case(uow, principal, case_id)
        consent = await cases_db.current_consent(session, case["id"])
        if consent is None or consent["withdrawn_at"] is not None:
            raise Conflict("there is no current consent to withdraw", case["status"])
        case = await stop_sharing(
            uow, case, consent, actor=actor_of(principal), reason=reason, now=uow.now()
        )
    return _ack(case)


async def change_basis(
    uow: ReferralsUnitOfWork, principal: Principal, case_id: str, change: BasisChange
) -> CaseAcknowledged:
    """A caseworker puts the case on another lawful basis, with a reason kept on the
    timeline. A basis that no longer allows sharing takes the case back from partners (told
    why); one that now allows it routes a case waiting for consent."""
    if change.basis is LawfulBasis.CONSENT:
        raise Invalid(
            "lawful_basis", "consent is recorded with the consent: POST /v1/cases/{id}/consent"
        )
    async with uow.transaction() as session:
        case = await _caseworkers_case(uow, principal, case_id)
        if CaseStatus(case["status"]) in TERMINAL_STATUSES:
            raise Conflict(f"the case is {case['status']}", case["status"])
        if problems := basis_problems(change.claim, case["needs"]):
            raise Invalid.of(problems)
        now, who = uow.now(), actor_of(principal)
        condition = article9_condition_for(change.claim, case["needs"])
        before = case["lawful_basis"]
        case = await cases_db.update_case(
            session,
            case["id"],
            lawful_basis=change.basis.value,
            basis_justification=change.justification,
            basis_decided_by=change.decided_by,
            article9_condition=condition.value if condition else None,
            data_sharing_agreement=change.data_sharing_agreement,
            updated_at=now,
        )
        await cases_db.add_timeline(
            session,
            case["id"],
            who,
            "lawful basis changed",
            now=now,
            detail=f"from {before} to {change.basis.value} (decided by {change.decided_by}): "
            f"{change.reason}",
        )
        decision = await sharing_decision(uow, case, now=now)
        if not decision.allowed and CaseStatus(case["status"]) in WITH_PARTNERS_STATUSES:
            case = await stop_partners(
                uow,
                case,
                actor=who,
                reason=decision.reason,
                why=SharingStopped.BASIS_CHANGED,
                now=now,
            )
        elif decision.allowed and case["status"] in (
            CaseStatus.AWAITING_CONSENT,
            CaseStatus.ASSESSED,
        ):
            case = await route_if_allowed(uow, case, actor=who, now=now)
    return _ack(case)


async def _move_by_caseworker(
    uow: ReferralsUnitOfWork,
    principal: Principal,
    case_id: str,
    target: CaseStatus,
    *,
    reason: str | None,
    outcome: Outcome | None = None,
) -> CaseAcknowledged:
    async with uow.transaction():
        case = await _caseworkers_case(uow, principal, case_id)
        case = await move(
            uow,
            case,
            target,
            actor=actor_of(principal),
            now=uow.now(),
            reason=reason,
            outcome=outcome,
        )  # a refused transition is a 409 naming the statuses allowed
    return _ack(case)


async def withdraw_case(
    uow: ReferralsUnitOfWork, principal: Principal, case_id: str, reason: str
) -> CaseAcknowledged:
    return await _move_by_caseworker(uow, principal, case_id, CaseStatus.WITHDRAWN, reason=reason)


async def close_case(
    uow: ReferralsUnitOfWork,
    principal: Principal,
    case_id: str,
    outcome: Outcome,
    note: str | None = None,
) -> CaseAcknowledged:
    return await _move_by_caseworker(
        uow, principal, case_id, CaseStatus.CLOSED, reason=note, outcome=outcome
    )


async def route_again(
    uow: ReferralsUnitOfWork, principal: Principal, case_id: str
) -> CaseAcknowledged:
    """Try routing again (an unroutable case, once the gap is fixed)."""
    async with uow.transaction():
        case = await _caseworkers_case(uow, principal, case_id)
        case = await route_if_allowed(uow, case, actor=actor_of(principal), now=uow.now())
    return _ack(case)


# -- what the risk and partners services report -----------------------------------------


async def record_risk_assessment(
    uow: ReferralsUnitOfWork, case_id: str, finding: RiskFinding
) -> None:
    """The assessment goes on the case; a case just received is assessed and routed (or
    waits for consent)."""
    async with uow.transaction():
        case = await _case_for_event(uow, case_id)
        if case is None:
            return
        case = await _record_finding(uow, case, finding)
        if case["status"] == CaseStatus.RECEIVED:
            # Read once for both moves: nothing between them holds or releases a need.
            held = await holds_db.held_needs(uow.session, case["id"])
            case = await move_if_allowed(
                uow,
                case,
                CaseStatus.ASSESSED,
                actor=RISK_SERVICE,
                now=finding.at,
                reason=f"risk {finding.level.value}",
                held=held,
            )
            await route_if_allowed(uow, case, actor=RISK_SERVICE, now=finding.at, held=held)


async def open_outreach_case(uow: ReferralsUnitOfWork, flag: ResidentFlag) -> None:
    """An outreach case for the council team: public task, waiting for consent. Nothing goes
    to a partner until a caseworker records the resident's consent. A resident with an open
    case gets the newest finding on it instead."""
    if flag.council not in uow.settings.councils:
        log.warning(
            "flag for a council this deployment does not serve; ignored",
            extra={"council": flag.council},
        )
        return
    secret = uow.settings.resident_key_secret.get_secret_value()
    who = FlaggedIdentity.model_validate(unseal_identity(secret, flag.sealed_identity))
    facts = ResidentFacts(
        given_name=who.given_name,
        family_name=who.family_name,
        date_of_birth=who.date_of_birth,
        postcode=who.postcode,
        uprn=who.uprn,
        address=who.address,
        phone=who.phone,
        email=who.email,
        council_reference=who.council_reference,
        preferred_contact="phone" if who.phone else "email" if who.email else "letter",
    )
    finding, now = flag.finding, flag.finding.at
    async with uow.transaction() as session:
        matched = await match_or_create_resident(uow, flag.council, facts, now=now)
        resident_id = matched.resident_id
        case = await cases_db.lock_open_case_of(session, resident_id, flag.council)
        if case is None:
            case = await open_case(
                uow,
                resident_id=resident_id,
                council=flag.council,
                origin="flag",
                status=CaseStatus.AWAITING_CONSENT,
                keys=[flag.resident_key],
                actor=RISK_SERVICE,
                now=now,
                flagged_at=finding.at,
                values={
                    "priority": priority(finding.level, finding.level),
                    "urgency": finding.level.value,
                    "needs": [n.value for n in finding.suggested_needs],
                    "circumstances": [],
                    "lawful_basis": LawfulBasis.PUBLIC_TASK.value,
                    # The council's own task of finding residents at risk in its data;
                    # nothing is shared until the resident consents.
                    "basis_justification": "the council identifies residents at risk from "
                    "its own data (public task); outreach only, nothing is shared without "
                    "the resident's consent",
                    "basis_decided_by": f"risk rules {finding.ruleset_version}",
                    "article9_condition": Article9Condition.SUBSTANTIAL_PUBLIC_INTEREST.value
                    if special_category_needs(n.value for n in finding.suggested_needs)
                    else None,
                    "status_reason": "flagged by the risk rules; seek the resident's consent",
                },
            )
        await _record_finding(uow, case, finding)


# What each offer status carries onto the mirrored offer (a field not listed keeps its value).
_OFFER_FIELDS: dict[OfferStatus, tuple[str, ...]] = {
    OfferStatus.OFFERED: ("partner_name", "service_name", "respond_by", "routing_reasons"),
    OfferStatus.DECLINED: ("decline_reason", "note"),
    OfferStatus.WITHDRAWN: ("note",),
    OfferStatus.IN_PROGRESS: ("note",),
    OfferStatus.OUTCOME_RECORDED: ("outcome", "note"),
}


def _why_words(reasons: dict[str, Any] | None) -> str:
    """The routing reasons in one line of the timeline."""
    if not reasons:
        return ""
    parts = [*reasons.get("ranking", [])[:1], *reasons.get("excluded", [])]
    return f"; why: {'; '.join(parts)}" if parts else ""


def _offer_action(change: OfferChange) -> str:
    """The timeline's words for an offer change."""
    if change.status is OfferStatus.OFFERED:
        respond_by = f"{change.respond_by:%d %b %H:%M}" if change.respond_by else "no deadline"
        to = f"{change.partner_name} ({change.service_name})"
        return f"offered to {to}, answer by {respond_by}{_why_words(change.routing_reasons)}"
    if change.status is OfferStatus.OUTCOME_RECORDED:
        return f"outcome recorded: {change.outcome.value if change.outcome else 'none'}"
    return {
        OfferStatus.ACCEPTED: "offer accepted by the partner",
        OfferStatus.DECLINED: "offer declined, handed on",
        OfferStatus.EXPIRED: "no answer in time, handed on",
        OfferStatus.WITHDRAWN: "offer withdrawn",
        OfferStatus.IN_PROGRESS: "partner working with the resident",
    }[change.status]


async def record_offer_change(uow: ReferralsUnitOfWork, change: OfferChange) -> None:
    """Mirror the offer, tell the timeline, move its need (``domain/needs.py``) and derive
    the case's status from its needs: offered, accepted, in progress, and closed with the
    best outcome once every need has one. A decline, expiry or withdrawal hands the need on
    (routing again). A report older than what the mirror and the need know moves neither;
    it only fills in what they lack, so replays and late deliveries never go backwards."""
    async with uow.transaction() as session:
        case = await _case_for_event(uow, change.case_id)
        if case is None:
            return
        carried = {name: getattr(change, name) for name in _OFFER_FIELDS.get(change.status, ())}
        known = await needs_db.offer(session, change.offer_id)
        newer = offer_update_applies(
            OfferStatus(known["status"]) if known else None,
            known["updated_at"] if known else None,
            change.status,
            change.at,
        )
        if newer:
            overdue = known["overdue_at"] if known else None
            await cases_db.upsert_offer(
                session,
                change.offer_id,
                {
                    "case_id": change.case_id,
                    "need": change.need.value,
                    "partner_id": change.partner_id,
                    "status": change.status.value,
                    "updated_at": change.at,
                    "overdue_at": overdue
                    if still_overdue(overdue, change.status, change.at)
                    else None,
                    **carried,
                },
            )
        else:
            await needs_db.fill_offer(session, change.offer_id, carried)
        await cases_db.add_timeline(
            session,
            case["id"],
            PARTNERS_SERVICE,
            f"{change.need.value}: {_offer_action(change)}",
            now=change.at,
            detail=str(carried.get("note") or carried.get("decline_reason") or "") or None,
        )
        event = PartnerEvent(
            REPORT_OF_OFFER[change.status],
            change.at,
            offer_id=change.offer_id,
            outcome=change.outcome,
        )
        if newer:
            await case_needs.report(uow, case, change.need.value, event)
        else:  # old news for this offer: it only fills in a milestone
            await case_needs.late(uow, case, change.need.value, event)
        await case_needs.settle(uow, case, actor=PARTNERS_SERVICE, now=change.at)


async def record_offer_overdue(uow: ReferralsUnitOfWork, overdue: OverdueOffer) -> None:
    """An accepted offer passed its follow-up deadline without progress or an outcome: the
    case shows it (and the queue can be filtered by it) until progress or an outcome. A
    report about an offer that has moved on since is only put on the timeline."""
    async with uow.transaction() as session:
        case = await _case_for_event(uow, overdue.case_id)
        if case is None:
            return
        known = await needs_db.offer(session, overdue.offer_id)
        if known is not None and overdue_applies(
            OfferStatus(known["status"]), known["updated_at"], overdue.at
        ):
            await needs_db.mark_overdue(
                session, overdue.offer_id, at=overdue.at, follow_up_by=overdue.follow_up_by
            )
        await cases_db.add_timeline(
            session,
            case["id"],
            PARTNERS_SERVICE,
            f"{overdue.need.value}: overdue, no progress reported by "
            f"{overdue.follow_up_by:%d %b %H:%M}",
            now=overdue.at,
        )


async def record_unroutable(uow: ReferralsUnitOfWork, unroutable: Unroutable) -> None:
    """No partner could take a need: it goes back to the council team with the reasons
    (every need partners are routing, when the event names none). The case is unroutable
    while any of its needs is."""
    async with uow.transaction() as session:
        case = await _case_for_event(uow, unroutable.case_id)
        if case is None:
            return
        reasons = list(unroutable.reasons)
        case = await cases_db.update_case(
            session, case["id"], unroutable_reasons=reasons, updated_at=unroutable.at
        )
        named = [n.value for n in unroutable.needs] or list(case["needs"])
        reason = "; ".join(reasons)
        for need in named:
            await case_needs.report(
                uow,
                case,
                need,
                PartnerEvent(Report.UNROUTABLE, unroutable.at),
                unroutable_reason=reason or None,
            )
        await case_needs.settle(
            uow, case, actor=PARTNERS_SERVICE, now=unroutable.at, reason=reason or None
        )


async def record_need_waiting(uow: ReferralsUnitOfWork, waiting: NeedWaiting) -> None:
    """Every partner that could take a need is full: it waits for a place (not unroutable);
    partners offer it as soon as one frees."""
    async with uow.transaction():
        case = await _case_for_event(uow, waiting.case_id)
        if case is None:
            return
        await case_needs.report(
            uow, case, waiting.need.value, PartnerEvent(Report.WAITING, waiting.at)
        )
        await case_needs.settle(uow, case, actor=PARTNERS_SERVICE, now=waiting.at)


# -- timers ------------------------------------------------------------------------------


async def expire_consents(uow: ReferralsUnitOfWork, *, limit: int = 100) -> int:
    """Consents past their expiry stop routing just as a withdrawal does (partners lose
    access); how many were swept."""
    now = uow.now()
    async with uow.transaction() as session:
        expired = await cases_db.lock_expired_consents(session, now, limit)
        for consent in expired:
            case = await cases_db.lock_case(session, consent["case_id"])
            current = await cases_db.current_consent(session, consent["case_id"])
            if case is None or current is None or current["id"] != consent["id"]:
                # Superseded by a newer consent: it no longer governs anything.
                await cases_db.mark_consent_withdrawn(
                    session, consent["id"], by="superseded", now=now
                )
                continue
            await stop_sharing(
                uow,
                case,
                consent,
                actor=REFERRALS_SERVICE,
                reason="the resident's consent expired",
                now=now,
                why=SharingStopped.EXPIRED,
            )
    return len(expired)
