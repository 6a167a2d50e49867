"""Rules, for operators: the current ruleset and its history, a dry run of a candidate over
the stored data, and activation, as the deployment's default or for one council. And the
public transparency record of the default (each council's: ``transparency.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, status

from services.risk.api.deps import RiskWork, RulesetReader
from services.risk.api.schemas import (
    CouncilRulesetChoice,
    CouncilRulesetInfo,
    RulesetDetail,
    RulesetInfo,
)
from services.risk.service_layer import rulesets
from shared.audit import personal_data
from shared.auth import Operator
from shared.http import MarkdownResponse
from shared.vocabulary import GSS_CODE

router = APIRouter(prefix="/v1", tags=["rules"])


@router.get(
    "/rulesets",
    response_model=list[RulesetInfo],
    summary="Every ruleset, newest first",
    openapi_extra=personal_data(),
)
async def list_rulesets(principal: RulesetReader, uow: RiskWork) -> list[RulesetInfo]:
    return [RulesetInfo.of(stored) for stored in await rulesets.list_rulesets(uow)]


@router.get(
    "/rulesets/current",
    response_model=RulesetDetail,
    summary="The ruleset in force",
    openapi_extra=personal_data(),
)
async def current_ruleset(principal: RulesetReader, uow: RiskWork) -> RulesetDetail:
    return RulesetDetail.of(await rulesets.current_ruleset(uow))


@router.get("/rulesets/{version}", response_model=RulesetDetail, openapi_extra=personal_data())
async def get_ruleset(version: str, principal: RulesetReader, uow: RiskWork) -> RulesetDetail:
    return RulesetDetail.of(await rulesets.get_ruleset(uow, version))


@router.post(
    "/rulesets",
    status_code=status.HTTP_201_CREATED,
    response_model=RulesetInfo,
    summary="Propose a ruleset (YAML); it is checked, stored, not yet active",
    openapi_extra=personal_data(),
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
    openapi_extra=personal_data(),
)
async def dry_run_ruleset(
    version: str,
    principal: Operator,
    uow: RiskWork,
    council: Annotated[
        str | None,
        Query(
            pattern=GSS_CODE.pattern,
            description="against this council's ruleset in force, over its residents only; "
            "the figures are published (risk.ruleset.dry_run_completed) for the council's "
            "rule evaluation",
        ),
    ] = None,
) -> dict[str, Any]:
    return await rulesets.dry_run_ruleset(uow, version, council=council)


@router.post(
    "/rulesets/{version}/activate",
    response_model=RulesetInfo,
    summary="Make a stored ruleset the default: in force for councils without their own",
    openapi_extra=personal_data(),
)
async def activate_ruleset(version: str, principal: Operator, uow: RiskWork) -> RulesetInfo:
    return RulesetInfo.of(await rulesets.activate_ruleset(uow, version))


@router.get(
    "/transparency",
    response_class=MarkdownResponse,
    tags=["transparency"],
    summary="The algorithmic transparency record (Markdown), public",
    openapi_extra=personal_data(),
)
async def transparency(uow: RiskWork) -> MarkdownResponse:
    return MarkdownResponse(await rulesets.transparency(uow))


CouncilCode = Annotated[str, Path(pattern=GSS_CODE.pattern, description="the council's GSS code")]


@router.get(
    "/councils/{council}/ruleset",
    response_model=CouncilRulesetInfo,
    summary="The ruleset in force for a council: its own, or the default",
    openapi_extra=personal_data(),
)
async def council_ruleset(
    council: CouncilCode, principal: RulesetReader, uow: RiskWork
) -> CouncilRulesetInfo:
    return CouncilRulesetInfo.of(await rulesets.ruleset_of_council(uow, council))


@router.put(
    "/councils/{council}/ruleset",
    response_model=CouncilRulesetInfo,
    summary="Put a stored ruleset in force for one council (operators)",
    openapi_extra=personal_data(),
)
async def activate_for_council(
    council: CouncilCode, choice: CouncilRulesetChoice, principal: Operator, uow: RiskWork
) -> CouncilRulesetInfo:
    found = await rulesets.activate_for_council(uow, council, choice.version, by=principal.subject)
    return CouncilRulesetInfo.of(found)


@router.delete(
    "/councils/{council}/ruleset",
    response_model=CouncilRulesetInfo,
    summary="The council goes back to the default ruleset (operators)",
    openapi_extra=personal_data(),
)
async def use_default_for_council(
    council: CouncilCode, principal: Operator, uow: RiskWork
) -> CouncilRulesetInfo:
    return CouncilRulesetInfo.of(await rulesets.use_default_for_council(uow, council))
