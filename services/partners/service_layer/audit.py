"""The audit trail of reads in the partners service: every use case that answers with a
resident's data (an offer's packet, the inbox) records, in its own transaction, who read
which case's data, which categories, through which operation and why (``audited``); a
council's information-governance team reads the trail (``audit_trail``, ``audit_export``),
itself a read and audited. The mechanism is ``shared/audit.py``.

The partners service holds no resident id of the referrals service: a row names the case
(``case_ids``), which the referrals service links to its resident."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from services.partners.adapters import audit as audit_db
from services.partners.service_layer.unit_of_work import PartnersUnitOfWork
from shared.audit import AuditEntry, Category, Seen, TrailQuery
from shared.auth import OrganisationKind, Principal, Role


@runtime_checkable
class SignedInAddress(Protocol):
    """Someone signed in to the web inbox (``web_access.WebSession``)."""

    @property
    def organization_id(self) -> str: ...

    @property
    def email(self) -> str: ...


# Who reads: a token's principal (the API), a signed-in address (the web inbox), or a
# partner's id alone (a caller that does not name the person; recorded as UNNAMED).
Reader = Principal | SignedInAddress | str
UNNAMED = "unnamed"

PARTNER_WORK = "partner work with the resident"

# An offer whose packet is shown: the resident's first name and age, how to contact them
# (and their language and access needs), their needs, the referral's summary, and progress.
PACKET = (Category.IDENTITY, Category.CONTACT, Category.NEEDS, Category.FREE_TEXT)
# An offer without its packet (declined, expired, withdrawn, or the case stopped sharing):
# the case's need and progress only.
NO_PACKET = (Category.NEEDS, Category.PROGRESS)


def principal_of(reader: Reader) -> Principal:
    """The reader as the audit names it."""
    if isinstance(reader, Principal):
        return reader
    if isinstance(reader, SignedInAddress):
        organisation, subject = reader.organization_id, reader.email
    else:
        organisation, subject = reader, UNNAMED
    return Principal(
        subject=subject,
        organisation=organisation,
        kind=OrganisationKind.VCS,
        roles=frozenset({Role.PARTNER}),
    )


async def audited(
    uow: PartnersUnitOfWork,
    principal: Principal,
    operation: str,
    categories: Iterable[Category],
    seen: Iterable[Seen],
    *,
    purpose: str = PARTNER_WORK,
) -> None:
    """Record a read inside the caller's transaction: a row per council whose cases it
    showed, one when it showed none."""
    await audit_db.record(
        uow.session, principal, operation, categories, seen, purpose=purpose, at=uow.now()
    )


async def audit_trail(
    uow: PartnersUnitOfWork, principal: Principal, query: TrailQuery
) -> list[AuditEntry]:
    """Who read a case's data, what a user or an organisation read: within the caller's
    council (an operator: every council's)."""
    return await _read_trail(uow, principal, query.narrowed(), "audit_trail")


async def audit_export(
    uow: PartnersUnitOfWork, principal: Principal, query: TrailQuery
) -> list[AuditEntry]:
    """The trail for a file: as ``audit_trail``, or the whole of the caller's council's."""
    return await _read_trail(uow, principal, query, "audit_export")


async def _read_trail(
    uow: PartnersUnitOfWork, principal: Principal, query: TrailQuery, operation: str
) -> list[AuditEntry]:
    async with uow.snapshot() as session:
        return await audit_db.read_trail(session, principal, query, operation, at=uow.now())
