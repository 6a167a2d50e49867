"""The caseworker's API: the queue, one case, and what a caseworker does to a case."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters.scope import cases_visible_to
from services.referrals.adapters.tables import (
    cases,
    notes,
    offers,
    possible_duplicates,
    referrals,
    residents,
    timeline,
)
from services.referrals.api.deps import (
    CaseworkerOrOperator,
    actor,
    conflict,
    not_found,
    refused,
)
from services.referrals.api.schemas import AssignIn, CloseIn, ConsentRecordIn, NoteIn, ReasonIn
from services.referrals.cases import (
    add_timeline,
    current_consent,
    lock_case,
    move,
    new_id,
    route_if_allowed,
    withdraw_consent,
)
from services.referrals.domain.lifecycle import CaseStatus, TransitionRefused
from services.referrals.intake import add_consent
from shared.auth import Principal
from shared.events.envelope import utc_now
from shared.http import DbSession, invalid
from shared.vocabulary import LawfulBasis, Need, RiskLevel

router = APIRouter(prefix="/v1/cases", tags=["cases"])


# -- reading -----------------------------------------------------------------------------


class CaseSummary(BaseModel):
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


class CasePage(BaseModel):
    items: list[CaseSummary]
    next_cursor: str | None


def _summary(row: RowMapping) -> CaseSummary:
    return CaseSummary(
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
    )


def _encode_cursor(row: RowMapping) -> str:
    key = [row["priority"], row["created_at"].isoformat(), row["id"]]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[int, datetime, str]:
    try:
        priority, created, case_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return int(priority), datetime.fromisoformat(created), str(uuid.UUID(case_id))
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise invalid("cursor", "not a cursor this API gave out") from None


_QUEUE = select(cases, residents.c.given_name, residents.c.family_name).join(
    residents, residents.c.id == cases.c.resident_id
)


@router.get("", response_model=CasePage, summary="The case queue: most urgent, then oldest")
async def list_cases(
    principal: CaseworkerOrOperator,
    session: DbSession,
    case_status: Annotated[list[CaseStatus] | None, Query(alias="status")] = None,
    risk_level: Annotated[list[RiskLevel] | None, Query()] = None,
    need: Need | None = None,
    council: Annotated[str | None, Query(pattern=r"^[ENSWK][0-9]{8}$")] = None,
    assigned_to: Annotated[str | None, Query(max_length=200)] = None,
    origin: Literal["referral", "flag"] | None = None,
    opened_from: date | None = None,
    opened_to: date | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> CasePage:
    query = _QUEUE.where(cases_visible_to(principal))
    if case_status:
        query = query.where(cases.c.status.in_([s.value for s in case_status]))
    if risk_level:
        query = query.where(cases.c.risk_level.in_([r.value for r in risk_level]))
    if need:
        query = query.where(cases.c.needs.contains([need.value]))
    if council:
        query = query.where(cases.c.council == council)
    if assigned_to:
        query = query.where(cases.c.assigned_to == assigned_to)
    if origin:
        query = query.where(cases.c.origin == origin)
    if opened_from:
        query = query.where(cases.c.created_at >= datetime.combine(opened_from, time.min))
    if opened_to:
        query = query.where(
            cases.c.created_at < datetime.combine(opened_to + timedelta(days=1), time.min)
        )
    if cursor:
        priority, created, case_id = _decode_cursor(cursor)
        query = query.where(
            or_(
                cases.c.priority < priority,
                and_(cases.c.priority == priority, cases.c.created_at > created),
                and_(
                    cases.c.priority == priority,
                    cases.c.created_at == created,
                    cases.c.id > case_id,
                ),
            )
        )
    rows = (
        (
            await session.execute(
                query.order_by(cases.c.priority.desc(), cases.c.created_at, cases.c.id).limit(
                    limit + 1
                )
            )
        )
        .mappings()
        .all()
    )
    page = rows[:limit]
    return CasePage(
        items=[_summary(r) for r in page],
        next_cursor=_encode_cursor(page[-1]) if len(rows) > limit else None,
    )


async def _visible_case(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, *, lock: bool = False
) -> RowMapping:
    query = select(cases.c.id).where(cases.c.id == str(case_id), cases_visible_to(principal))
    found = (await session.execute(query)).first()
    if found is None:
        raise not_found("case")
    case = (
        await lock_case(session, found.id)
        if lock
        else (await session.execute(select(cases).where(cases.c.id == found.id))).mappings().one()
    )
    assert case is not None
    return case


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in result.mappings().all()]


@router.get("/{case_id}", summary="One case: resident, referrals, assessment, offers, timeline")
async def get_case(
    case_id: uuid.UUID, principal: CaseworkerOrOperator, session: DbSession
) -> dict[str, Any]:
    case = await _visible_case(session, principal, case_id)
    cid = case["id"]
    resident = (
        (await session.execute(select(residents).where(residents.c.id == case["resident_id"])))
        .mappings()
        .one()
    )
    consent = await current_consent(session, cid)
    return {
        **{
            k: case[k]
            for k in (
                "id",
                "council",
                "status",
                "priority",
                "urgency",
                "needs",
                "circumstances",
                "origin",
                "lawful_basis",
                "data_sharing_agreement",
                "assigned_to",
                "outcome",
                "status_reason",
                "unroutable_reasons",
                "created_at",
                "updated_at",
            )
        },
        "status_times": {
            s.value: case[f"{s.value}_at"] for s in CaseStatus if case[f"{s.value}_at"] is not None
        },
        "resident": {
            k: resident[k]
            for k in (
                "id",
                "given_name",
                "family_name",
                "date_of_birth",
                "postcode",
                "uprn",
                "address",
                "phone",
                "email",
                "preferred_contact",
                "preferred_language",
                "interpreter_needed",
                "accessibility_needs",
                "council_reference",
            )
        },
        "assessment": None
        if case["risk_level"] is None
        else {
            "level": case["risk_level"],
            "score": case["risk_score"],
            "reasons": case["risk_reasons"],
            "suggested_needs": case["suggested_needs"],
            "ruleset_version": case["ruleset_version"],
        },
        "consent": None
        if consent is None
        else {
            k: consent[k]
            for k in (
                "given_by",
                "method",
                "given_at",
                "partner_kinds",
                "purpose",
                "expires_at",
                "recorded_by",
                "withdrawn_at",
            )
        },
        "referrals": _rows(
            await session.execute(
                select(
                    referrals.c.id,
                    referrals.c.referrer_org,
                    referrals.c.referrer_kind,
                    referrals.c.needs,
                    referrals.c.circumstances,
                    referrals.c.circumstances_text,
                    referrals.c.urgency,
                    referrals.c.created_at,
                )
                .where(referrals.c.case_id == cid)
                .order_by(referrals.c.created_at)
            )
        ),
        "offers": _rows(
            await session.execute(
                select(offers).where(offers.c.case_id == cid).order_by(offers.c.updated_at)
            )
        ),
        "notes": _rows(
            await session.execute(
                select(notes.c.author, notes.c.author_org, notes.c.text, notes.c.created_at)
                .where(notes.c.case_id == cid)
                .order_by(notes.c.created_at)
            )
        ),
        "possible_duplicates": _rows(
            await session.execute(
                select(
                    possible_duplicates.c.id,
                    possible_duplicates.c.candidate_id,
                    possible_duplicates.c.reason,
                    possible_duplicates.c.status,
                ).where(
                    or_(
                        possible_duplicates.c.resident_id == case["resident_id"],
                        possible_duplicates.c.candidate_id == case["resident_id"],
                    )
                )
            )
        ),
        "timeline": _rows(
            await session.execute(
                select(
                    timeline.c.at,
                    timeline.c.actor,
                    timeline.c.actor_org,
                    timeline.c.action,
                    timeline.c.detail,
                    timeline.c.status_from,
                    timeline.c.status_to,
                )
                .where(timeline.c.case_id == cid)
                .order_by(timeline.c.id)
            )
        ),
    }


# -- acting ------------------------------------------------------------------------------


class Acknowledged(BaseModel):
    case_id: str
    status: str


def _ack(case: RowMapping) -> Acknowledged:
    return Acknowledged(case_id=case["id"], status=case["status"])


@router.post("/{case_id}/assign", response_model=Acknowledged, summary="Assign a caseworker")
async def assign(
    case_id: uuid.UUID,
    body: AssignIn,
    principal: CaseworkerOrOperator,
    request: Request,
    session: DbSession,
) -> Acknowledged:
    async with session.begin():
        case = await _visible_case(session, principal, case_id, lock=True)
        now = utc_now()
        await session.execute(
            update(cases)
            .where(cases.c.id == case["id"])
            .values(assigned_to=body.caseworker, updated_at=now)
        )
        await add_timeline(
            session,
            case["id"],
            actor(principal),
            "assigned",
            now=now,
            detail=f"to {body.caseworker}",
        )
    return _ack(case)


@router.post(
    "/{case_id}/notes",
    status_code=status.HTTP_201_CREATED,
    response_model=Acknowledged,
    summary="Add a note",
)
async def add_note(
    case_id: uuid.UUID, body: NoteIn, principal: CaseworkerOrOperator, session: DbSession
) -> Acknowledged:
    async with session.begin():
        case = await _visible_case(session, principal, case_id, lock=True)
        who = actor(principal)
        now = utc_now()
        await session.execute(
            insert(notes).values(
                id=new_id(),
                case_id=case["id"],
                author=who.subject,
                author_org=who.organisation,
                text=body.text,
            )
        )
        await add_timeline(session, case["id"], who, "note added", now=now)
    return _ack(case)


@router.post(
    "/{case_id}/consent",
    response_model=Acknowledged,
    summary="Record the resident's consent; a case waiting for it is routed",
)
async def record_consent(
    case_id: uuid.UUID,
    body: ConsentRecordIn,
    principal: CaseworkerOrOperator,
    request: Request,
    session: DbSession,
) -> Acknowledged:
    outbox = request.app.state.outbox
    async with session.begin():
        case = await _visible_case(session, principal, case_id, lock=True)
        if CaseStatus(case["status"]) in (CaseStatus.CLOSED, CaseStatus.WITHDRAWN):
            raise refused(f"the case is {case['status']}", case["status"])
        now, who = utc_now(), actor(principal)
        await add_consent(
            session, case["id"], body, recorded_by=f"{who.subject} ({who.organisation})"
        )
        values: dict[str, Any] = {"lawful_basis": LawfulBasis.CONSENT.value, "updated_at": now}
        if body.needs:
            values["needs"] = list(dict.fromkeys(n.value for n in body.needs))
        case = (
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
            who,
            "consent recorded",
            now=now,
            detail=f"given by {body.given_by} ({body.method}) for "
            + ", ".join(k.value for k in body.partner_kinds),
        )
        if case["status"] in (CaseStatus.AWAITING_CONSENT, CaseStatus.ASSESSED):
            case = await route_if_allowed(session, outbox, case, actor=who, now=now)
    return _ack(case)


@router.post(
    "/{case_id}/consent/withdraw",
    response_model=Acknowledged,
    summary="The resident withdraws consent: routing stops, open offers are withdrawn",
)
async def record_consent_withdrawal(
    case_id: uuid.UUID,
    body: ReasonIn,
    principal: CaseworkerOrOperator,
    request: Request,
    session: DbSession,
) -> Acknowledged:
    outbox = request.app.state.outbox
    async with session.begin():
        case = await _visible_case(session, principal, case_id, lock=True)
        consent = await current_consent(session, case["id"])
        if consent is None or consent["withdrawn_at"] is not None:
            raise refused("there is no current consent to withdraw", case["status"])
        case = await withdraw_consent(
            session,
            outbox,
            case,
            consent,
            actor=actor(principal),
            reason=body.reason,
            now=utc_now(),
        )
    return _ack(case)


@router.post("/{case_id}/withdraw", response_model=Acknowledged, summary="Withdraw the case")
async def withdraw_case(
    case_id: uuid.UUID,
    body: ReasonIn,
    principal: CaseworkerOrOperator,
    request: Request,
    session: DbSession,
) -> Acknowledged:
    return await _move_by_caseworker(
        session, request, principal, case_id, CaseStatus.WITHDRAWN, reason=body.reason
    )


@router.post(
    "/{case_id}/close", response_model=Acknowledged, summary="Close the case with an outcome"
)
async def close_case(
    case_id: uuid.UUID,
    body: CloseIn,
    principal: CaseworkerOrOperator,
    request: Request,
    session: DbSession,
) -> Acknowledged:
    return await _move_by_caseworker(
        session,
        request,
        principal,
        case_id,
        CaseStatus.CLOSED,
        reason=body.note,
        outcome=body.outcome,
    )


@router.post(
    "/{case_id}/route",
    response_model=Acknowledged,
    summary="Try routing again (for an unroutable case, once the gap is fixed)",
)
async def route_again(
    case_id: uuid.UUID, principal: CaseworkerOrOperator, request: Request, session: DbSession
) -> Acknowledged:
    async with session.begin():
        case = await _visible_case(session, principal, case_id, lock=True)
        try:
            case = await route_if_allowed(
                session, request.app.state.outbox, case, actor=actor(principal), now=utc_now()
            )
        except TransitionRefused as refusal:
            raise conflict(refusal) from None
    return _ack(case)


async def _move_by_caseworker(
    session: AsyncSession,
    request: Request,
    principal: Principal,
    case_id: uuid.UUID,
    target: CaseStatus,
    **kwargs: Any,
) -> Acknowledged:
    async with session.begin():
        case = await _visible_case(session, principal, case_id, lock=True)
        try:
            case = await move(
                session,
                request.app.state.outbox,
                case,
                target,
                actor=actor(principal),
                now=utc_now(),
                **kwargs,
            )
        except TransitionRefused as refusal:
            raise conflict(refusal) from None
    return _ack(case)
