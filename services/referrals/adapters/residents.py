"""Queries over residents and possible duplicates."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    and_,
    bindparam,
    or_,
    select,
    true,
    union,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters import Row
from services.referrals.adapters.tables import cases, possible_duplicates, referrals, residents
from services.referrals.domain.lifecycle import OPEN_STATUSES
from services.referrals.domain.matching import (
    BlockingKeys,
    district_of,
    email_key,
    phone_key,
    phonetic_key,
)
from shared.auth import OrganisationKind, Principal
from shared.db import advisory_lock, fetch_all, fetch_one, lock_by_id, rows_affected


def council_scope(principal: Principal, column: ColumnElement[str]) -> ColumnElement[bool]:
    """Operators see every council's residents; council staff only their own."""
    if principal.kind is OrganisationKind.OPERATOR:
        return true()
    return column == principal.organisation


async def lock_family(session: AsyncSession, council: str, norm_family: str) -> None:
    """Until the transaction ends: two referrals for the same new person at once must not
    create two residents."""
    await advisory_lock(session, f"resident|{council}|{norm_family}")


# No person is compared with more residents than this (the strongest keys come first).
CANDIDATE_LIMIT = 200


ARM_LIMIT = 50


class _Shape(NamedTuple):
    """Which blocking keys a person has: the arms of the candidate query."""

    dates: bool
    birth_year: bool
    names_differ: bool
    district: bool
    postcode: bool
    uprn: bool
    phone: bool
    email: bool


def _shape_of(keys: BlockingKeys) -> _Shape:
    return _Shape(
        bool(keys.dates_of_birth),
        bool(keys.birth_year),
        keys.family_key != keys.given_key,
        bool(keys.district),
        bool(keys.postcode),
        bool(keys.uprn),
        bool(keys.phone),
        bool(keys.email),
    )


def _bound(council: str, keys: BlockingKeys) -> dict[str, Any]:
    """The values of the candidate query's parameters (those of arms it has go unused)."""
    year = keys.birth_year
    return {
        "council": council,
        "dates": list(keys.dates_of_birth),
        "born_from": date(year, 1, 1) if year else None,
        "born_to": date(year, 12, 31) if year else None,
        "family_key": keys.family_key,
        "given_key": keys.given_key,
        "district": keys.district,
        "postcode": keys.postcode,
        "uprn": keys.uprn,
        "phone": keys.phone,
        "email": keys.email,
    }


def _candidate_ids(shape: _Shape) -> Any:
    """Ids of the council's residents sharing any blocking key, each key through its own
    index (one arm per key, so each arm leads with the council). The name arms, when the
    date of birth is known, take only residents born the same year or with no date (so
    does the postcode's): a common name is shared by hundreds in a borough, a postcode by
    dozens. The keys are bound (``_bound``), not written into the query."""

    def arm(*conditions: ColumnElement[bool]) -> Any:
        return (
            select(residents.c.id)
            .where(
                residents.c.council == bindparam("council"),
                residents.c.merged_into.is_(None),
                *conditions,
            )
            .limit(ARM_LIMIT)
        )

    born = (
        or_(
            residents.c.date_of_birth.is_(None),
            residents.c.date_of_birth.between(bindparam("born_from"), bindparam("born_to")),
        )
        if shape.birth_year
        else true()
    )
    family, given = residents.c.family_key, residents.c.given_key
    family_key: BindParameter[Any] = bindparam("family_key")
    given_key: BindParameter[Any] = bindparam("given_key")
    arms = []
    if shape.dates:
        arms.append(arm(residents.c.date_of_birth.in_(bindparam("dates", expanding=True))))
    arms.append(arm(family == family_key, given == given_key, born))
    if shape.names_differ:
        arms.append(arm(family == given_key, given == family_key, born))
    if shape.district:
        arms.append(
            arm(residents.c.postcode_district == bindparam("district"), family == family_key, born)
        )
    if shape.postcode:
        arms.append(arm(residents.c.postcode == bindparam("postcode"), born))
    if shape.uprn:
        arms.append(arm(residents.c.uprn == bindparam("uprn")))
    if shape.phone:
        arms.append(arm(residents.c.phone_key == bindparam("phone")))
    if shape.email:
        arms.append(arm(residents.c.email_key == bindparam("email")))
    return union(*(a.subquery().select() for a in arms)).subquery()


