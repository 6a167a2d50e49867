"""Residents: possible duplicates a caseworker settles (confirm merges, reject keeps both
and releases what was held; never silent), and merges — of two residents, and of their open
cases into one. Matching itself is ``resident_index.py`` (intake's step) over
``domain/matching.py``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from services.referrals.adapters import Row
from services.referrals.adapters import cases as cases_db
from services.referrals.adapters import holds as holds_db
from services.referrals.adapters import merges as merges_db
from services.referrals.adapters import residents as residents_db
from services.referrals.domain.actors import Actor
from services.referrals.domain.lifecycle import ROUTED_STATUSES, CaseStatus
from services.referrals.domain.sharing import priority
from services.referrals.service_layer import audit
from services.referrals.service_layer.callers import actor_of
from services.referrals.service_layer.cases import move, route_if_allowed, send_packet
from services.referrals.service_layer.resident_index import (
    RecordedDuplicate,
    ResidentFacts,
    ResidentMatch,
    keys_of,
    match_or_create_resident,
)
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared.auth import Principal
from shared.errors import Conflict, NotFound
from shared.events.payloads import ResidentsMerged
from shared.vocabulary import LawfulBasis, RiskLevel

__all__ = [
    "PossibleDuplicate",
    "RecordedDuplicate",
    "ResidentFacts",
    "ResidentMatch",
    "decide_duplicate",
    "hold_for_duplicates",
    "keys_of",
    "match_or_create_resident",
    "merge_resident",
    "possible_duplicates",
]

DuplicateState = Literal["open", "confirmed", "rejected"]


@dataclass(frozen=True)
class FieldContribution:
    field: str
    agreement: str
    weight: float


@dataclass(frozen=True)
class PossibleDuplicate:
    id: str
    council: str
    resident_id: str
    resident_name: str
    candidate_id: str
    candidate_name: str
    reason: str
    status: str
    created_at: datetime
    score: float | None = None
    contributions: tuple[FieldContribution, ...] = ()
    held_needs: tuple[str, ...] = ()


# -- steps inside a caller's transaction -------------------------------------------------


async def hold_for_duplicates(
    uow: ReferralsUnitOfWork,
    case: Row,
    duplicates: list[RecordedDuplicate],
    *,
    actor: Actor,
    now: datetime,
) -> set[str]:
    """A new case whose resident may be someone with an open case already routed for the
    same need: that need is held (kept out of the routing packet) until a caseworker
    confirms or rejects the duplicate. The needs held."""
    session, held = uow.session, set()
    for duplicate in duplicates:
        other = await cases_db.open_case_of(session, duplicate.candidate_id, case["council"])
        if other is None or CaseStatus(other["status"]) not in ROUTED_STATUSES:
            continue
        for need in sorted(set(case["needs"]) & set(other["needs"])):
            await holds_db.insert_hold(
                session,
                id=uow.new_id(),
                case_id=case["id"],
                need=need,
                duplicate_id=duplicate.id,
                other_case_id=other["id"],
            )
            held.add(need)
    if held:
        await cases_db.add_timeline(
            session,
            case["id"],
            actor,
            "held for a possible duplicate",
            now=now,
            detail="possible duplicate of a resident already helped for "
            + ", ".join(sorted(held))
            + "; held until a caseworker confirms or rejects it",
        )
    return held


async def _release(
    uow: ReferralsUnitOfWork, case_ids: list[str], *, who: Actor, now: datetime
) -> None:
    """Holds ended: the needs they held go to partners as the case allows."""
    for case_id in case_ids:
        case = await cases_db.lock_case(uow.session, case_id)
        if case is None:
            continue
        await cases_db.add_timeline(uow.session, case_id, who, "hold released", now=now)
        status = CaseStatus(case["status"])
        if status is CaseStatus.ASSESSED:
            await route_if_allowed(uow, case, actor=who, now=now)
        elif status in ROUTED_STATUSES:
            await send_packet(uow, case, now=now)


async def _merge_cases(
    uow: ReferralsUnitOfWork, merged: Row, survivor: Row, *, who: Actor, now: datetime
) -> dict[str, Any]:
    """One person's two open cases become the survivor: the merged case's referrals,
    consents and notes move across, needs and circumstances add up, the higher urgency
    wins; the merged case is withdrawn ("merged into …"), so partners withdraw its open
    offers (they see why: the council withdrew the case) and the survivor routes the needs
    it did not have. Both timelines are kept. What moved, for the record."""
    session = uow.session
    moved: dict[str, Any] = await merges_db.move_case_records(
        session, from_case=merged["id"], to_case=survivor["id"]
    )
    before = {
        k: survivor[k]
        for k in (
            "needs",
            "circumstances",
            "urgency",
            "priority",
            "lawful_basis",
            "basis_justification",
            "basis_decided_by",
            "article9_condition",
        )
    }
    moved["survivor_before"] = before
    moved["merged_status"] = merged["status"]
    urgency = max(
        RiskLevel(survivor["urgency"]), RiskLevel(merged["urgency"]), key=lambda r: r.rank
    )
    risk = RiskLevel(survivor["risk_level"]) if survivor["risk_level"] else None
    new_needs = [n for n in merged["needs"] if n not in survivor["needs"]]
    values: dict[str, Any] = {
        "needs": [*survivor["needs"], *new_needs],
        "circumstances": list(
            dict.fromkeys([*survivor["circumstances"], *merged["circumstances"]])
        ),
        "urgency": urgency.value,
        "priority": priority(urgency, risk),
        "updated_at": now,
    }
    if (
        merged["lawful_basis"] == LawfulBasis.CONSENT
        and survivor["lawful_basis"] != LawfulBasis.CONSENT
    ):
        values["lawful_basis"] = LawfulBasis.CONSENT.value
        values["basis_justification"] = values["basis_decided_by"] = None
    if survivor["article9_condition"] is None and merged["article9_condition"] is not None:
        values["article9_condition"] = merged["article9_condition"]  # for the needs it brings
    survivor = await cases_db.update_case(session, survivor["id"], **values)
    await cases_db.add_timeline(
        session,
        survivor["id"],
        who,
        "case merged in",
        now=now,
        detail=f"case {merged['id']} of the same resident merged into this one; needs added: "
        + (", ".join(new_needs) or "none")
        + f"; {len(moved['referrals'])} referral(s) moved",
    )
    await cases_db.add_timeline(
        session,
        merged["id"],
        who,
        "merged into another case",
        now=now,
        detail=f"into case {survivor['id']}",
    )
    await move(
        uow,
        merged,
        CaseStatus.WITHDRAWN,
        actor=who,
        now=now,
        reason=f"merged into case {survivor['id']}: the same resident",
    )
    await merges_db.mark_merged_into(session, merged["id"], survivor["id"])
    # The merged case's own holds end (its needs are the survivor's now); other cases'
    # needs held because of it stay held, because of the survivor: no double help while
    # a caseworker has not decided.
    await holds_db.settle_holds_on_case(session, merged["id"], "merged", now=now)
    await holds_db.hold_because_of(session, merged_case=merged["id"], survivor_case=survivor["id"])
    status = CaseStatus(survivor["status"])
    if status in ROUTED_STATUSES and new_needs:
        await send_packet(uow, survivor, now=now)
    elif status in (CaseStatus.ASSESSED, CaseStatus.AWAITING_CONSENT):
        await route_if_allowed(uow, survivor, actor=who, now=now)
    return moved


async def _merge(
    uow: ReferralsUnitOfWork, *, merged: str, into: str, who: Actor, now: datetime
) -> str:
    """``merged`` becomes part of ``into``: its open case merges into the survivor's (or
    simply moves across), its other cases and referrals move, both timelines are kept, and
    the merged record stays, pointing at the survivor. The risk service is told (it
    re-links the profiles). The merge's id."""
    session = uow.session
    council = (await residents_db.resident(session, into))["council"]
    merged_keys, into_keys = await keys_of(uow, merged), await keys_of(uow, into)
    merged_case = await cases_db.lock_open_case_of(session, merged, council)
    survivor_case = await cases_db.lock_open_case_of(session, into, council)
    moved: dict[str, Any] = {}
    if merged_case is not None and survivor_case is not None:
        moved = await _merge_cases(uow, merged_case, survivor_case, who=who, now=now)
    moved["cases"] = await residents_db.move_records(session, merged=merged, into=into, now=now)
    # Possible duplicates: those between the two are settled by the merge (their holds with
    # them); the merged record's others now name the survivor, still for a caseworker.
    for duplicate_id in await residents_db.confirm_duplicates_between(
        session, merged, into, decided_by=who.subject, now=now
    ):
        await holds_db.settle_holds_of_duplicate(session, duplicate_id, "merged", now=now)
    await holds_db.move_holds(
        session, await residents_db.move_open_duplicates(session, merged=merged, into=into, now=now)
    )
    for case_id in moved["cases"]:
        await cases_db.add_timeline(
            session,
            case_id,
            who,
            "resident records merged",
            now=now,
            detail=f"resident {merged} merged into {into}",
        )
    merge_id = uow.new_id()
    await merges_db.insert_merge(
        session,
        id=merge_id,
        council=council,
        merged_resident_id=merged,
        into_resident_id=into,
        merged_case_id=merged_case["id"] if merged_case else None,
        survivor_case_id=survivor_case["id"] if survivor_case else None,
        moved=moved,
        merged_by=who.signature,
    )
    survivor_id = survivor_case["id"] if survivor_case else None
    await uow.outbox.add(
        session,
        ResidentsMerged(
            merge_id=merge_id,
            council=council,
            merged_resident_keys=merged_keys,
            into_resident_keys=into_keys,
            merged_case_id=merged_case["id"] if merged_case else None,
            survivor_case_id=survivor_id,
            merged_at=now,
        ),
        subject=survivor_id or into,
    )
    return merge_id


