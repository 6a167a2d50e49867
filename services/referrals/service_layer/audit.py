"""The audit trail of reads: every use case that answers with personal data records, in
its own transaction, who read whose data, which categories, through which operation and
why (``audited``); a council's information-governance team reads the trail per resident or
per user (``audit_trail``), which is itself a read and audited."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.referrals.adapters import audit as audit_db
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared.audit import Read
from shared.auth import OrganisationKind, Principal
from shared.errors import Invalid

# The categories of personal data a read can show (docs/information-governance.md).
IDENTITY = "identity"  # names, date of birth
CONTACT = "contact"  # phone, email, address, language, accessibility needs
NEEDS = "needs"  # needs and circumstances (health needs are special category)
FREE_TEXT = "free_text"  # the referrer's words, caseworkers' notes
CONSENT = "consent"
RISK = "risk_assessment"
PROGRESS = "case_progress"  # statuses, offers, timeline
MATCHING = "matching_evidence"  # why two records may be one person
ACCESS_LOG = "access_log"  # the audit trail itself

CASE_WORK = "case work"


@dataclass(frozen=True)
class Seen:
    """One resident (and case) a read showed, in its council."""

    council: str
    resident_id: str
    case_id: str | None = None


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
    by_council: dict[str | None, list[Seen]] = {}
    for item in seen:
        by_council.setdefault(item.council, []).append(item)
    if not by_council:
        own = principal.organisation if principal.kind is OrganisationKind.COUNCIL else None
        by_council[own] = []
    for council, items in by_council.items():
        read = Read(
            operation=operation,
            purpose=purpose,
            data_categories=tuple(categories),
            resident_ids=tuple(i.resident_id for i in items),
            case_ids=tuple(i.case_id for i in items if i.case_id),
            council=council,
        )
        await audit_db.record(uow.session, principal, read, uow.now())


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    subject: str
    organisation: str
    organisation_kind: str
    roles: list[str]
    operation: str
    purpose: str
    council: str | None
    resident_ids: list[str]
    case_ids: list[str]
    data_categories: list[str]


async def audit_trail(
    uow: ReferralsUnitOfWork,
    principal: Principal,
    *,
    resident_id: str | None = None,
    subject: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Who read a resident's data, or what a user read: within the caller's council (an
    operator sees every council's)."""
    if (resident_id is None) == (subject is None):
        raise Invalid("resident", "give exactly one of resident or subject")
    councils = None if principal.kind is OrganisationKind.OPERATOR else [principal.organisation]
    async with uow.transaction() as session:
        rows = await audit_db.trail(
            session, councils=councils, resident_id=resident_id, subject=subject, limit=limit
        )
        entries = [AuditEntry(**_fields(row)) for row in rows]
        await audited(
            uow,
            principal,
            "audit_trail",
            [ACCESS_LOG],
            [Seen(principal.organisation, resident_id)] if resident_id else [],
            purpose="information governance",
        )
    return entries


def _fields(row: Any) -> dict[str, Any]:
    return {k: row[k] for k in AuditEntry.__dataclass_fields__}
