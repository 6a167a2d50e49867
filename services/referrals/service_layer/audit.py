"""The audit trail of reads: every use case that answers with personal data records, in
its own transaction, who read whose data, which categories, through which operation and
why (``audited``); a council's information-governance team reads the trail per resident or
per case, per user or per organisation (``audit_trail``) and exports it (``audit_export``),
itself a read and audited. The mechanism is ``shared/audit.py``."""

from __future__ import annotations

from collections.abc import Iterable

from services.referrals.adapters import audit as audit_db
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared.audit import AuditEntry, Category, Seen, TrailQuery
from shared.auth import Principal

__all__ = ["Seen"]  # what a read showed (``shared.audit.Seen``), as the use cases name it

# The categories of personal data a read can show (shared/audit.py, Category).
IDENTITY = Category.IDENTITY  # names, date of birth
CONTACT = Category.CONTACT  # phone, email, address, language, accessibility needs
NEEDS = Category.NEEDS  # needs and circumstances (health needs are special category)
FREE_TEXT = Category.FREE_TEXT  # the referrer's words, caseworkers' notes
CONSENT = Category.CONSENT
RISK = Category.RISK
PROGRESS = Category.PROGRESS  # statuses, offers, timeline
MATCHING = Category.MATCHING  # why two records may be one person
ACCESS_LOG = Category.ACCESS_LOG  # the audit trail itself

CASE_WORK = "case work"


async def audited(
    uow: ReferralsUnitOfWork,
    principal: Principal,
    operation: str,
    categories: Iterable[str],
    seen: Iterable[Seen],
    *,
    purpose: str = CASE_WORK,
) -> None:
    """Record a read inside the caller's transaction: one row per council whose residents
    it showed (so each council's IG team sees its own), one row when it showed none."""
    await audit_db.record(
        uow.session, principal, operation, categories, seen, purpose=purpose, at=uow.now()
    )


async def audit_trail(
    uow: ReferralsUnitOfWork, principal: Principal, query: TrailQuery
) -> list[AuditEntry]:
    """Who read a resident's or a case's data, what a user or an organisation read: within
    the caller's council (an operator sees every council's)."""
    return await _read_trail(uow, principal, query.narrowed(), "audit_trail")


async def audit_export(
    uow: ReferralsUnitOfWork, principal: Principal, query: TrailQuery
) -> list[AuditEntry]:
    """The trail for a file: as ``audit_trail``, or the whole of the caller's council's."""
    return await _read_trail(uow, principal, query, "audit_export")


async def _read_trail(
    uow: ReferralsUnitOfWork, principal: Principal, query: TrailQuery, operation: str
) -> list[AuditEntry]:
    async with uow.snapshot() as session:
        return await audit_db.read_trail(session, principal, query, operation, at=uow.now())
