"""What the routes share: who may call them and the unit of work. The service layer's
refusals (``shared.errors``) are answered by ``shared.http`` for every route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.partners.service_layer.agreements import Manager
from services.partners.service_layer.directory import Editor
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from shared.auth import OrganisationKind, Principal, Role, require
from shared.http import unit_of_work

PartnersWork = Annotated[PartnersUnitOfWork, Depends(unit_of_work)]

Partner = Annotated[Principal, Depends(require(kinds=[OrganisationKind.VCS], roles=[Role.PARTNER]))]
OperatorOrPartner = Annotated[
    Principal,
    Depends(
        require(
            kinds=[OrganisationKind.OPERATOR, OrganisationKind.VCS],
            roles=[Role.OPERATOR, Role.PARTNER],
        )
    ),
]


def editor(principal: Principal) -> Editor:
    return Editor(principal.organisation, principal.kind is OrganisationKind.OPERATOR)


CouncilOrOperator = Annotated[
    Principal,
    Depends(
        require(
            kinds=[OrganisationKind.COUNCIL, OrganisationKind.OPERATOR],
            roles=[Role.CASEWORKER, Role.OPERATOR],
        )
    ),
]


def council_scope(principal: Principal) -> str | None:
    """The council whose data the caller sees: its own; None (all) for an operator."""
    return None if principal.kind is OrganisationKind.OPERATOR else principal.organisation


def manager(principal: Principal) -> Manager:
    """Who manages data-sharing agreements: an operator (every council's), or a council's
    information-governance team (its own council's)."""
    return Manager(
        principal.subject, principal.organisation, principal.kind is OrganisationKind.OPERATOR
    )
