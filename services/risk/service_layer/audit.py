"""The audit trail of reads in the risk service: every use case that answers with a
resident's data (why a case or a resident has its level) records, in its own transaction,
who read it, which categories, through which operation and why (``audited``); a council's
information-governance team reads the trail (``audit_trail``, ``audit_export``), itself a
read and audited. The mechanism is ``shared/audit.py``.

The risk service holds no direct identifier: a row names the pseudonymous profile
(``resident_ids``) and the case (``case_ids``). A search by ``resident`` takes a profile id
or a resident key a flag carried (looked up to its profile)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from services.risk.adapters import audit as audit_db
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared.audit import AuditEntry, Category, Seen, TrailQuery
from shared.auth import OrganisationKind, Principal, Role

CASE_WORK = "case work"

# Why a case or a resident has its level: the level, score and reasons (the signals and
# circumstances behind them), and the needs suggested.
WHY = (Category.RISK, Category.NEEDS)
UNNAMED = "unnamed"


def reading(reader: Principal | None, council: str | None) -> Principal:
    """The reader as the audit names it: the token's principal (the API), or, for a caller
    that names nobody, an unnamed reader of ``council`` (None: an operator)."""
    if reader is not None:
        return reader
    if council is None:
        return Principal(
            subject=UNNAMED,
            organisation="operator",
            kind=OrganisationKind.OPERATOR,
            roles=frozenset({Role.OPERATOR}),
        )
    return Principal(
        subject=UNNAMED,
        organisation=council,
        kind=OrganisationKind.COUNCIL,
        roles=frozenset({Role.CASEWORKER}),
    )


async def audited(
    uow: RiskUnitOfWork,
    principal: Principal,
    operation: str,
    categories: Iterable[Category],
    seen: Iterable[Seen],
    *,
    purpose: str = CASE_WORK,
) -> None:
    """Record a read inside the caller's transaction: a row per council whose residents it
    showed, one when it showed none."""
    await audit_db.record(
        uow.session, principal, operation, categories, seen, purpose=purpose, at=uow.now()
    )


async def seen_case(uow: RiskUnitOfWork, case_id: str) -> Seen:
    """Whose data a read of the case showed: its council and profile."""
    owner = await audit_db.owner_of_case(uow.session, case_id)
    if owner is None:
        return Seen(None, case_id=case_id)
    return Seen(owner["council"], owner["profile_id"], case_id)


async def seen_resident(uow: RiskUnitOfWork, resident_key: str) -> Seen:
    """Whose data a read by resident key showed: the key's council and profile."""
    owner = await audit_db.owner_of_key(uow.session, resident_key)
    if owner is None:
        return Seen(None)
    return Seen(owner["council"], owner["profile_id"])


async def audit_trail(
    uow: RiskUnitOfWork, principal: Principal, query: TrailQuery
) -> list[AuditEntry]:
    """Who read a resident's (a profile's) or a case's data, what a user or an organisation
    read: within the caller's council (an operator: every council's)."""
    return await _read_trail(uow, principal, query.narrowed(), "audit_trail")


async def audit_export(
    uow: RiskUnitOfWork, principal: Principal, query: TrailQuery
) -> list[AuditEntry]:
    """The trail for a file: as ``audit_trail``, or the whole of the caller's council's."""
    return await _read_trail(uow, principal, query, "audit_export")


async def _read_trail(
    uow: RiskUnitOfWork, principal: Principal, query: TrailQuery, operation: str
) -> list[AuditEntry]:
    async with uow.snapshot() as session:
        if query.resident_id is not None:  # a resident key a flag carried: its profile
            owner = await audit_db.owner_of_key(session, query.resident_id)
            if owner is not None:
                query = replace(query, resident_id=str(owner["profile_id"]))
        return await audit_db.read_trail(session, principal, query, operation, at=uow.now())
