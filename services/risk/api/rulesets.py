"""Rules, for operators: the current ruleset and its history, a dry run of a candidate over
the stored data, and activation. And the public transparency record."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import select

from services.risk.adapters.tables import rulesets
from services.risk.domain.rules import RulesetError, load_ruleset
from services.risk.domain.transparency import transparency_record
from services.risk.rulebook import RULEBOOK, activate, dry_run, store
from shared.auth import OrganisationKind, Principal, Role, require
from shared.events.envelope import utc_now
from shared.http import ApiProblem, DbSession

router = APIRouter(prefix="/v1", tags=["rules"])
Operator = Annotated[
    Principal, Depends(require(kinds=[OrganisationKind.OPERATOR], roles=[Role.OPERATOR]))
]
Reader = Annotated[Principal, Depends(require(roles=[Role.OPERATOR, Role.CASEWORKER]))]


class RulesetInfo(BaseModel):
    version: str
    label: str
    active: bool
    created_by: str
    created_at: datetime
    activated_at: datetime | None


class RulesetDetail(RulesetInfo):
    source: str


@router.get("/rulesets", response_model=list[RulesetInfo], summary="Every ruleset, newest first")
async def list_rulesets(principal: Reader, session: DbSession) -> list[RulesetInfo]:
    await RULEBOOK.current(session)  # installs the default on first use
    await session.commit()
    rows = (
        (await session.execute(select(rulesets).order_by(rulesets.c.created_at.desc())))
        .mappings()
        .all()
    )
    return [RulesetInfo(**row) for row in rows]


@router.get("/rulesets/current", response_model=RulesetDetail, summary="The ruleset in force")
async def current_ruleset(principal: Reader, session: DbSession) -> RulesetDetail:
    version = (await RULEBOOK.current(session)).version
    await session.commit()
    return await get_ruleset(version, principal, session)


@router.get("/rulesets/{version}", response_model=RulesetDetail)
async def get_ruleset(version: str, principal: Reader, session: DbSession) -> RulesetDetail:
    row = (
        (await session.execute(select(rulesets).where(rulesets.c.version == version)))
        .mappings()
        .first()
    )
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such ruleset")
    return RulesetDetail(**row)


@router.post(
    "/rulesets",
    status_code=status.HTTP_201_CREATED,
    response_model=RulesetInfo,
    summary="Propose a ruleset (YAML); it is checked, stored, not yet active",
)
async def propose_ruleset(
    principal: Operator,
    session: DbSession,
    source: Annotated[str, Body(media_type="application/yaml", max_length=200_000)],
) -> RulesetInfo:
    try:
        async with session.begin():
            ruleset = await store(session, source, created_by=principal.subject)
    except RulesetError as exc:
        raise ApiProblem(
            422,
            "the ruleset was refused; the ruleset in force is unchanged",
            errors=[{"field": "ruleset", "reason": e} for e in exc.errors],
        ) from None
    return RulesetInfo(**(await get_ruleset(ruleset.version, principal, session)).model_dump())


@router.post(
    "/rulesets/{version}/dry-run",
    summary="Compare a stored ruleset with the one in force over the stored data",
)
async def dry_run_ruleset(version: str, principal: Operator, session: DbSession) -> dict[str, Any]:
    candidate = load_ruleset((await get_ruleset(version, principal, session)).source)
    current = await RULEBOOK.current(session)
    return await dry_run(session, current, candidate, today=utc_now().date())


@router.post(
    "/rulesets/{version}/activate",
    response_model=RulesetInfo,
    summary="Put a stored ruleset in force",
)
async def activate_ruleset(version: str, principal: Operator, session: DbSession) -> RulesetInfo:
    async with session.begin():
        if not await activate(session, version):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such ruleset")
    return RulesetInfo(**(await get_ruleset(version, principal, session)).model_dump())


@router.get(
    "/transparency",
    response_class=PlainTextResponse,
    tags=["transparency"],
    summary="The algorithmic transparency record (Markdown), public",
)
async def transparency(request: Request, session: DbSession) -> PlainTextResponse:
    ruleset = await RULEBOOK.current(session)
    await session.commit()
    return PlainTextResponse(
        transparency_record(ruleset, today=utc_now().date()),
        media_type="text/markdown; charset=utf-8",
    )