def _duplicate(row: Row, held: set[str] | None = None) -> PossibleDuplicate:
    return PossibleDuplicate(
        id=row["id"],
        council=row["council"],
        resident_id=row["resident_id"],
        resident_name=row["resident_name"],
        candidate_id=row["candidate_id"],
        candidate_name=row["candidate_name"],
        reason=row["reason"],
        status=row["status"],
        created_at=row["created_at"],
        score=row["score"],
        contributions=tuple(
            FieldContribution(c["field"], c["agreement"], c["weight"])
            for c in row["contributions"] or ()
        ),
        held_needs=tuple(sorted(held or ())),
    )


# -- use cases ---------------------------------------------------------------------------


async def _audit_duplicates(
    uow: ReferralsUnitOfWork, principal: Principal, operation: str, rows: Iterable[Row]
) -> None:
    """Both records of each pair were shown: names and the evidence they may be one."""
    seen = [
        audit.Seen(row["council"], resident)
        for row in rows
        for resident in (row["resident_id"], row["candidate_id"])
    ]
    await audit.audited(
        uow, principal, operation, [audit.IDENTITY, audit.MATCHING, audit.NEEDS], seen
    )


async def possible_duplicates(
    uow: ReferralsUnitOfWork, principal: Principal, state: DuplicateState = "open"
) -> list[PossibleDuplicate]:
    async with uow.transaction() as session:
        rows = await residents_db.duplicates_in_state(session, principal, state)
        held = await holds_db.held_needs_by_duplicate(session, [row["id"] for row in rows])
        await _audit_duplicates(uow, principal, "possible_duplicates", rows)
    # Those holding a need back from partners first: a family waits on them.
    found = [_duplicate(row, held.get(row["id"])) for row in rows]
    return sorted(found, key=lambda d: not d.held_needs)