# Built once for each shape (at most 2**8): building and keying a union of eight arms
# for every referral cost more CPU than running it.
@functools.cache
def _match_candidates(shape: _Shape) -> Any:
    ids = _candidate_ids(shape)
    return (
        select(
            residents.c.id,
            residents.c.given_name,
            residents.c.family_name,
            residents.c.date_of_birth,
            residents.c.postcode,
            residents.c.uprn,
            residents.c.phone,
            residents.c.email,
        )
        .where(residents.c.id.in_(select(ids.c.id)))
        .limit(CANDIDATE_LIMIT)
    )


async def match_candidates(
    session: AsyncSession, council: str, keys: BlockingKeys
) -> Sequence[Row]:
    """Residents of the council who might be this person: any blocking key in common."""
    return await fetch_all(session, _match_candidates(_shape_of(keys)), _bound(council, keys))


def key_columns(values: dict[str, Any]) -> dict[str, Any]:
    """The blocking-key columns for the given (normalised) name, postcode, phone and email;
    only those whose source is among ``values``."""
    keys: dict[str, Any] = {}
    if "norm_given" in values:
        keys["given_key"] = phonetic_key(values["norm_given"])
    if "norm_family" in values:
        keys["family_key"] = phonetic_key(values["norm_family"])
    if "postcode" in values:
        keys["postcode_district"] = district_of(values["postcode"])
    if "phone" in values:
        keys["phone_key"] = phone_key(values["phone"])
    if "email" in values:
        keys["email_key"] = email_key(values["email"])
    return keys


async def lock_residents(session: AsyncSession, resident_ids: Sequence[str]) -> dict[str, Row]:
    """These residents' rows, locked until the transaction ends, in one order (by id): a
    merge and an undo of the same records wait for each other instead of interleaving, and
    never in a circle. By id; a missing one is left out."""
    return await lock_by_id(session, residents, resident_ids)


_RESIDENT = select(residents).where(residents.c.id == bindparam("id"))
_INSERT_RESIDENT = residents.insert()


async def resident(session: AsyncSession, resident_id: str) -> Row:
    found = await fetch_one(session, _RESIDENT, {"id": resident_id})
    if found is None:
        raise LookupError(f"resident {resident_id} is missing")
    return found


async def update_contact(
    session: AsyncSession, resident_id: str, contact: dict[str, Any], *, now: datetime
) -> None:
    await session.execute(
        update(residents)
        .where(residents.c.id == resident_id)
        .values(**contact, **key_columns(contact), updated_at=now)
    )


async def insert_resident(session: AsyncSession, **values: Any) -> None:
    await session.execute(_INSERT_RESIDENT, {**values, **key_columns(values)})


async def insert_possible_duplicate(
    session: AsyncSession,
    *,
    id: str,
    council: str,
    resident_id: str,
    candidate_id: str,
    reason: str,
    score: float,
    contributions: list[dict[str, Any]],
) -> None:
    await session.execute(
        possible_duplicates.insert().values(
            id=id,
            council=council,
            resident_id=resident_id,
            candidate_id=candidate_id,
            reason=reason,
            score=score,
            contributions=contributions,
            status="open",
        )
    )


def _duplicates_query(principal: Principal) -> Any:
    new, known = residents.alias("new"), residents.alias("known")
    return (
        select(
            possible_duplicates,
            (new.c.given_name + " " + new.c.family_name).label("resident_name"),
            (known.c.given_name + " " + known.c.family_name).label("candidate_name"),
        )
        .join(new, new.c.id == possible_duplicates.c.resident_id)
        .join(known, known.c.id == possible_duplicates.c.candidate_id)
        .where(council_scope(principal, possible_duplicates.c.council))
    )


async def duplicates_in_state(
    session: AsyncSession, principal: Principal, state: str
) -> Sequence[Row]:
    return await fetch_all(
        session,
        _duplicates_query(principal)
        .where(possible_duplicates.c.status == state)
        .order_by(possible_duplicates.c.created_at),
    )


async def duplicate_named(session: AsyncSession, principal: Principal, duplicate_id: str) -> Row:
    found = await fetch_one(
        session, _duplicates_query(principal).where(possible_duplicates.c.id == duplicate_id)
    )
    if found is None:
        raise LookupError(f"possible duplicate {duplicate_id} is missing")
    return found


