"""Subject access requests (UK GDPR Article 15): a council's information-governance team
asks for everything Upstream holds about a resident, and gets it as one export.

- ``request_subject_access``: the request, due one calendar month after receipt (Article
  12(3)). In the same transaction the referrals service writes its own part (the resident,
  cases, referrals, consents, needs, offers, notes, timeline, possible duplicates, merges and
  its audit trail of reads about them) and announces the request with only what the others
  need: the case ids (partners) and the pseudonymous keys (risk).
- ``record_contribution``: partners' and risk's answers, stored against the request once
  (a replayed answer changes nothing); the request is complete when all three have answered.
- ``request_status`` and ``subject_access_export``: how far it has got (which services are
  pending, overdue past the due date), and the export itself.
- ``extend_deadline``: the deadline extended by two further months for a complex request
  (Article 12(3)), once, before the original deadline passes, with the reason and the day
  the resident was told; the status and the export then show both deadlines.

The request and every read of it or its export are audited (``audit.audited``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import holidays

from services.referrals.adapters import Row
from services.referrals.adapters import subject_access as db
from services.referrals.domain.subject_access import (
    SERVICES,
    Progress,
    RequestStatus,
    due_by,
    extended_due_by,
    extension_refusal,
    progress,
    told_on_problem,
)
from services.referrals.service_layer import audit
from services.referrals.service_layer.resident_index import keys_of
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared.audit import Category, councils_of
from shared.auth import Principal
from shared.clock import LONDON
from shared.errors import Conflict, Invalid, NotFound
from shared.events.payloads import SubjectAccessContributed, SubjectAccessRequested
from shared.subject_access import PURPOSE, REFERRALS, plain, records

# Everything a referrals export shows (shared/audit.py, Category).
EVERYTHING = tuple(Category)
ANOTHER_RECORD = "another record"  # a possible duplicate's other resident: not theirs to see

# Bank holidays by the nation of the council's GSS code (England, Wales, Scotland, NI).
_NATIONS = {"E": "ENG", "W": "WLS", "S": "SCT", "N": "NIR"}


def _bank_holidays(council: str, received: date) -> holidays.HolidayBase:
    return holidays.country_holidays(
        "GB", subdiv=_NATIONS.get(council[:1], "ENG"), years=[received.year, received.year + 1]
    )


@dataclass(frozen=True)
class Extension:
    """The deadline extended (Article 12(3)): to when, why, and when the resident was told."""

    due_by: date
    reason: str
    resident_told_on: date
    extended_by: str
    extended_by_org: str
    extended_at: datetime


@dataclass(frozen=True)
class SubjectAccessRequest:
    id: str
    council: str
    resident_id: str
    requested_by: str
    requested_by_org: str
    requested_at: datetime
    due_by: date  # the deadline in force: the extended one, if extended
    completed_at: datetime | None
    status: RequestStatus
    contributed: tuple[str, ...]
    pending: tuple[str, ...]
    original_due_by: date
    extension: Extension | None = None


@dataclass(frozen=True)
class Contribution:
    service: str
    contributed_at: datetime
    sections: dict[str, list[dict[str, Any]]]
    reads: list[dict[str, Any]]


@dataclass(frozen=True)
class SubjectAccessExport:
    request: SubjectAccessRequest
    contributions: tuple[Contribution, ...]


async def request_subject_access(
    uow: ReferralsUnitOfWork, principal: Principal, resident_id: str
) -> SubjectAccessRequest:
    """Open a request for the resident (of the caller's council; an operator: any)."""
    async with uow.transaction() as session:
        resident = await db.resident_in(session, resident_id, councils_of(principal))
        if resident is None:
            raise NotFound("resident")
        # A record merged away: the request is about the person, so about the record it
        # was merged into (and every record merged into that, this one among them).
        resident_id = await db.surviving_record(session, resident_id)
        council, now = resident["council"], uow.now()
        received = now.date()
        request_id = uow.new_id()
        await db.insert_request(
            session,
            id=request_id,
            council=council,
            resident_id=resident_id,
            requested_by=principal.subject,
            requested_by_org=principal.organisation,
            requested_at=now,
            due_by=due_by(received, _bank_holidays(council, received)),
        )
        resident_ids = [resident_id, *await db.merged_into(session, resident_id)]
        case_ids = await db.case_ids_of(session, resident_ids)
        # The request is itself a record of this resident's data: audited first, so the
        # export's trail of reads shows it.
        await audit.audited(
            uow,
            principal,
            "subject_access_request",
            [Category.PROGRESS],
            [audit.Seen(council, resident_id)],
            purpose=PURPOSE,
        )
        await db.add_contribution(
            session,
            request_id=request_id,
            service=REFERRALS,
            contributed_at=now,
            sections=await _held(session, resident_ids, case_ids),
            reads=[
                r.model_dump(mode="json") for r in await db.reads(session, resident_ids, case_ids)
            ],
        )
        keys: list[str] = []
        for rid in resident_ids:
            keys.extend(k for k in await keys_of(uow, rid) if k not in keys)
        row = await db.request(session, request_id, None)
        assert row is not None
        await uow.outbox.add(
            session,
            SubjectAccessRequested(
                request_id=request_id,
                council=council,
                case_ids=case_ids,
                resident_keys=keys,
                requested_at=now,
                due_by=row["due_by"],
            ),
            subject=request_id,
        )
        return _request(row, [REFERRALS], today=received)


async def extend_deadline(
    uow: ReferralsUnitOfWork,
    principal: Principal,
    request_id: str,
    *,
    reason: str,
    resident_told_on: date,
) -> SubjectAccessRequest:
    """Extend a request's deadline by two further months (a complex request, Article 12(3)):
    once, while the original deadline has not passed and the request is not complete
    (``Conflict`` otherwise, with the reason); audited."""
    async with uow.transaction() as session:
        await _own_request(uow, principal, request_id)
        await db.lock_request(session, request_id)
        row = await db.request(session, request_id, None)
        assert row is not None
        today = uow.now().astimezone(LONDON).date()  # the resident was told on a London day
        received = row["requested_at"].date()
        if problem := told_on_problem(resident_told_on, received=received, today=today):
            raise Invalid("resident_told_on", problem)
        contributed = _answered(await db.contributions(session, request_id))
        refusal = extension_refusal(
            extended_already=row["extended_due_by"] is not None,
            complete=row["completed_at"] is not None or set(contributed) >= set(SERVICES),
            due=row["due_by"],
            today=today,
        )
        if refusal is not None:
            raise Conflict(refusal)
        added = await db.add_extension(
            session,
            request_id=request_id,
            due_by=extended_due_by(received, _bank_holidays(row["council"], received)),
            reason=reason,
            resident_told_on=resident_told_on,
            extended_by=principal.subject,
            extended_by_org=principal.organisation,
            extended_at=uow.now(),
        )
        if not added:  # held under the request's lock: only a bug gets here
            raise Conflict("the deadline has been extended already: it may be extended once")
        await audit.audited(
            uow,
            principal,
            "subject_access_extension",
            [Category.PROGRESS],
            [audit.Seen(row["council"], str(row["resident_id"]))],
            purpose=PURPOSE,
        )
        extended = await db.request(session, request_id, None)
        assert extended is not None
        return _request(extended, contributed, today=today)


async def _held(
    session: Any, resident_ids: list[str], case_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    sections = {
        kind: records(rows)
        for kind, rows in (await db.held(session, resident_ids, case_ids)).items()
    }
    theirs = set(resident_ids)
    for duplicate in sections["possible_duplicates"]:
        for side in ("resident_id", "candidate_id"):
            if duplicate[side] not in theirs:
                duplicate[side] = ANOTHER_RECORD
    return sections


async def record_contribution(
    uow: ReferralsUnitOfWork, service: str, contribution: SubjectAccessContributed
) -> bool:
    """A service's answer (or a part of it) to a request, stored once (False: a replay, or
    no such request); the request is complete once every service has answered whole."""
    async with uow.transaction() as session:
        if not await db.lock(session, contribution.request_id):
            # No such request (erased with its resident, or long swept): an answer sent
            # anyway, after the erasure reached this service but not yet the one answering,
            # is shredded where it lies.
            await uow.outbox.forget(
                session, [contribution.request_id], before=contribution.request_id
            )
            return False
        added = await db.add_contribution(
            session,
            request_id=contribution.request_id,
            service=service,
            contributed_at=contribution.contributed_at,
            sections=plain(contribution.sections),
            reads=[r.model_dump(mode="json") for r in contribution.reads],
            part=contribution.part,
            parts=contribution.parts,
        )
        if added:
            rows = await db.contributions(session, contribution.request_id)
            row = await db.request(session, contribution.request_id, None)
            assert row is not None
            state = _progress(row, _answered(rows), today=uow.now().date())
            if state.status is RequestStatus.COMPLETE:
                await db.mark_complete(session, contribution.request_id, uow.now())
                # Every answer is stored here now: the copies on the topic open no more.
                await uow.outbox.forget(
                    session, [contribution.request_id], before=contribution.request_id
                )
        return added


async def request_status(
    uow: ReferralsUnitOfWork, principal: Principal, request_id: str
) -> SubjectAccessRequest:
    """How far a request has got: which services have answered and which are pending."""
    async with uow.snapshot() as session:
        row = await _own_request(uow, principal, request_id)
        rows = await db.contributions(session, request_id)
        await audit.audited(
            uow,
            principal,
            "subject_access_status",
            [Category.PROGRESS],
            [audit.Seen(row["council"], str(row["resident_id"]))],
            purpose=PURPOSE,
        )
        return _request(row, _answered(rows), today=uow.now().date())


async def subject_access_export(
    uow: ReferralsUnitOfWork, principal: Principal, request_id: str
) -> SubjectAccessExport:
    """Everything the services have contributed so far (each service's answer once all its
    parts are in), with the request's progress (an incomplete export says which services
    are pending). Every read is audited."""
    async with uow.snapshot() as session:
        row = await _own_request(uow, principal, request_id)
        rows = await db.contributions(session, request_id)
        contributions = _assembled(rows)
        case_ids = sorted(
            {
                str(case["id"])
                for c in contributions
                if c.service == REFERRALS
                for case in c.sections.get("cases", [])
            }
        )
        await audit.audited(
            uow,
            principal,
            "subject_access_export",
            [str(c) for c in EVERYTHING],
            [audit.Seen(row["council"], str(row["resident_id"]))]
            + [audit.Seen(row["council"], None, case_id) for case_id in case_ids],
            purpose=PURPOSE,
        )
        request = _request(row, [c.service for c in contributions], today=uow.now().date())
        return SubjectAccessExport(request, contributions)


def _answered(rows: Sequence[Row]) -> list[str]:
    """The services whose every part has arrived."""
    received: dict[str, set[int]] = {}
    expected: dict[str, int] = {}
    for c in rows:
        received.setdefault(c["service"], set()).add(c["part"])
        expected[c["service"]] = c["parts"]
    return [s for s, parts in received.items() if len(parts) >= expected[s]]


def _assembled(rows: Sequence[Row]) -> tuple[Contribution, ...]:
    """Each whole answer, its parts joined in order, the services in their order."""
    whole = set(_answered(rows))
    by_service: dict[str, list[Row]] = {}
    for c in sorted(rows, key=lambda c: c["part"]):
        if c["service"] in whole:
            by_service.setdefault(c["service"], []).append(c)
    assembled = []
    for service in sorted(by_service, key=SERVICES.index):
        parts = by_service[service]
        sections: dict[str, list[dict[str, Any]]] = {}
        reads: list[dict[str, Any]] = []
        for part in parts:
            for kind, items in part["sections"].items():
                sections.setdefault(kind, []).extend(items)
            reads.extend(part["reads"])
        at = max(part["contributed_at"] for part in parts)
        assembled.append(Contribution(service, at, _ordered(sections), reads))
    return tuple(assembled)


# The order a reader meets each service's records in (any other kind follows, by name).
SECTION_ORDER = (
    "residents",
    "cases",
    "referrals",
    "consents",
    "needs",
    "offers",
    "notes",
    "timeline",
    "possible_duplicates",
    "merges",
    "packets",
    "webhook_deliveries",
    "email_deliveries",
    "profiles",
    "keys",
    "signals",
    "assessments",
    "outcomes",
    "handled_signals",
)


def _ordered(sections: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Sections in reading order, each record's fields with its id first, then by name (the
    database keeps JSON in an order of its own)."""

    def rank(kind: str) -> tuple[int, str]:
        return (SECTION_ORDER.index(kind) if kind in SECTION_ORDER else len(SECTION_ORDER), kind)

    def fields(record: dict[str, Any]) -> dict[str, Any]:
        return dict(sorted(record.items(), key=lambda item: (item[0] != "id", item[0])))

    return {kind: [fields(r) for r in sections[kind]] for kind in sorted(sections, key=rank)}


async def _own_request(uow: ReferralsUnitOfWork, principal: Principal, request_id: str) -> Row:
    row = await db.request(uow.session, request_id, councils_of(principal))
    if row is None:
        raise NotFound("subject access request")
    return row


def _progress(row: Row, contributed: list[str], *, today: date) -> Progress:
    return progress(contributed, due=_due(row), today=today)


def _due(row: Row) -> date:
    """The deadline in force: the extended one, if the request was extended."""
    extended: date | None = row["extended_due_by"]
    return extended if extended is not None else row["due_by"]


def _extension(row: Row) -> Extension | None:
    if row["extended_due_by"] is None:
        return None
    return Extension(
        due_by=row["extended_due_by"],
        reason=row["extension_reason"],
        resident_told_on=row["resident_told_on"],
        extended_by=row["extended_by"],
        extended_by_org=row["extended_by_org"],
        extended_at=row["extended_at"],
    )


def _request(row: Row, contributed: list[str], *, today: date) -> SubjectAccessRequest:
    state = _progress(row, contributed, today=today)
    return SubjectAccessRequest(
        id=str(row["id"]),
        council=row["council"],
        resident_id=str(row["resident_id"]),
        requested_by=row["requested_by"],
        requested_by_org=row["requested_by_org"],
        requested_at=row["requested_at"],
        due_by=_due(row),
        completed_at=row["completed_at"],
        status=state.status,
        contributed=state.contributed,
        pending=state.pending,
        original_due_by=row["due_by"],
        extension=_extension(row),
    )
