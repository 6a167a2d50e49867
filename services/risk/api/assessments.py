"""Why was this flagged? In plain English, for a caseworker to read to the resident."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel
from sqlalchemy import ColumnElement, select, true
from sqlalchemy.engine import RowMapping

from services.risk.adapters.tables import assessments, cases, profile_keys, profiles
from services.risk.domain.transparency import explain
from shared.auth import OrganisationKind, Principal, Role, require
from shared.events.payloads import Reason
from shared.http import DbSession
from shared.vocabulary import Need, RiskLevel

router = APIRouter(prefix="/v1", tags=["assessments"])
Caseworker = Annotated[
    Principal,
    Depends(
        require(
            kinds=[OrganisationKind.COUNCIL, OrganisationKind.OPERATOR],
            roles=[Role.CASEWORKER, Role.OPERATOR],
        )
    ),
]


class Why(BaseModel):
    level: RiskLevel
    score: int
    assessed_at: datetime
    ruleset_version: str
    reasons: list[Reason]
    suggested_needs: list[Need]
    explanation: str


def _why(row: RowMapping) -> Why:
    level = RiskLevel(row["level"])
    return Why(
        level=level,
        score=row["score"],
        assessed_at=row["created_at"],
        ruleset_version=row["ruleset_version"],
        reasons=row["reasons"],
        suggested_needs=row["suggested_needs"],
        explanation=explain(level, [r["explanation"] for r in row["reasons"]]),
    )


def _council(principal: Principal, column: ColumnElement[str]) -> ColumnElement[bool]:
    return (
        true()
        if principal.kind is OrganisationKind.OPERATOR
        else (column == principal.organisation)
    )


def _not_found(what: str) -> HTTPException:
    return HTTPException(404, f"no assessment for this {what}")


@router.get(
    "/cases/{case_id}/assessment",
    response_model=Why,
    summary="Why a case has its level: the latest assessment, in plain English",
)
async def case_assessment(case_id: uuid.UUID, principal: Caseworker, session: DbSession) -> Why:
    row = (
        (
            await session.execute(
                select(assessments)
                .join(cases, cases.c.case_id == assessments.c.case_id)
                .where(assessments.c.case_id == str(case_id), _council(principal, cases.c.council))
                .order_by(assessments.c.created_at.desc())
                .limit(1)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise _not_found("case")
    return _why(row)


@router.get(
    "/residents/{resident_key}/assessment",
    response_model=Why,
    summary="Why a resident was flagged, by the resident key a flag carried",
)
async def resident_assessment(resident_key: str, principal: Caseworker, session: DbSession) -> Why:
    row = (
        (
            await session.execute(
                select(assessments)
                .join(profile_keys, profile_keys.c.profile_id == assessments.c.profile_id)
                .join(profiles, profiles.c.id == assessments.c.profile_id)
                .where(profile_keys.c.key == resident_key, _council(principal, profiles.c.council))
                .order_by(assessments.c.created_at.desc())
                .limit(1)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise _not_found("resident")
    return _why(row)
