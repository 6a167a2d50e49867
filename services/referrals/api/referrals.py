"""Intake: ``POST /v1/referrals``, and a referrer's view of what it referred."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from fastapi import APIRouter, Header, status
from fastapi.responses import JSONResponse

from services.referrals.api.deps import AnyPrincipal, ReferralsWork, Referrer
from services.referrals.api.schemas import (
    ReferralAccepted,
    ReferralCreate,
    ReferralStatus,
    Sharing,
    TimelineEntry,
)
from services.referrals.service_layer import intake
from services.referrals.service_layer.residents import ResidentFacts
from shared.audit import Category, personal_data

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


def new_referral(body: ReferralCreate) -> intake.NewReferral:
    person, address = body.resident, body.resident.address
    return intake.NewReferral(
        resident=ResidentFacts(
            given_name=person.given_name,
            family_name=person.family_name,
            date_of_birth=person.date_of_birth,
            postcode=address.postcode if address else None,
            uprn=address.uprn if address else None,
            address=address.line if address else None,
            phone=person.contact.phone,
            email=person.contact.email,
            preferred_contact=person.contact.preferred.value,
            preferred_language=person.preferred_language,
            interpreter_needed=person.interpreter_needed,
            accessibility_needs=person.accessibility_needs,
        ),
        council=body.council,
        needs=tuple(body.needs),
        circumstances=tuple(body.circumstances),
        circumstances_text=body.circumstances_text,
        urgency=body.urgency,
        lawful_basis=body.sharing.lawful_basis,
        consent=body.sharing.consent.command() if body.sharing.consent else None,
        data_sharing_agreement=body.sharing.data_sharing_agreement,
        justification=body.sharing.justification,
        decided_by=body.sharing.decided_by,
        article9_condition=body.sharing.article9_condition,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ReferralAccepted,
    summary="Refer a resident",
    openapi_extra=personal_data(),
)
async def create_referral(
    body: ReferralCreate,
    principal: Referrer,
    uow: ReferralsWork,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    # The fingerprint of the request as sent: a retry must send the same body.
    request_hash = hashlib.sha256(
        json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()
    receipt = await intake.receive_referral(
        uow,
        principal,
        new_referral(body),
        intake.IdempotencyKey(idempotency_key, request_hash) if idempotency_key else None,
    )
    answer = ReferralAccepted(
        referral_id=receipt.referral_id,
        case_id=receipt.case_id,
        case_status=receipt.case_status,
        sharing=Sharing(allowed=receipt.sharing.allowed, reason=receipt.sharing.reason),
        attached_to_open_case=receipt.attached_to_open_case,
        possible_duplicates=receipt.possible_duplicates,
    )
    return JSONResponse(
        answer.model_dump(mode="json", exclude_none=True),
        status_code=status.HTTP_201_CREATED,
        headers={"Idempotent-Replayed": "true"} if receipt.replayed else None,
    )


@router.get(
    "/{referral_id}",
    response_model=ReferralStatus,
    summary="A referral's progress, for whoever made it",
    openapi_extra=personal_data(Category.NEEDS, Category.PROGRESS),
)
async def get_referral(
    referral_id: str, principal: AnyPrincipal, uow: ReferralsWork
) -> ReferralStatus:
    progress = await intake.referral_progress(uow, principal, referral_id)
    return ReferralStatus(
        referral_id=progress.referral_id,
        case_status=progress.case_status,
        needs=progress.needs,
        referred_at=progress.referred_at,
        timeline=[
            TimelineEntry(at=e.at, action=e.action, status=e.status) for e in progress.timeline
        ],
    )
