"""The resident index, as intake and outreach use it inside their transaction: match a
referral or a flag to a resident we know (``domain/matching.py``) or create one, recording
the possible duplicates a caseworker settles; and the pseudonymous keys of a resident."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime

from services.referrals.adapters import Row
from services.referrals.adapters import residents as residents_db
from services.referrals.domain.matching import Identity, blocking_keys, find_matches
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from shared.identity import normalise_name, resident_keys


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
class RecordedDuplicate:
    id: str
    candidate_id: str


@dataclass(frozen=True)
class ResidentMatch:
    """The resident a referral is about; the possible duplicates recorded for review when
    the resident is new."""

    resident_id: str
    duplicates: list[RecordedDuplicate] = field(default_factory=list)
    # A resident created just now: what was stored (its keys are made from it, not read
    # back), and no case of its own yet. None for a resident found.
    created: Identity | None = None


def identity_of(row: Row) -> Identity:
    return Identity(
        row["id"],
        row["given_name"],
        row["family_name"],
        row["date_of_birth"],
        row["postcode"],
        row["uprn"],
        row["phone"],
        row["email"],
    )


async def match_or_create_resident(
    uow: ReferralsUnitOfWork, council: str, facts: ResidentFacts, *, now: datetime
) -> ResidentMatch:
    """A certain match is the resident; otherwise a new resident, with each possible match
    recorded (score and each field's contribution) for a caseworker."""
    session = uow.session
    new = Identity(
        None,
        facts.given_name,
        facts.family_name,
        facts.date_of_birth,
        facts.postcode,
        facts.uprn,
        facts.phone,
        facts.email,
    )
    await residents_db.lock_family(session, council, new.family)
    known = await residents_db.match_candidates(session, council, blocking_keys(new))
    certain, possible = find_matches(new, [identity_of(row) for row in known])
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
    if certain is not None or possible:
        # The residents matched are locked before they are used, as an erasure locks them
        # first: one being erased at this moment is waited for and then, gone, not written
        # to; this referral makes the person anew, as one sent after the erasure would.
        still_here = await residents_db.lock_residents(
            session, [m.resident_id for m in (certain, *possible) if m is not None]
        )
        if certain is not None and certain.resident_id not in still_here:
            certain = None
        possible = [m for m in possible if m.resident_id in still_here]
    if certain is not None:
        # Keep the most recent contact details a referrer gave.
        await residents_db.update_contact(session, certain.resident_id, contact, now=now)
        return ResidentMatch(certain.resident_id)
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
    recorded = []
    for match in possible:
        duplicate = RecordedDuplicate(uow.new_id(), match.resident_id)
        await residents_db.insert_possible_duplicate(
            session,
            id=duplicate.id,
            council=council,
            resident_id=resident_id,
            candidate_id=match.resident_id,
            reason=match.reason,
            score=match.score,
            contributions=[asdict(c) for c in match.contributions],
        )
        recorded.append(duplicate)
    return ResidentMatch(resident_id, recorded, created=new)


async def keys_of(uow: ReferralsUnitOfWork, resident_id: str) -> list[str]:
    """The pseudonymous keys the risk service knows this resident by."""
    row = await residents_db.resident(uow.session, resident_id)
    return keys_from(uow, row["council"], identity_of(row))


def keys_from(uow: ReferralsUnitOfWork, council: str, identity: Identity) -> list[str]:
    """The keys of a resident of ``council`` with this identity."""
    return resident_keys(
        uow.settings.resident_key_secret.get_secret_value(),
        council=council,
        given_name=identity.given_name,
        family_name=identity.family_name,
        date_of_birth=identity.date_of_birth,
        postcode=identity.postcode,
        uprn=identity.uprn,
    )
