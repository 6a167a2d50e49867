"""What every referrals route shares: who may call it and its unit of work. A use case's
refusal (``shared.errors``) is answered by ``shared.http`` for every route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared.auth import OrganisationKind, Principal, Role, require
from shared.http import unit_of_work

ReferralsWork = Annotated[ReferralsUnitOfWork, Depends(unit_of_work)]

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
