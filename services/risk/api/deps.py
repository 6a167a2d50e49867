"""What the routes share: the unit of work, who may call what, and how a refusal is answered."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends

from services.risk.service_layer.errors import Invalid, NotFound
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared.auth import OrganisationKind, Principal, Role, require
from shared.http import ApiProblem, unit_of_work

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
Operator = Annotated[
    Principal, Depends(require(kinds=[OrganisationKind.OPERATOR], roles=[Role.OPERATOR]))
]
RulesetReader = Annotated[Principal, Depends(require(roles=[Role.OPERATOR, Role.CASEWORKER]))]


def council_of(principal: Principal) -> str | None:
    """The council whose records the caller may read; None: an operator reads every one."""
    return None if principal.kind is OrganisationKind.OPERATOR else principal.organisation


@contextmanager
def refusals_answered() -> Iterator[None]:
    """A use case's refusal as its HTTP answer: 404 for NotFound, 422 naming the fields."""
    try:
        yield
    except NotFound as refusal:
        raise ApiProblem(404, refusal.detail) from None
    except Invalid as refusal:
        raise ApiProblem(
            422,
            refusal.detail,
            errors=[{"field": field, "reason": reason} for field, reason in refusal.errors],
        ) from None
