"""Who may call what, as dependency aliases the routes share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, status

from services.referrals.cases import Actor
from services.referrals.domain.lifecycle import TransitionRefused
from shared.auth import OrganisationKind, Principal, Role, require
from shared.http import ApiProblem

# A council caseworker, or an operator: the people who work cases.
CaseworkerOrOperator = Annotated[
    Principal,
    Depends(
        require(
            kinds=[OrganisationKind.COUNCIL, OrganisationKind.OPERATOR],
            roles=[Role.CASEWORKER, Role.OPERATOR],
        )
    ),
]
# Anyone who may refer a resident: council staff or a voluntary partner.
Referrer = Annotated[
    Principal,
    Depends(
        require(
            kinds=[OrganisationKind.COUNCIL, OrganisationKind.VCS],
            roles=[Role.REFERRER, Role.CASEWORKER],
        )
    ),
]
AnyPrincipal = Annotated[Principal, Depends(require())]


def actor(principal: Principal) -> Actor:
    return Actor(principal.name or principal.subject, principal.organisation)


def not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"{what} not found")


def conflict(refusal: TransitionRefused) -> ApiProblem:
    return ApiProblem(
        status.HTTP_409_CONFLICT,
        str(refusal),
        current_status=refusal.current.value,
        allowed=[s.value for s in refusal.allowed],
    )


def refused(reason: str, current_status: str | None = None) -> ApiProblem:
    """A 409 for an action the current state does not allow."""
    return ApiProblem(status.HTTP_409_CONFLICT, reason, current_status=current_status, allowed=[])
