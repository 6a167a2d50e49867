"""The caseworker's API: the queue, one case, and what a caseworker does to a case."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status

from services.referrals.api.deps import CaseworkerOrOperator, ReferralsWork
from services.referrals.api.schemas import (
    Acknowledged,
    AssignIn,
    BasisIn,
    CasePage,
    CaseSummary,
    CloseIn,
    ConsentRecordIn,
    GapInQueue,
    NoteIn,
    OverdueCount,
    ReasonIn,
)
from services.referrals.domain.lifecycle import CaseStatus
from services.referrals.domain.needs import NeedStatus
from services.referrals.service_layer import cases
from shared.audit import Category, personal_data
from shared.input_policy import IsoDate
from shared.vocabulary import Need, RiskLevel

router = APIRouter(prefix="/v1/cases", tags=["cases"])


# -- reading -----------------------------------------------------------------------------


@router.get(
    "",
    response_model=CasePage,
    summary="The case queue: most urgent, then oldest",
    openapi_extra=personal_data(Category.IDENTITY, Category.NEEDS, Category.PROGRESS),
)
async def list_cases(
    principal: CaseworkerOrOperator,
    uow: ReferralsWork,
    case_status: Annotated[list[CaseStatus] | None, Query(alias="status")] = None,
    risk_level: Annotated[list[RiskLevel] | None, Query()] = None,
    need: Need | None = None,
    need_status: Annotated[
        list[NeedStatus] | None,
        Query(description="cases with a need in one of these statuses"),
    ] = None,
    overdue: Annotated[
        bool | None,
        Query(description="true: cases with an offer overdue for follow-up; false: without"),
    ] = None,
    council: Annotated[str | None, Query(pattern=r"^[ENSWK][0-9]{8}$")] = None,
    assigned_to: Annotated[str | None, Query(max_length=200)] = None,
    origin: Literal["referral", "flag"] | None = None,
    opened_from: IsoDate | None = None,
    opened_to: IsoDate | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> CasePage:
    page = await cases.case_queue(
        uow,
        principal,
        cases.QueueQuery(
            statuses=tuple(case_status or ()),
            risk_levels=tuple(risk_level or ()),
            need=need,
            need_statuses=tuple(need_status or ()),
            overdue=overdue,
            council=council,
            assigned_to=assigned_to,
            origin=origin,
            opened_from=opened_from,
            opened_to=opened_to,
            cursor=cursor,
            limit=limit,
        ),
    )
    return CasePage(
        items=[CaseSummary(**vars(item)) for item in page.items],
        next_cursor=page.next_cursor,
        gaps=[
            GapInQueue(
                id=g.gap.gap_id,
                **{k: v for k, v in vars(g.gap).items() if k != "gap_id"},
                cases=g.cases,
            )
            for g in page.gaps
        ],
    )


@router.get(
    "/overdue",
    response_model=list[OverdueCount],
    summary="Offers overdue for follow-up (accepted, no progress in time), by council",
    openapi_extra=personal_data(),  # counts only
)
async def overdue_counts(
    principal: CaseworkerOrOperator,
    uow: ReferralsWork,
    council: Annotated[str | None, Query(pattern=r"^[ENSWK][0-9]{8}$")] = None,
) -> list[OverdueCount]:
    counts = await cases.overdue_counts(uow, principal, council)
    return [OverdueCount(council=c.council, offers=c.offers, cases=c.cases) for c in counts]


_CASE_FIELDS = (
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
    "basis_justification",
    "basis_decided_by",
    "article9_condition",
    "assigned_to",
    "outcome",
    "status_reason",
    "unroutable_reasons",
    "created_at",
    "updated_at",
)
_RESIDENT_FIELDS = (
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
_CONSENT_FIELDS = (
    "given_by",
    "method",
    "given_at",
    "partner_kinds",
    "purpose",
    "expires_at",
    "recorded_by",
    "withdrawn_at",
)


@router.get(
    "/{case_id}",
    summary="One case: resident, referrals, assessment, offers, timeline",
    openapi_extra=personal_data(
        Category.IDENTITY,
        Category.CONTACT,
        Category.NEEDS,
        Category.FREE_TEXT,
        Category.CONSENT,
        Category.RISK,
        Category.PROGRESS,
        Category.MATCHING,
    ),
)
async def get_case(
    case_id: uuid.UUID, principal: CaseworkerOrOperator, uow: ReferralsWork
) -> dict[str, Any]:
    detail = await cases.case_detail(uow, principal, str(case_id))
    case, consent = detail.case, detail.consent
    return {
        **{k: case[k] for k in _CASE_FIELDS},
        "status_times": {
            s.value: case[f"{s.value}_at"] for s in CaseStatus if case[f"{s.value}_at"] is not None
        },
        "resident": {k: detail.resident[k] for k in _RESIDENT_FIELDS},
        "assessment": None
        if case["risk_level"] is None
        else {
            "level": case["risk_level"],
            "score": case["risk_score"],
            "reasons": case["risk_reasons"],
            "suggested_needs": case["suggested_needs"],
            "ruleset_version": case["ruleset_version"],
        },
        "consent": None if consent is None else {k: consent[k] for k in _CONSENT_FIELDS},
        "referrals": detail.referrals,
        "need_progress": detail.needs,
        "offers": detail.offers,
        "overdue_offers": detail.overdue_offers,
        "notes": detail.notes,
        "possible_duplicates": detail.possible_duplicates,
        "timeline": detail.timeline,
    }


# -- acting ------------------------------------------------------------------------------


def _acknowledged(ack: cases.CaseAcknowledged) -> Acknowledged:
    return Acknowledged(case_id=ack.case_id, status=ack.status)


@router.post(
    "/{case_id}/assign",
    response_model=Acknowledged,
    summary="Assign a caseworker",
    openapi_extra=personal_data(),
)
async def assign(
    case_id: uuid.UUID, body: AssignIn, principal: CaseworkerOrOperator, uow: ReferralsWork
) -> Acknowledged:
    return _acknowledged(await cases.assign_case(uow, principal, str(case_id), body.caseworker))


@router.post(
    "/{case_id}/notes",
    status_code=status.HTTP_201_CREATED,
    response_model=Acknowledged,
    summary="Add a note",
    openapi_extra=personal_data(),
)
async def add_note(
    case_id: uuid.UUID, body: NoteIn, principal: CaseworkerOrOperator, uow: ReferralsWork
) -> Acknowledged:
    return _acknowledged(await cases.add_note(uow, principal, str(case_id), body.text))


@router.post(
    "/{case_id}/consent",
    response_model=Acknowledged,
    summary="Record the resident's consent; a case waiting for it is routed",
    openapi_extra=personal_data(),
)
async def record_consent(
    case_id: uuid.UUID, body: ConsentRecordIn, principal: CaseworkerOrOperator, uow: ReferralsWork
) -> Acknowledged:
    return _acknowledged(
        await cases.record_consent(
            uow,
            principal,
            str(case_id),
            body.command(),
            needs=tuple(body.needs) if body.needs else None,
        )
    )


@router.post(
    "/{case_id}/consent/withdraw",
    response_model=Acknowledged,
    summary="The resident withdraws consent: routing stops, open offers are withdrawn",
    openapi_extra=personal_data(),
)
async def record_consent_withdrawal(
    case_id: uuid.UUID, body: ReasonIn, principal: CaseworkerOrOperator, uow: ReferralsWork
) -> Acknowledged:
    return _acknowledged(
        await cases.record_consent_withdrawal(uow, principal, str(case_id), body.reason)
    )


@router.post(
    "/{case_id}/basis",
    response_model=Acknowledged,
    summary="Change the case's lawful basis, with a justification, who decided and why",
    openapi_extra=personal_data(),
)
async def change_basis(
    case_id: uuid.UUID, body: BasisIn, principal: CaseworkerOrOperator, uow: ReferralsWork
) -> Acknowledged:
    change = cases.BasisChange(
        basis=body.lawful_basis,
        reason=body.reason,
        justification=body.justification,
        decided_by=body.decided_by,
        article9_condition=body.article9_condition,
        data_sharing_agreement=body.data_sharing_agreement,
    )
    return _acknowledged(await cases.change_basis(uow, principal, str(case_id), change))


@router.post(
    "/{case_id}/withdraw",
    response_model=Acknowledged,
    summary="Withdraw the case",
    openapi_extra=personal_data(),
)
async def withdraw_case(
    case_id: uuid.UUID, body: ReasonIn, principal: CaseworkerOrOperator, uow: ReferralsWork
) -> Acknowledged:
    return _acknowledged(await cases.withdraw_case(uow, principal, str(case_id), body.reason))


@router.post(
    "/{case_id}/close",
    response_model=Acknowledged,
    summary="Close the case with an outcome",
    openapi_extra=personal_data(),
)
async def close_case(
    case_id: uuid.UUID, body: CloseIn, principal: CaseworkerOrOperator, uow: ReferralsWork
) -> Acknowledged:
    return _acknowledged(
        await cases.close_case(uow, principal, str(case_id), body.outcome, note=body.note)
    )


@router.post(
    "/{case_id}/route",
    response_model=Acknowledged,
    summary="Try routing again (for an unroutable case, once the gap is fixed)",
    openapi_extra=personal_data(),
)
async def route_again(
    case_id: uuid.UUID, principal: CaseworkerOrOperator, uow: ReferralsWork
) -> Acknowledged:
    return _acknowledged(await cases.route_again(uow, principal, str(case_id)))
