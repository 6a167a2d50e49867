"""Each council's transparency record (ATRS v3.0): its organisational details, set by the
service's operators or the council's own information-governance team, and the record made
from them and the ruleset in force for that council. The record is public and holds no
personal data; reading it writes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.risk.adapters import councils as stored_councils
from services.risk.adapters import rulesets as stored_rulesets
from services.risk.domain.atrs import CouncilDetails, atrs_record
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared.auth import OrganisationKind, Principal, Role
from shared.errors import Forbidden, NotFound


def may_describe(principal: Principal, council: str) -> bool:
    """Who sets a council's details: an operator, or that council's own information-
    governance team (its DPO's), which answers for the record."""
    if principal.kind is OrganisationKind.OPERATOR and Role.OPERATOR in principal.roles:
        return True
    return (
        principal.kind is OrganisationKind.COUNCIL
        and principal.organisation == council
        and Role.INFORMATION_GOVERNANCE in principal.roles
    )


async def describe_council(
    uow: RiskUnitOfWork, council: str, details: CouncilDetails, *, by: Principal
) -> CouncilDetails:
    """Set a council's organisational details, whole."""
    if not may_describe(by, council):
        raise Forbidden("only an operator or the council's own information-governance team")
    async with uow.transaction():
        await stored_councils.put(
            uow.session, council, details.model_dump(mode="json"), by=by.subject, at=uow.now()
        )
    return details


async def details_of(uow: RiskUnitOfWork, council: str) -> CouncilDetails:
    stored = await stored_councils.get(uow.session, council)
    if stored is None:
        raise NotFound("no transparency details are set for this council")
    return CouncilDetails.model_validate(stored.details)


async def record_of(uow: RiskUnitOfWork, council: str) -> dict[str, Any]:
    """The council's ATRS record, made now from its details and the ruleset in force for it.
    Dated: completed when its details were first set; updated when they or its rules last
    changed."""
    async with uow.snapshot():  # the details, the ruleset and its dates of one moment
        stored = await stored_councils.get(uow.session, council)
        if stored is None:
            raise NotFound("no transparency record for this council: its details are not set")
        ruleset = await uow.ruleset_for(council)
        choice = await stored_rulesets.choice_of(uow.session, council)
        rules_changed: datetime | None = None
        if choice is not None and choice.version == ruleset.version:
            rules_changed = choice.activated_at
        else:
            default = await stored_rulesets.get(uow.session, ruleset.version)
            rules_changed = default.activated_at if default is not None else None
    updated = max(filter(None, [stored.updated_at, rules_changed]))
    return atrs_record(
        ruleset,
        council=council,
        details=CouncilDetails.model_validate(stored.details),
        completed_on=stored.created_at.date(),
        updated_on=updated.date(),
        own_ruleset=choice is not None and choice.version == ruleset.version,
    )
