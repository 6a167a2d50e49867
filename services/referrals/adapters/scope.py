"""Tenancy, in the queries themselves: what each principal may see of cases."""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, true

from services.referrals.adapters.tables import cases, gaps, referrals
from shared.auth import OrganisationKind, Principal


def cases_visible_to(principal: Principal) -> ColumnElement[bool]:
    """Councils: the cases of their residents. Operators: all. Partners: none (a referring
    charity reads its own referrals through ``referrals_visible_to``)."""
    if principal.kind is OrganisationKind.OPERATOR:
        return true()
    if principal.kind is OrganisationKind.COUNCIL:
        return cases.c.council == principal.organisation
    return false()


def referrals_visible_to(principal: Principal) -> ColumnElement[bool]:
    """A referral: to the organisation that made it, the case's council, and operators."""
    if principal.kind is OrganisationKind.OPERATOR:
        return true()
    mine = referrals.c.referrer_org == principal.organisation
    if principal.kind is OrganisationKind.COUNCIL:
        return mine | (cases.c.council == principal.organisation)
    return mine


def gaps_visible_to(principal: Principal) -> ColumnElement[bool]:
    """Gaps in service: a council's own area; operators: every council's."""
    if principal.kind is OrganisationKind.OPERATOR:
        return true()
    if principal.kind is OrganisationKind.COUNCIL:
        return gaps.c.council == principal.organisation
    return false()
