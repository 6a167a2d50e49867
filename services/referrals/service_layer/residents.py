"""Residents: matching a referral or a flag to a resident we know, possible duplicates a
caseworker settles (confirm merges, reject keeps both; never silent), and merges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from services.referrals.adapters import Row
from services.referrals.adapters import cases as cases_db
from services.referrals.adapters import residents as residents_db
from services.referrals.domain.actors import Actor
from services.referrals.domain.matching import Identity, find_matches
from services.referrals.service_layer.callers import actor_of
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared.auth import Principal
from shared.errors import Conflict, NotFound
from shared.identity import normalise_name, resident_keys

DuplicateState = Literal["open", "confirmed", "rejected"]


@dataclass(frozen=True)
class ResidentFacts:
    """Identity and contact of a resident as a referral or a feed states them."""

    given_name: str
    family_name: str
    date_of_birth: date | None = None
    postcode: str | None = None
    uprn: str | None = None
    address: str | None = None
    phone: str | None = None
    email: str | None = None
    preferred_contact: str = "letter"
    preferred_language: str = "en"
    interpreter_needed: bool = False
    accessibility_needs: str | None = None
    council_reference: str | None = None


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


# -- steps inside a caller's transaction -------------------------------------------------


def _identity(row: Row) -> Identity:
    return Identity(
        row["id"],
        row["given_name"],
        row["family_name"],
        row["date_of_birth"],
        row["postcode"],
        row["uprn"],
    )


async def match_or_create_resident(
    uow: ReferralsUnitOfWork, council: str, facts: ResidentFacts, *, now: datetime
) -> tuple[str, int]:
    """The resident's id, and how many uncertain matches were recorded for review."""
    session = uow.session
    new = Identity(
        None, facts.given_name, facts.family_name, facts.date_of_birth, facts.postcode, facts.uprn
    )
    await residents_db.lock_family(session, council, new.family)
    known = await residents_db.match_candidates(session, council, new.family, facts.uprn)
    certain, uncertain = find_matches(new, [_identity(row) for row in known])
    contact = {
        k: v
        for k, v in {
            "address": facts.address,
            "phone": facts.phone,
            "email": facts.email,
            "postcode": facts.postcode,
            "uprn": facts.uprn,
            "date_of_birth": facts.date_of_birth,
            "council_reference": facts.council_reference,
        }.items()
        if v is not None
    }
    if certain is not None:
        # Keep the most recent contact details a referrer gave.
        await residents_db.update_contact(session, certain.resident_id, contact, now=now)
        return certain.resident_id, 0
    resident_id = uow.new_id()
    await residents_db.insert_resident(
        session,
        id=resident_id,
        council=council,
        given_name=facts.given_name,
        family_name=facts.family_name,
        norm_given=normalise_name(facts.given_name),
        norm_family=normalise_name(facts.family_name),
        preferred_contact=facts.preferred_contact,
        preferred_language=facts.preferred_language,
        interpreter_needed=facts.interpreter_needed,
        accessibility_needs=facts.accessibility_needs,
        **contact,
    )
    for match in uncertain:
        await residents_db.insert_possible_duplicate(
            session,
            id=uow.new_id(),
            council=council,
            resident_id=resident_id,
            candidate_id=match.resident_id,
            reason=match.reason,
        )
    return resident_id, len(uncertain)


async def keys_of(uow: ReferralsUnitOfWork, resident_id: str) -> list[str]:
    """The pseudonymous keys the risk service knows this resident by."""
    row = await residents_db.resident(uow.session, resident_id)
    return resident_keys(
        uow.settings.resident_key_secret.get_secret_value(),
        given_name=row["given_name"],
        family_name=row["family_name"],
        date_of_birth=row["date_of_birth"],
        postcode=row["postcode"],
        uprn=row["uprn"],
    )


async def _merge(
    uow: ReferralsUnitOfWork, *, merged: str, into: str, who: Actor, now: datetime
) -> None:
    """``merged`` becomes part of ``into``: its cases and referrals move across, both
    timelines are kept, and the merged record stays, pointing at the survivor."""
    session = uow.session
    # A resident belongs to one council, so two open cases would break one-open-case-each.
    if await residents_db.residents_with_open_case(session, [merged, into]) == {merged, into}:
        raise Conflict("both residents have an open case: close or withdraw one of them first")
    for case_id in await residents_db.move_records(session, merged=merged, into=into, now=now):
        await cases_db.add_timeline(
            session,
            case_id,
            who,
            "resident records merged",
            now=now,
            detail=f"resident {merged} merged into {into}",
        )


def _duplicate(row: Row) -> PossibleDuplicate:
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
    )


# -- use cases ---------------------------------------------------------------------------


async def possible_duplicates(
    uow: ReferralsUnitOfWork, principal: Principal, state: DuplicateState = "open"
) -> list[PossibleDuplicate]:
    async with uow.transaction() as session:
        rows = await residents_db.duplicates_in_state(session, principal, state)
    return [_duplicate(row) for row in rows]


async def decide_duplicate(
    uow: ReferralsUnitOfWork,
    principal: Principal,
    duplicate_id: str,
    decision: Literal["confirmed", "rejected"],
) -> PossibleDuplicate:
    """Confirmed: the same person, so the newer record merges into the one known first.
    Rejected: different people; both records stay."""
    async with uow.transaction() as session:
        row = await residents_db.lock_duplicate(session, principal, duplicate_id)
        if row is None:
            raise NotFound("possible duplicate not found")
        if row["status"] != "open":
            raise Conflict(f"already {row['status']}", row["status"])
        now = uow.now()
        if decision == "confirmed":
            await _merge(
                uow,
                merged=row["resident_id"],
                into=row["candidate_id"],
                who=actor_of(principal),
                now=now,
            )
        await residents_db.decide_duplicate(
            session, row["id"], decision, decided_by=principal.subject, now=now
        )
        decided = await residents_db.duplicate_named(session, principal, row["id"])
    return _duplicate(decided)


async def merge_resident(
    uow: ReferralsUnitOfWork, principal: Principal, resident_id: str, into: str
) -> None:
    """A caseworker merges one resident's record into another's of the same council."""
    async with uow.transaction() as session:
        found = await residents_db.unmerged_residents(session, principal, [resident_id, into])
        if len(found) != 2 or resident_id == into or found[0]["council"] != found[1]["council"]:
            raise NotFound("two distinct residents of one council not found")
        now = uow.now()
        await _merge(uow, merged=resident_id, into=into, who=actor_of(principal), now=now)
        # A recorded possible duplicate between them is settled by the merge.
        await residents_db.confirm_open_duplicates_of(
            session, resident_id, decided_by=principal.subject, now=now
        )
