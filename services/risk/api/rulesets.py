"""Rules, for operators: the current ruleset and its history, a dry run of a candidate over
the stored data, and activation. And the public transparency record."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, status

from services.risk.api.deps import RiskWork, RulesetReader
from services.risk.api.schemas import RulesetDetail, RulesetInfo
from services.risk.service_layer import rulesets
from shared.auth import Operator
from shared.http import MarkdownResponse

router = APIRouter(prefix="/v1", tags=["rules"])


@router.get("/rulesets", response_model=list[RulesetInfo], summary="Every ruleset, newest first")
async def list_rulesets(principal: RulesetReader, uow: RiskWork) -> list[RulesetInfo]:
    return [RulesetInfo.of(stored) for stored in await rulesets.list_rulesets(uow)]


@router.get("/rulesets/current", response_model=RulesetDetail, summary="The ruleset in force")
async def current_ruleset(principal: RulesetReader, uow: RiskWork) -> RulesetDetail:
    return RulesetDetail.of(await rulesets.current_ruleset(uow))


@router.get("/rulesets/{version}", response_model=RulesetDetail)
async def get_ruleset(version: str, principal: RulesetReader, uow: RiskWork) -> RulesetDetail:
    return RulesetDetail.of(await rulesets.get_ruleset(uow, version))


@router.post(
    "/rulesets",
    status_code=status.HTTP_201_CREATED,
    response_model=RulesetInfo,
    summary="Propose a ruleset (YAML); it is checked, stored, not yet active",
)
async def propose_ruleset(
    principal: Operator,
    uow: RiskWork,
    source: Annotated[str, Body(media_type="application/yaml", max_length=200_000)],
) -> RulesetInfo:
    stored = await rulesets.propose_ruleset(uow, source, created_by=principal.subject)
    return RulesetInfo.of(stored)


@router.post(
    "/rulesets/{version}/dry-run",
    summary="Compare a stored ruleset with the one in force over the stored data",
)
async def dry_run_ruleset(version: str, principal: Operator, uow: RiskWork) -> dict[str, Any]:
    return await rulesets.dry_run_ruleset(uow, version)


@router.post(
    "/rulesets/{version}/activate",
    response_model=RulesetInfo,
    summary="Put a stored ruleset in force",
)
async def activate_ruleset(version: str, principal: Operator, uow: RiskWork) -> RulesetInfo:
    return RulesetInfo.of(await rulesets.activate_ruleset(uow, version))


@router.get(
    "/transparency",
    response_class=MarkdownResponse,
    tags=["transparency"],
    summary="The algorithmic transparency record (Markdown), public",
)
async def transparency(uow: RiskWork) -> MarkdownResponse:
    return MarkdownResponse(await rulesets.transparency(uow))
