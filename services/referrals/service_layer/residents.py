"""Residents: possible duplicates a caseworker settles (confirm merges, reject keeps both
and releases what was held; never silent), and merges — of two residents, and of their open
cases into one — and their undoing. Matching itself is ``resident_index.py`` (intake's step) over
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
from services.referrals.adapters import needs as needs_db
from services.referrals.adapters import residents as residents_db
from services.referrals.domain.actors import Actor
from services.referrals.domain.lifecycle import (
    OPEN_STATUSES,
    ROUTED_STATUSES,
    WITH_PARTNERS_STATUSES,
    CaseStatus,
)
from services.referrals.domain.needs import WITH_PARTNERS, NeedStatus, initial_status
from services.referrals.domain.sharing import priority
from services.referrals.service_layer import audit
from services.referrals.service_layer import needs as case_needs
from services.referrals.service_layer.callers import actor_of
from services.referrals.service_layer.cases import (
    move,
    route_if_allowed,
    send_packet,
    sharing_decision,
    stop_partners,
)
from services.referrals.service_layer.resident_index import (
    RecordedDuplicate,
    ResidentFacts,
    ResidentMatch,
    keys_from,
    keys_of,
    match_or_create_resident,
)
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared.auth import Principal
from shared.errors import Conflict, NotFound
from shared.events.payloads import (
    CaseStatusChanged,
    ResidentsMerged,
    ResidentsUnmerged,
    SharingStopped,
)
from shared.vocabulary import LawfulBasis, RiskLevel

__all__ = [
    "PossibleDuplicate",
    "RecordedDuplicate",
    "ResidentFacts",
    "ResidentMatch",
    "decide_duplicate",
    "hold_for_duplicates",
    "keys_from",
    "keys_of",
    "match_or_create_resident",
    "merge_resident",
    "merges",
    "possible_duplicates",
    "undo_merge",
]

DuplicateState = Literal["open", "confirmed", "rejected"]

# How a merge ends the holds on the needs of the case it merges away.
MERGED_HOLD = "merged"


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
    # The needs it brings start where the survivor is (one it had before, withdrawn by an
    # undone merge, starts again).
    await case_needs.current(uow, survivor, now=now, joined=new_needs)
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
    # Both kept in the merge's record: an undo gives them back.
    moved["holds_ended"] = await holds_db.settle_holds_on_case(
        session, merged["id"], MERGED_HOLD, now=now
    )
    moved["holds_repointed"] = await holds_db.hold_because_of(
        session, merged_case=merged["id"], survivor_case=survivor["id"]
    )
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
    # Both records locked (in one order) before anything is read: a merge or an undo of
    # either record at the same time waits, then finds what this one did.
    locked = await residents_db.lock_residents(session, [merged, into])
    if len(locked) != 2 or any(row["merged_into"] is not None for row in locked.values()):
        raise Conflict(
            "one of these records was merged into another meanwhile: merge the record it "
            "became, or undo that merge first"
        )
    council = locked[into]["council"]
    merged_keys, into_keys = await keys_of(uow, merged), await keys_of(uow, into)
    merged_case = await cases_db.lock_open_case_of(session, merged, council)
    survivor_case = await cases_db.lock_open_case_of(session, into, council)
    moved: dict[str, Any] = {}
    if merged_case is not None and survivor_case is not None:
        moved = await _merge_cases(uow, merged_case, survivor_case, who=who, now=now)
    records = await residents_db.move_records(session, merged=merged, into=into, now=now)
    moved["cases"], moved["resident_referrals"] = records["cases"], records["referrals"]
    # Possible duplicates: those between the two are settled by the merge (their holds with
    # them).
    for duplicate_id in await residents_db.confirm_duplicates_between(
        session, merged, into, decided_by=who.subject, now=now
    ):
        await holds_db.settle_holds_of_duplicate(session, duplicate_id, "merged", now=now)
    # The merged record's others now name the survivor, still for a caseworker; kept in the
    # merge's record with the holds that followed them, for an undo.
    duplicates = await residents_db.move_open_duplicates(session, merged=merged, into=into, now=now)
    moved["duplicates_renamed"] = duplicates["renamed"]
    moved["duplicates_closed"] = duplicates["closed"]
    moved["holds_moved"] = await holds_db.move_holds(session, duplicates["closed"])
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
    async with uow.snapshot() as session:
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
        found = await residents_db.lock_duplicate(session, principal, duplicate_id, lock=False)
        if found is None:
            raise NotFound("possible duplicate not found")
        # The two records, then the entry: the order a merge and an undo lock them in (an
        # undo locks the entries it moved after the records), so none waits in a circle.
        pair = [found["resident_id"], found["candidate_id"]]
        await residents_db.lock_residents(session, pair)
        row = await residents_db.lock_duplicate(session, principal, duplicate_id)
        if row is None or [row["resident_id"], row["candidate_id"]] != pair:
            raise Conflict("the possible duplicate changed meanwhile: look at it again")
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


# -- undoing a merge ---------------------------------------------------------------------


@dataclass(frozen=True)
class MergeRecord:
    """A merge as a caseworker sees it: ids, who merged and when, and whether undone."""

    id: str
    council: str
    merged_resident_id: str
    into_resident_id: str
    merged_case_id: str | None
    survivor_case_id: str | None
    merged_by: str
    merged_at: datetime
    undone_at: datetime | None
    undone_by: str | None


def _merge_record(row: Row) -> MergeRecord:
    return MergeRecord(
        id=row["id"],
        council=row["council"],
        merged_resident_id=row["merged_resident_id"],
        into_resident_id=row["into_resident_id"],
        merged_case_id=row["merged_case_id"],
        survivor_case_id=row["survivor_case_id"],
        merged_by=row["merged_by"],
        merged_at=row["created_at"],
        undone_at=row["undone_at"],
        undone_by=row["undone_by"],
    )


async def _audit_merges(
    uow: ReferralsUnitOfWork, principal: Principal, operation: str, rows: Iterable[Row]
) -> None:
    """A merge, ids only, still tells that two residents were judged one person: both
    records of each merge shown, as matching evidence."""
    seen = [
        audit.Seen(row["council"], resident)
        for row in rows
        for resident in (row["merged_resident_id"], row["into_resident_id"])
    ]
    await audit.audited(uow, principal, operation, [audit.MATCHING], seen)


async def merges(
    uow: ReferralsUnitOfWork, principal: Principal, resident_id: str | None = None
) -> list[MergeRecord]:
    """The council's merges, newest first (of one resident, if named): ids only, and
    audited (which residents were judged the same person is matching evidence)."""
    async with uow.snapshot() as session:
        rows = await merges_db.merges_of(session, principal, resident_id)
        await _audit_merges(uow, principal, "merges", rows)
    return [_merge_record(row) for row in rows]


# While partners hold a need (routing, offered, unroutable…), it cannot leave a case: an
# offer is withdrawn only with its whole case for now (no per-need withdrawal event yet).
_LIVE_OFFERS = ("offered", "accepted", "in_progress")


async def _refuse_unsafe_undo(
    uow: ReferralsUnitOfWork,
    merge: Row,
    moved: dict[str, Any],
    residents: dict[str, Row],
    *,
    merged_case: Row | None,
    survivor_case: Row | None,
    new_needs: list[str],
) -> None:
    """An undo restores exactly what the merge moved, or nothing: a Conflict saying why
    not when what happened since cannot be given back to one of the two people."""
    session = uow.session
    restored = residents[merge["merged_resident_id"]]
    into = residents[merge["into_resident_id"]]
    if restored["merged_into"] != merge["into_resident_id"]:
        raise Conflict("the merged record no longer points at the one it was merged into")
    if into["merged_into"] is not None:
        raise Conflict(
            "the record this one was merged into has been merged into another since: "
            "undo that merge first",
        )
    if survivor_case is not None:
        status = CaseStatus(survivor_case["status"])
        if status not in OPEN_STATUSES:
            raise Conflict(
                f"the surviving case is {status} since the merge: what it recorded covers "
                "both records; refer the other resident afresh instead",
                status.value,
            )
        with_partners = {
            row["need"]
            for row in await needs_db.needs_of(session, survivor_case["id"])
            if row["need"] in new_needs and NeedStatus(row["status"]) in WITH_PARTNERS
        }
        offered = await merges_db.live_offers_for(
            session, survivor_case["id"], new_needs, _LIVE_OFFERS
        )
        if offered or with_partners:
            needs = ", ".join(sorted(set(offered) | with_partners))
            raise Conflict(
                f"partners were asked to help the surviving case with {needs}, which only the "
                "merged case had, and an offer is withdrawn only with its whole case: record "
                "the surviving case's consent withdrawal or change its basis (partners withdraw "
                "its offers), then undo the merge",
                status.value,
            )
    if merged_case is not None and merged_case["status"] != CaseStatus.WITHDRAWN:
        raise Conflict("the merged case is no longer as the merge left it", merged_case["status"])
    cases_back = [c for c in (merge["survivor_case_id"], *moved.get("cases", ())) if c]
    added = await merges_db.written_since(
        session,
        list(dict.fromkeys(cases_back)),
        merge["created_at"],
        moved=[*moved.get("referrals", ()), *moved.get("consents", ())],
    )
    if added:
        what = " and ".join(f"{n} {table}" for table, n in sorted(added.items()))
        raise Conflict(
            f"{what} recorded since the merge cannot be given to one of the two residents: "
            "the merge can no longer be undone; a caseworker separates them by hand"
        )


async def _refuse_unrestorable_duplicates(
    uow: ReferralsUnitOfWork, merge: Row, moved: dict[str, Any]
) -> None:
    """The possible duplicates and holds the merge moved go back only as the merge left
    them: an entry decided since, or a hold settled since, is a decision about the surviving
    record that cannot be given back to one of the two people — a Conflict saying which."""
    session, into = uow.session, merge["into_resident_id"]
    renamed: dict[str, str] = moved.get("duplicates_renamed") or {}
    closed: dict[str, str] = moved.get("duplicates_closed") or {}
    entries = await residents_db.duplicates_by_id(session, [*renamed, *closed])
    for entry_id, side in sorted(renamed.items()):
        entry = entries.get(entry_id)
        if entry is None or entry["status"] != "open" or entry[side] != into:
            state = entry["status"] if entry else "gone"
            raise Conflict(
                f"possible duplicate {entry_id}, the merged record's until the merge moved it "
                f"to the surviving record, has been {state} since: that decision cannot be "
                "given back to one of the two residents; a caseworker separates them by hand",
                state,
            )
    for entry_id in sorted(closed):
        entry = entries.get(entry_id)
        if entry is None or entry["decided_by"] != residents_db.CLOSED_BY_MERGE:
            raise Conflict(
                f"possible duplicate {entry_id}, closed by the merge, has changed since: it "
                "cannot be opened again as it was",
                entry["status"] if entry else "gone",
            )
    held_since: dict[str, str] = moved.get("holds_moved") or {}
    repointed: list[str] = moved.get("holds_repointed") or []
    holds = await holds_db.holds_by_id(session, [*held_since, *repointed])
    for hold_id, stale in sorted(held_since.items()):
        hold = holds.get(hold_id)
        if hold is None or hold["status"] != holds_db.HELD or hold["duplicate_id"] != closed[stale]:
            raise Conflict(
                f"a need of case {hold['case_id'] if hold else '?'} held for a possible duplicate "
                "the merge moved has been released since: it cannot be held again as it was; "
                "a caseworker separates them by hand",
                hold["status"] if hold else "gone",
            )
    for hold_id in repointed:
        hold = holds.get(hold_id)
        if (
            hold is None
            or hold["status"] != holds_db.HELD
            or hold["other_case_id"] != merge["survivor_case_id"]
        ):
            raise Conflict(
                f"a need of case {hold['case_id'] if hold else '?'}, held because of the merged "
                "case and then of the surviving one, has been released since: it cannot be "
                "held again as it was; a caseworker separates them by hand",
                hold["status"] if hold else "gone",
            )


async def _restore_duplicates_and_holds(
    uow: ReferralsUnitOfWork, merge: Row, moved: dict[str, Any], *, merged_case: Row | None
) -> None:
    """What the merge did to possible duplicates and holds, undone (checked first by
    ``_refuse_unrestorable_duplicates``): entries it renamed or closed are the restored
    record's and open again, holds it moved are of their entry again, holds because of the
    merged case are so again, and the merged case's own holds hold again while their entry
    is open (one between the two, rejected by the undo, stays ended)."""
    session = uow.session
    renamed: dict[str, str] = moved.get("duplicates_renamed") or {}
    closed: dict[str, str] = moved.get("duplicates_closed") or {}
    held_since: dict[str, str] = moved.get("holds_moved") or {}
    back = await residents_db.move_duplicates_back(
        session,
        restored=merge["merged_resident_id"],
        into=merge["into_resident_id"],
        renamed=renamed,
        closed=list(closed),
    )
    if back != len(renamed) + len(closed):
        raise Conflict("the possible duplicates the merge moved changed while it was undone")
    if await holds_db.move_holds_back(session, held_since, into=closed) != len(held_since):
        raise Conflict("the holds the merge moved changed while it was undone")
    if merged_case is None:
        return
    repointed: list[str] = moved.get("holds_repointed") or []
    again = await holds_db.hold_because_of_again(
        session,
        repointed,
        merged_case=merged_case["id"],
        survivor_case=merge["survivor_case_id"],
    )
    if again != len(repointed):
        raise Conflict("the holds the merge moved changed while it was undone")
    await holds_db.hold_again(session, moved.get("holds_ended") or [], ended_as=MERGED_HOLD)


def _restored_values(survivor: Row, merged: Row, before: dict[str, Any]) -> dict[str, Any]:
    """The survivor's values without what the merge added: its own needs and circumstances
    (and any added since), and the urgency, basis and Article 9 condition it had, unless a
    caseworker has changed them since."""
    merged_only = [n for n in merged["needs"] if n not in before["needs"]]
    values: dict[str, Any] = {
        "needs": [n for n in survivor["needs"] if n not in merged_only],
        "circumstances": [
            c
            for c in survivor["circumstances"]
            if c in before["circumstances"] or c not in merged["circumstances"]
        ],
    }
    produced = max(RiskLevel(before["urgency"]), RiskLevel(merged["urgency"]), key=lambda r: r.rank)
    urgency = RiskLevel(survivor["urgency"])
    if urgency is produced:
        urgency = RiskLevel(before["urgency"])
    risk = RiskLevel(survivor["risk_level"]) if survivor["risk_level"] else None
    values["urgency"], values["priority"] = urgency.value, priority(urgency, risk)
    if (
        before["lawful_basis"] != LawfulBasis.CONSENT
        and survivor["lawful_basis"] == LawfulBasis.CONSENT
        and merged["lawful_basis"] == LawfulBasis.CONSENT
    ):
        for field in ("lawful_basis", "basis_justification", "basis_decided_by"):
            values[field] = before[field]
    if (
        before["article9_condition"] is None
        and survivor["article9_condition"] == merged["article9_condition"]
    ):
        values["article9_condition"] = None
    return values


async def _stop_sharing_without_basis(
    uow: ReferralsUnitOfWork, survivor: Row, *, who: Actor, now: datetime
) -> Row:
    """The surviving case shared on the merged case's consent: partners are told the
    council no longer shares it (they withdraw its offers), and what they held waits for
    consent — the one way sharing stops (``cases.stop_partners``), for a routed case and
    an unroutable one alike (partners may still hold some of its needs)."""
    if CaseStatus(survivor["status"]) not in WITH_PARTNERS_STATUSES:
        return survivor
    decision = await sharing_decision(uow, survivor, now=now)
    if decision.allowed:
        return survivor
    return await stop_partners(
        uow,
        survivor,
        actor=who,
        reason="merge undone: the consent it was shared on was the other resident's",
        why=SharingStopped.BASIS_CHANGED,
        now=now,
    )


async def _reopen(
    uow: ReferralsUnitOfWork, case: Row, previous: str, *, who: Actor, now: datetime, why: str
) -> Row:
    """The merged case, withdrawn by the merge, open again where routing starts: as it was
    if it had not reached partners yet, else assessed (partners withdrew all its offers
    with it); then routed through the usual path. Not a lifecycle move: the withdrawal is
    undone, and the timeline says so."""
    status = CaseStatus(previous)
    if status not in (CaseStatus.RECEIVED, CaseStatus.ASSESSED, CaseStatus.AWAITING_CONSENT):
        status = CaseStatus.ASSESSED
    if status is CaseStatus.RECEIVED and case["risk_level"] is not None:
        status = CaseStatus.ASSESSED  # assessed while it was withdrawn
    reason = f"merge undone: {why}"
    case = await cases_db.update_case(
        uow.session,
        case["id"],
        status=status.value,
        withdrawn_at=None,
        merged_into_case=None,
        status_reason=reason,
        updated_at=now,
    )
    # Its needs the merge withdrew start again where the case is (partners withdrew their
    # offers with the case); a need that had an outcome before keeps it.
    await merges_db.reopen_withdrawn_needs(
        uow.session, case["id"], initial_status(status).value, now=now
    )
    await cases_db.add_timeline(
        uow.session,
        case["id"],
        who,
        f"status changed to {status.value}",
        now=now,
        detail=reason,
        status_from=CaseStatus.WITHDRAWN.value,
        status_to=status.value,
        referrer_visible=True,
    )
    await uow.outbox.add(
        uow.session,
        CaseStatusChanged(
            case_id=case["id"],
            council=case["council"],
            previous=CaseStatus.WITHDRAWN.value,
            status=status.value,
            reason=reason,
            changed_at=now,
        ),
        subject=case["id"],
    )
    if status is not CaseStatus.RECEIVED:
        case = await route_if_allowed(uow, case, actor=who, now=now)
    return case


async def undo_merge(
    uow: ReferralsUnitOfWork, principal: Principal, merge_id: str, reason: str
) -> MergeRecord:
    """Two people after all: what the merge moved goes back — the merged record, its cases
    and referrals; from the survivor's case its referrals, consents and notes, needs,
    circumstances, urgency and basis; the possible duplicates it moved to the survivor and
    the holds that followed them or ended with the merged case — and the case the merge
    withdrew is open again and routed (a need still held waits for the caseworker). Both
    records are locked first, so a merge of either at the same time waits for it. Timeline
    entries and offers stay where they were written; offers withdrawn with the merged case
    stay withdrawn. Both timelines say who undid it and why. The risk service is told (it
    splits the profile). Another council's merge is not found; a second undo, or one that
    can no longer restore exactly, is a Conflict saying why."""
    async with uow.transaction() as session:
        merge = await merges_db.lock_merge(session, principal, merge_id)
        if merge is None:
            raise NotFound("merge not found")
        if merge["undone_at"] is not None:
            raise Conflict(f"already undone by {merge['undone_by']}", "undone")
        # Both records locked (in one order, before their cases, as a merge locks them):
        # a merge of either at the same time waits for the undo, or the undo for it.
        locked = await residents_db.lock_residents(
            session, [merge["merged_resident_id"], merge["into_resident_id"]]
        )
        now, who = uow.now(), actor_of(principal)
        moved: dict[str, Any] = dict(merge["moved"])
        restored_id, into_id = merge["merged_resident_id"], merge["into_resident_id"]
        council = merge["council"]
        merged_case = survivor_case = None
        if merge["merged_case_id"] is not None:
            merged_case = await cases_db.lock_case(session, merge["merged_case_id"])
        if merge["survivor_case_id"] is not None:
            survivor_case = await cases_db.lock_case(session, merge["survivor_case_id"])
        both = merged_case is not None and survivor_case is not None and "survivor_before" in moved
        before: dict[str, Any] = moved.get("survivor_before") or {}
        new_needs = (
            [n for n in merged_case["needs"] if n not in before["needs"]]
            if both and merged_case is not None
            else []
        )
        await _refuse_unsafe_undo(
            uow,
            merge,
            moved,
            locked,
            merged_case=merged_case if both else None,
            survivor_case=survivor_case if both else None,
            new_needs=new_needs,
        )
        await _refuse_unrestorable_duplicates(uow, merge, moved)
        case_ids = list(moved.get("cases", ()))
        records_back = await residents_db.move_records_back(
            session,
            restored=restored_id,
            into=into_id,
            case_ids=case_ids,
            referral_ids=[*moved.get("resident_referrals", ()), *moved.get("referrals", ())],
            now=now,
        )
        if records_back != {"cases": len(case_ids), "residents": 1}:
            raise Conflict(
                "the records the merge moved are no longer all on the surviving record: "
                "the merge can no longer be undone; a caseworker separates them by hand"
            )
        await residents_db.reject_confirmed_between(
            session, restored_id, into_id, decided_by=principal.subject, now=now
        )
        await _restore_duplicates_and_holds(
            uow, merge, moved, merged_case=merged_case if both else None
        )
        if both and merged_case is not None and survivor_case is not None:
            back = await merges_db.move_case_records_back(
                session, moved, from_case=survivor_case["id"], to_case=merged_case["id"]
            )
            survivor = await cases_db.update_case(
                session,
                survivor_case["id"],
                **_restored_values(survivor_case, merged_case, before),
                updated_at=now,
            )
            await case_needs.current(uow, survivor, now=now)  # the needs it gave back: withdrawn
            await cases_db.add_timeline(
                session,
                survivor["id"],
                who,
                "un-merged",
                now=now,
                detail=f"merge of case {merged_case['id']} undone: {reason}; needs removed: "
                + (", ".join(new_needs) or "none")
                + f"; {len(back['referrals'])} referral(s) moved back",
            )
            await cases_db.add_timeline(
                session,
                merged_case["id"],
                who,
                "un-merged",
                now=now,
                detail=f"no longer part of case {survivor['id']}: {reason}",
            )
            await _stop_sharing_without_basis(uow, survivor, who=who, now=now)
            await _reopen(
                uow,
                merged_case,
                moved.get("merged_status", "assessed"),
                who=who,
                now=now,
                why=reason,
            )
        for case_id in case_ids:
            if both and merged_case is not None and case_id == merged_case["id"]:
                continue
            await cases_db.add_timeline(
                session,
                case_id,
                who,
                "un-merged",
                now=now,
                detail=f"resident {restored_id} separated again from {into_id}: {reason}",
            )
        undone = await merges_db.mark_undone(session, merge_id, by=who.signature, now=now)
        await _audit_merges(uow, principal, "undo_merge", [undone])
        survivor_id = merge["survivor_case_id"]
        await uow.outbox.add(
            session,
            ResidentsUnmerged(
                merge_id=merge_id,
                council=council,
                restored_resident_keys=await keys_of(uow, restored_id),
                into_resident_keys=await keys_of(uow, into_id),
                restored_case_ids=case_ids,
                restored_case_id=merge["merged_case_id"] if both else None,
                survivor_case_id=survivor_id,
                unmerged_at=now,
            ),
            subject=survivor_id or into_id,
        )
    return _merge_record(undone)
