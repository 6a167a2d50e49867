"""What the routes share: the unit of work and who may call what. Refusals from the service
layer (``shared.errors``) are answered by ``shared.http`` for every route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared.auth import OrganisationKind, Principal, Role, require
from shared.http import unit_of_work

RiskWork = Annotated[RiskUnitOfWork, Depends(unit_of_work)]

# A council's data team sending signals, or an operator.
DataFeed = Annotated[
    Principal,
    Depends(
        require(
            kinds=[OrganisationKind.COUNCIL, OrganisationKind.OPERATOR],
            roles=[Role.DATA_FEED, Role.OPERATOR],
        )
    ),
]
Caseworker = Annotated[
    Principal,
    Depends(
        require(
            kinds=[OrganisationKind.COUNCIL, OrganisationKind.OPERATOR],
            roles=[Role.CASEWORKER, Role.OPERATOR],
        )
    ),
]
RulesetReader = Annotated[Principal, Depends(require(roles=[Role.OPERATOR, Role.CASEWORKER]))]


def council_of(principal: Principal) -> str | None:
    """The council whose records the caller may read; None: an operator reads every one."""
    return None if principal.kind is OrganisationKind.OPERATOR else principal.organisation