async def decide_duplicate(
    uow: ReferralsUnitOfWork,
    principal: Principal,
    duplicate_id: str,
    decision: Literal["confirmed", "rejected"],
) -> PossibleDuplicate:
    """Confirmed: the same person, so the newer record merges into the one known first
    (their open cases become one). Rejected: different people; both records stay, and a
    need held for this duplicate is released and routed."""
    async with uow.transaction() as session:
        row = await residents_db.lock_duplicate(session, principal, duplicate_id)
        if row is None:
            raise NotFound("possible duplicate not found")
        if row["status"] != "open":
            raise Conflict(f"already {row['status']}", row["status"])
        live = await residents_db.unmerged_residents(
            session, principal, [row["resident_id"], row["candidate_id"]]
        )
        if decision == "confirmed" and len(live) != 2:
            raise Conflict(
                "one of these records was merged into another already: decide the entry "
                "of the record it became",
                row["status"],
            )
        now, who = uow.now(), actor_of(principal)
        if decision == "confirmed":
            await _merge(uow, merged=row["resident_id"], into=row["candidate_id"], who=who, now=now)
            await holds_db.settle_holds_of_duplicate(session, row["id"], "merged", now=now)
        else:
            released = await holds_db.settle_holds_of_duplicate(
                session, row["id"], "released", now=now
            )
            await _release(uow, released, who=who, now=now)
        await residents_db.decide_duplicate(
            session, row["id"], decision, decided_by=principal.subject, now=now
        )
        decided = await residents_db.duplicate_named(session, principal, row["id"])
        await _audit_duplicates(uow, principal, f"{decision}_duplicate", [decided])
    return _duplicate(decided)


async def merge_resident(
    uow: ReferralsUnitOfWork, principal: Principal, resident_id: str, into: str
) -> None:
    """A caseworker merges one resident's record into another's of the same council; two
    open cases become one."""
    async with uow.transaction() as session:
        found = await residents_db.unmerged_residents(session, principal, [resident_id, into])
        if len(found) != 2 or resident_id == into or found[0]["council"] != found[1]["council"]:
            raise NotFound("two distinct residents of one council not found")
        await _merge(uow, merged=resident_id, into=into, who=actor_of(principal), now=uow.now())