async def lock_duplicate(
    session: AsyncSession, principal: Principal, duplicate_id: str, *, lock: bool = True
) -> Row | None:
    """The caller's council's entry (an operator's: any), locked unless ``lock`` is false."""
    query = select(possible_duplicates).where(
        possible_duplicates.c.id == duplicate_id,
        council_scope(principal, possible_duplicates.c.council),
    )
    return await fetch_one(session, query.with_for_update() if lock else query)


async def decide_duplicate(
    session: AsyncSession, duplicate_id: str, decision: str, *, decided_by: str, now: datetime
) -> None:
    await session.execute(
        update(possible_duplicates)
        .where(possible_duplicates.c.id == duplicate_id)
        .values(status=decision, decided_by=decided_by, decided_at=now)
    )


def _pair(a: str, b: str) -> Any:
    return or_(
        and_(possible_duplicates.c.resident_id == a, possible_duplicates.c.candidate_id == b),
        and_(possible_duplicates.c.resident_id == b, possible_duplicates.c.candidate_id == a),
    )


async def confirm_duplicates_between(
    session: AsyncSession, a: str, b: str, *, decided_by: str, now: datetime
) -> list[str]:
    """The open entries between these two records (either way round) are confirmed by
    their merge; their ids. Entries with anyone else are left for the caseworker."""
    rows = await fetch_all(
        session,
        update(possible_duplicates)
        .where(possible_duplicates.c.status == "open", _pair(a, b))
        .values(status="confirmed", decided_by=decided_by, decided_at=now)
        .returning(possible_duplicates.c.id),
    )
    return [row["id"] for row in rows]


CLOSED_BY_MERGE = "merge: the same pair is listed under the surviving record"


async def move_open_duplicates(
    session: AsyncSession, *, merged: str, into: str, now: datetime
) -> dict[str, dict[str, str]]:
    """The merged record's other open entries now name the survivor, so a caseworker can
    still decide them: ``renamed`` {entry id: the side ("resident_id" or "candidate_id")
    that named the merged record}. Where the survivor already has an entry with that
    person, the merged record's one is closed as rejected (it is the same question asked
    twice) and mapped to the survivor's: ``closed`` {stale entry id: surviving entry id},
    for its holds. Both kept in the merge's record, for an undo."""
    renamed: dict[str, str] = {}
    stale: dict[str, str] = {}
    for side, other_side in (("resident_id", "candidate_id"), ("candidate_id", "resident_id")):
        rows = await fetch_all(
            session,
            select(possible_duplicates.c.id, possible_duplicates.c[other_side].label("other"))
            .where(
                possible_duplicates.c.status == "open",
                possible_duplicates.c[side] == merged,
                possible_duplicates.c[other_side] != into,
            )
            .order_by(possible_duplicates.c.id)
            .with_for_update(),
        )
        for row in rows:
            existing = await fetch_one(
                session, select(possible_duplicates.c.id).where(_pair(into, row["other"]))
            )
            if existing is None:
                await session.execute(
                    update(possible_duplicates)
                    .where(possible_duplicates.c.id == row["id"])
                    .values({side: into})
                )
                renamed[row["id"]] = side
                continue
            stale[row["id"]] = existing["id"]
            await session.execute(
                update(possible_duplicates)
                .where(possible_duplicates.c.id == row["id"])
                .values(status="rejected", decided_by=CLOSED_BY_MERGE, decided_at=now)
            )
    return {"renamed": renamed, "closed": stale}


async def duplicates_by_id(session: AsyncSession, ids: Sequence[str]) -> dict[str, Row]:
    """These possible-duplicate entries, locked, by id (an undo checks what the merge left)."""
    return await lock_by_id(session, possible_duplicates, ids)


async def move_duplicates_back(
    session: AsyncSession,
    *,
    restored: str,
    into: str,
    renamed: dict[str, str],
    closed: Sequence[str],
) -> int:
    """Undo ``move_open_duplicates``: the entries it renamed name the restored record again
    and those it closed are open again (each only if still as the merge left it). How many
    entries went back."""
    count = 0
    for entry_id, side in sorted(renamed.items()):
        count += await rows_affected(
            session,
            update(possible_duplicates)
            .where(
                possible_duplicates.c.id == entry_id,
                possible_duplicates.c.status == "open",
                possible_duplicates.c[side] == into,
            )
            .values({side: restored}),
        )
    if closed:
        count += await rows_affected(
            session,
            update(possible_duplicates)
            .where(
                possible_duplicates.c.id.in_(closed),
                possible_duplicates.c.status == "rejected",
                possible_duplicates.c.decided_by == CLOSED_BY_MERGE,
            )
            .values(status="open", decided_by=None, decided_at=None),
        )
    return count


