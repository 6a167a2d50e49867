"""Intake: ``POST /v1/referrals``, and a referrer's view of what it referred."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from services.referrals.adapters.scope import referrals_visible_to
from services.referrals.adapters.tables import cases, idempotency_keys, referrals, timeline
from services.referrals.api.deps import AnyPrincipal, Referrer, actor, not_found
from services.referrals.api.schemas import (
    ReferralAccepted,
    ReferralCreate,
    ReferralStatus,
    Sharing,
    TimelineEntry,
)
from services.referrals.intake import receive_referral
from services.referrals.settings import ReferralsSettings
from shared.auth import OrganisationKind, Principal
from shared.events.envelope import utc_now
from shared.http import DbSession, invalid

router = APIRouter(prefix="/v1/referrals", tags=["referrals"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="a retried POST with the same key returns the first answer",
    ),
]


def _council_for(body: ReferralCreate, principal: Principal, settings: ReferralsSettings) -> str:
    council = body.council
    if council is None and principal.kind is OrganisationKind.COUNCIL:
        council = principal.organisation
    if council is None and len(settings.councils) == 1:
        council = settings.councils[0]
    if council is None:
        raise invalid("council", "required: the GSS code of the council the resident lives in")
    if council not in settings.councils:
        raise invalid("council", f"{council} is not a council this deployment serves")
    return council


async def _replayed(session, principal: Principal, key: str, request_hash: str):
    stored = (
        (
            await session.execute(
                select(idempotency_keys).where(
                    idempotency_keys.c.organisation == principal.organisation,
                    idempotency_keys.c.key == key,
                )
            )
        )
        .mappings()
        .first()
    )
    if stored is None:
        return None
    if stored["request_hash"] != request_hash:
        raise invalid("Idempotency-Key", "already used for a different request")
    return JSONResponse(
        stored["response"],
        status_code=stored["status_code"],
        headers={"Idempotent-Replayed": "true"},
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ReferralAccepted,
    summary="Refer a resident",
)
async def create_referral(
    body: ReferralCreate,
    principal: Referrer,
    request: Request,
    session: DbSession,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    settings: ReferralsSettings = request.app.state.settings
    council = _council_for(body, principal, settings)
    request_hash = hashlib.sha256(
        json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()
    try:
        async with session.begin():
            if idempotency_key and (
                replay := await _replayed(session, principal, idempotency_key, request_hash)
            ):
                return replay
            result = await receive_referral(
                session,
                request.app.state.outbox,
                body,
                council=council,
                referrer=actor(principal),
                referrer_kind=principal.kind.value,
                key_secret=settings.resident_key_secret.get_secret_value(),
                now=utc_now(),
            )
            is_council = principal.kind is not OrganisationKind.VCS
            answer = ReferralAccepted(
                referral_id=result.referral_id,
                case_id=result.case["id"],
                case_status=result.case["status"],
                sharing=Sharing(allowed=result.sharing.allowed, reason=result.sharing.reason),
                attached_to_open_case=result.attached_to_open_case if is_council else None,
                possible_duplicates=result.possible_duplicates if is_council else None,
            ).model_dump(mode="json", exclude_none=True)
            if idempotency_key:
                await session.execute(
                    insert(idempotency_keys).values(
                        organisation=principal.organisation,
                        key=idempotency_key,
                        request_hash=request_hash,
                        status_code=201,
                        response=answer,
                    )
                )
    except IntegrityError:
        # The same key raced in from a retry: answer as the first request did.
        if idempotency_key is None:
            raise
        await session.rollback()
        replay = await _replayed(session, principal, idempotency_key, request_hash)
        if replay is None:
            raise
        return replay
    return JSONResponse(answer, status_code=status.HTTP_201_CREATED)


@router.get(
    "/{referral_id}",
    response_model=ReferralStatus,
    summary="A referral's progress, for whoever made it",
)
async def get_referral(
    referral_id: str, principal: AnyPrincipal, session: DbSession
) -> ReferralStatus:
    row = (
        (
            await session.execute(
                select(referrals, cases.c.status.label("case_status"))
                .join(cases, cases.c.id == referrals.c.case_id)
                .where(referrals.c.id == _uuid_or_404(referral_id), referrals_visible_to(principal))
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise not_found("referral")
    entries = (
        (
            await session.execute(
                select(timeline)
                .where(
                    timeline.c.case_id == row["case_id"],
                    timeline.c.referrer_visible,
                    timeline.c.at >= row["created_at"],
                    # Status changes, and the referrer's own entries: nothing from other referrers.
                    timeline.c.status_to.is_not(None)
                    | (timeline.c.actor_org == row["referrer_org"]),
                )
                .order_by(timeline.c.id)
            )
        )
        .mappings()
        .all()
    )
    return ReferralStatus(
        referral_id=row["id"],
        case_status=row["case_status"],
        needs=row["needs"],
        referred_at=row["created_at"],
        # Progress only: who else referred, and why the status changed, stay with the council.
        timeline=[
            TimelineEntry(at=e["at"], action=e["action"], status=e["status_to"]) for e in entries
        ],
    )


def _uuid_or_404(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise not_found("referral") from None
