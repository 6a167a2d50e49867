"""Case operations inside one transaction: lock, move, record, and write the events.

Every function takes the caller's session and outbox; the caller commits. Domain decisions
come from ``domain/``; this module applies them to the tables.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters.tables import cases, consents, residents, timeline
from services.referrals.domain.lifecycle import CaseStatus, TransitionRefused, transition
from services.referrals.domain.sharing import (
    ConsentRecord,
    SharingDecision,
    may_share_with_partners,
    priority,
    summary,
)
from shared.events.payloads import (
    CaseClosed,
    CaseReadyForRouting,
    CaseStatusChanged,
    ConsentWithdrawn,
    ContactRoute,
    RoutingPacket,
)
from shared.identity import age_in_years, postcode_district
from shared.messaging.outbox import Outbox
from shared.vocabulary import ContactMethod, LawfulBasis, Outcome, RiskLevel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """Who did something to a case: a person of an organisation, or a service."""

    subject: str
    organisation: str


RISK_SERVICE = Actor("risk rules", "upstream-risk")
PARTNERS_SERVICE = Actor("partner routing", "upstream-partners")
REFERRALS_SERVICE = Actor("referrals", "upstream-referrals")


def new_id() -> str:
    return str(uuid.uuid4())


async def lock_case(session: AsyncSession, case_id: str) -> RowMapping | None:
    return (
        (await session.execute(select(cases).where(cases.c.id == case_id).with_for_update()))
        .mappings()
        .first()
    )


async def add_timeline(
    session: AsyncSession,
    case_id: str,
    actor: Actor,
    action: str,
    *,
    now: datetime,
    detail: str | None = None,
    status_from: str | None = None,
    status_to: str | None = None,
    referrer_visible: bool = False,
) -> None:
    await session.execute(
        insert(timeline).values(
            case_id=case_id,
            at=now,
            actor=actor.subject,
            actor_org=actor.organisation,
            action=action,
            detail=detail,
            status_from=status_from,
            status_to=status_to,
            referrer_visible=referrer_visible,
        )
    )


async def move(
    session: AsyncSession,
    outbox: Outbox,
    case: RowMapping,
    target: CaseStatus,
    *,
    actor: Actor,
    now: datetime,
    reason: str | None = None,
    outcome: Outcome | None = None,
) -> RowMapping:
    """Apply an allowed transition (TransitionRefused otherwise): status, its timestamp, a
    timeline entry everyone with access may see, and the events it means."""
    current = CaseStatus(case["status"])
    transition(current, target, outcome=outcome)
    values: dict[str, Any] = {
        "status": target.value,
        f"{target.value}_at": now,
        "updated_at": now,
        "status_reason": reason,
    }
    if outcome is not None:
        values["outcome"] = outcome.value
    updated = (
        (
            await session.execute(
                update(cases).where(cases.c.id == case["id"]).values(**values).returning(cases)
            )
        )
        .mappings()
        .one()
    )
    await add_timeline(
        session,
        case["id"],
        actor,
        f"status changed to {target.value}",
        now=now,
        detail=reason,
        status_from=current.value,
        status_to=target.value,
        referrer_visible=True,
    )
    await outbox.add(
        session,
        CaseStatusChanged(
            case_id=case["id"],
            council=case["council"],
            previous=current.value,
            status=target.value,
            reason=reason,
            changed_at=now,
        ),
        subject=case["id"],
    )
    if target in (CaseStatus.CLOSED, CaseStatus.WITHDRAWN):
        await outbox.add(
            session,
            CaseClosed(
                case_id=case["id"],
                council=case["council"],
                outcome=outcome,
                withdrawn=target is CaseStatus.WITHDRAWN,
                closed_at=now,
            ),
            subject=case["id"],
        )
    return updated


async def move_if_allowed(
    session: AsyncSession, outbox: Outbox, case: RowMapping, target: CaseStatus, **kwargs: Any
) -> RowMapping:
    """For events from other services: an impossible move is recorded, not raised (the
    event is still applied once; a caseworker sees what happened)."""
    try:
        return await move(session, outbox, case, target, **kwargs)
    except TransitionRefused as refused:
        log.warning("transition refused", extra={"case_id": case["id"], "reason": str(refused)})
        await add_timeline(
            session,
            case["id"],
            kwargs["actor"],
            f"not moved to {target.value}",
            now=kwargs["now"],
            detail=str(refused),
        )
        return case


async def current_consent(session: AsyncSession, case_id: str) -> RowMapping | None:
    return (
        (
            await session.execute(
                select(consents)
                .where(consents.c.case_id == case_id)
                .order_by(consents.c.created_at.desc(), consents.c.given_at.desc())
                .limit(1)
            )
        )
        .mappings()
        .first()
    )


async def sharing_decision(
    session: AsyncSession, case: RowMapping, *, now: datetime
) -> SharingDecision:
    """May this case go to a voluntary partner now, and why (``domain/sharing.py``)."""
    consent = await current_consent(session, case["id"])
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
    session: AsyncSession, outbox: Outbox, case: RowMapping, *, actor: Actor, now: datetime
) -> RowMapping:
    """After assessment or new consent: to partners if the lawful basis allows it, else to
    the council team to seek consent."""
    decision = await sharing_decision(session, case, now=now)
    if not decision.allowed:
        if case["status"] == CaseStatus.AWAITING_CONSENT:
            return case
        return await move(
            session,
            outbox,
            case,
            CaseStatus.AWAITING_CONSENT,
            actor=actor,
            now=now,
            reason=decision.reason,
        )
    case = await move(
        session,
        outbox,
        case,
        CaseStatus.READY_FOR_ROUTING,
        actor=actor,
        now=now,
        reason=decision.reason,
    )
    await send_packet(session, outbox, case, now=now)
    return case


async def send_packet(
    session: AsyncSession, outbox: Outbox, case: RowMapping, *, now: datetime
) -> None:
    """``case ready for routing``: partners route the needs they have not placed yet."""
    resident = (
        (await session.execute(select(residents).where(residents.c.id == case["resident_id"])))
        .mappings()
        .one()
    )
    consent = await current_consent(session, case["id"])
    await outbox.add(
        session, ready_for_routing(case, resident, consent, now=now), subject=case["id"]
    )


ROUTED = frozenset(
    {CaseStatus.READY_FOR_ROUTING, CaseStatus.OFFERED, CaseStatus.ACCEPTED, CaseStatus.IN_PROGRESS}
)


async def withdraw_consent(
    session: AsyncSession,
    outbox: Outbox,
    case: RowMapping,
    consent: RowMapping,
    *,
    actor: Actor,
    reason: str,
    now: datetime,
) -> RowMapping:
    """Routing stops: partners withdraw their open offers and lose the packet; a routed case
    goes back to the council team to seek consent again."""
    await session.execute(
        update(consents)
        .where(consents.c.id == consent["id"])
        .values(withdrawn_at=now, withdrawn_by=actor.subject)
    )
    await add_timeline(session, case["id"], actor, "consent withdrawn", now=now, detail=reason)
    await outbox.add(
        session,
        ConsentWithdrawn(case_id=case["id"], council=case["council"], withdrawn_at=now),
        subject=case["id"],
    )
    if CaseStatus(case["status"]) in ROUTED:
        case = await move(
            session, outbox, case, CaseStatus.AWAITING_CONSENT, actor=actor, now=now, reason=reason
        )
    return case


def _contact(resident: RowMapping) -> ContactRoute:
    method = ContactMethod(resident["preferred_contact"])
    value = {
        ContactMethod.PHONE: resident["phone"],
        ContactMethod.TEXT: resident["phone"],
        ContactMethod.EMAIL: resident["email"],
        ContactMethod.LETTER: resident["address"],
    }.get(method)
    return ContactRoute(method=method, value=value)


def ready_for_routing(
    case: RowMapping, resident: RowMapping, consent: RowMapping | None, *, now: datetime
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
        packet=RoutingPacket(
            first_name=resident["given_name"],
            contact=_contact(resident),
            needs=case["needs"],
            council=case["council"],
            postcode_district=postcode_district(resident["postcode"])
            if resident["postcode"]
            else None,
            age_years=age_in_years(resident["date_of_birth"], now.date()),
            preferred_language=resident["preferred_language"],
            interpreter_needed=resident["interpreter_needed"],
            accessibility_needs=resident["accessibility_needs"],
            urgency=urgency,
            summary=summary(case["needs"], case["circumstances"], urgency),
        ),
    )


async def record_assessment(
    session: AsyncSession,
    case: RowMapping,
    *,
    level: RiskLevel,
    score: int,
    reasons: list[dict[str, str]],
    suggested_needs: list[str],
    ruleset_version: str,
    now: datetime,
) -> RowMapping:
    updated = (
        (
            await session.execute(
                update(cases)
                .where(cases.c.id == case["id"])
                .values(
                    risk_level=level.value,
                    risk_score=score,
                    risk_reasons=reasons,
                    suggested_needs=suggested_needs,
                    ruleset_version=ruleset_version,
                    priority=priority(RiskLevel(case["urgency"]), level),
                    updated_at=now,
                )
                .returning(cases)
            )
        )
        .mappings()
        .one()
    )
    explanation = "; ".join(r["explanation"] for r in reasons) or "no rule fired"
    await add_timeline(
        session,
        case["id"],
        RISK_SERVICE,
        f"risk assessed: {level.value} (score {score})",
        now=now,
        detail=f"{explanation} [ruleset {ruleset_version}]",
    )
    return updated