async def duplicates_of(session: AsyncSession, resident_id: str) -> Sequence[Row]:
    """Possible duplicates this resident is on either side of."""
    return await fetch_all(
        session,
        select(
            possible_duplicates.c.id,
            possible_duplicates.c.candidate_id,
            possible_duplicates.c.reason,
            possible_duplicates.c.status,
            possible_duplicates.c.score,
            possible_duplicates.c.contributions,
        ).where(
            or_(
                possible_duplicates.c.resident_id == resident_id,
                possible_duplicates.c.candidate_id == resident_id,
            )
        ),
    )


async def unmerged_residents(
    session: AsyncSession, principal: Principal, resident_ids: list[str]
) -> Sequence[Row]:
    return await fetch_all(
        session,
        select(residents.c.id, residents.c.council).where(
            residents.c.id.in_(resident_ids),
            residents.c.merged_into.is_(None),
            council_scope(principal, residents.c.council),
        ),
    )


async def residents_with_open_case(session: AsyncSession, resident_ids: list[str]) -> set[str]:
    rows = await fetch_all(
        session,
        select(cases.c.resident_id).where(
            cases.c.resident_id.in_(resident_ids),
            cases.c.status.in_([s.value for s in OPEN_STATUSES]),
        ),
    )
    return {row["resident_id"] for row in rows}


async def move_records(
    session: AsyncSession, *, merged: str, into: str, now: datetime
) -> dict[str, list[str]]:
    """Move the merged resident's cases and referrals to the survivor and point the merged
    record at it; the ids of the cases and of the referrals moved."""
    moved = await fetch_all(
        session,
        update(cases)
        .where(cases.c.resident_id == merged)
        .values(resident_id=into, updated_at=now)
        .returning(cases.c.id),
    )
    moved_referrals = await fetch_all(
        session,
        update(referrals)
        .where(referrals.c.resident_id == merged)
        .values(resident_id=into)
        .returning(referrals.c.id),
    )
    await session.execute(
        update(residents).where(residents.c.id == merged).values(merged_into=into, updated_at=now)
    )
    return {
        "cases": [row["id"] for row in moved],
        "referrals": [row["id"] for row in moved_referrals],
    }


async def move_records_back(
    session: AsyncSession,
    *,
    restored: str,
    into: str,
    case_ids: Sequence[str],
    referral_ids: Sequence[str],
    now: datetime,
) -> dict[str, int]:
    """Undo ``move_records``: the cases and referrals it moved (those still on the survivor)
    are the restored resident's again, and the record (if it still points at the survivor)
    no longer does. How many cases and residents moved back, for the caller to check."""
    moved_cases = 0
    if case_ids:
        moved_cases = await rows_affected(
            session,
            update(cases)
            .where(cases.c.id.in_(case_ids), cases.c.resident_id == into)
            .values(resident_id=restored, updated_at=now),
        )
    mine = [
        *([referrals.c.id.in_(referral_ids)] if referral_ids else []),
        *([referrals.c.case_id.in_(case_ids)] if case_ids else []),
    ]
    if mine:
        await session.execute(
            update(referrals)
            .where(referrals.c.resident_id == into, or_(*mine))
            .values(resident_id=restored)
        )
    moved_residents = await rows_affected(
        session,
        update(residents)
        .where(residents.c.id == restored, residents.c.merged_into == into)
        .values(merged_into=None, updated_at=now),
    )
    return {"cases": moved_cases, "residents": moved_residents}


async def reject_confirmed_between(
    session: AsyncSession, a: str, b: str, *, decided_by: str, now: datetime
) -> list[str]:
    """A merge undone: the entries the merge confirmed between these two are rejected (two
    people after all); their ids."""
    rows = await fetch_all(
        session,
        update(possible_duplicates)
        .where(possible_duplicates.c.status == "confirmed", _pair(a, b))
        .values(status="rejected", decided_by=decided_by, decided_at=now)
        .returning(possible_duplicates.c.id),
    )
    return [row["id"] for row in rows]
