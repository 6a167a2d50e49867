"""Receiving a referral: find or create the resident, find or open the case, store the
referral and its consent, and write the events, all in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals.adapters.tables import (
    cases,
    consents,
    possible_duplicates,
    referrals,
    residents,
)
from services.referrals.api.schemas import ConsentIn, ReferralCreate
from services.referrals.cases import (
    ROUTED,
    Actor,
    add_timeline,
    lock_case,
    new_id,
    route_if_allowed,
    send_packet,
    sharing_decision,
)
from services.referrals.domain.lifecycle import OPEN_STATUSES, CaseStatus
from services.referrals.domain.matching import Identity, find_matches
from services.referrals.domain.sharing import (
    SharingDecision,
    priority,
)
from shared.events.payloads import CaseOpened, ReferralReceived
from shared.identity import age_in_years, normalise_name, resident_keys
from shared.messaging.outbox import Outbox
from shared.vocabulary import LawfulBasis, RiskLevel


@dataclass(frozen=True)
class IntakeResult:
    referral_id: str
    case: RowMapping
    attached_to_open_case: bool
    possible_duplicates: int
    sharing: SharingDecision


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


def _identity(row: RowMapping) -> Identity:
    return Identity(
        row["id"],
        row["given_name"],
        row["family_name"],
        row["date_of_birth"],
        row["postcode"],
        row["uprn"],
    )


async def find_or_create_resident(
    session: AsyncSession, council: str, facts: ResidentFacts, *, now: datetime
) -> tuple[str, int]:
    """The resident's id, and how many uncertain matches were recorded for review."""
    new = Identity(
        None, facts.given_name, facts.family_name, facts.date_of_birth, facts.postcode, facts.uprn
    )
    # Two referrals for the same new person at once must not create two residents.
    await session.execute(
        select(func.pg_advisory_xact_lock(func.hashtext(f"resident|{council}|{new.family}")))
    )
    known_rows = (
        (
            await session.execute(
                select(residents).where(
                    residents.c.council == council,
                    residents.c.merged_into.is_(None),
                    or_(
                        residents.c.norm_family == new.family,
                        residents.c.uprn == facts.uprn if facts.uprn else False,
                    ),
                )
            )
        )
        .mappings()
        .all()
    )
    certain, uncertain = find_matches(new, [_identity(row) for row in known_rows])
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
        await session.execute(
            update(residents)
            .where(residents.c.id == certain.resident_id)
            .values(**contact, updated_at=now)
        )
        return certain.resident_id, 0
    resident_id = new_id()
    await session.execute(
        insert(residents).values(
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
    )
    for match in uncertain:
        await session.execute(
            insert(possible_duplicates).values(
                id=new_id(),
                council=council,
                resident_id=resident_id,
                candidate_id=match.resident_id,
                reason=match.reason,
                status="open",
            )
        )
    return resident_id, len(uncertain)


async def open_case_of(session: AsyncSession, resident_id: str, council: str) -> RowMapping | None:
    row = (
        await session.execute(
            select(cases.c.id).where(
                cases.c.resident_id == resident_id,
                cases.c.council == council,
                cases.c.status.in_([s.value for s in OPEN_STATUSES]),
            )
        )
    ).first()
    return await lock_case(session, row.id) if row else None


async def keys_of(session: AsyncSession, resident_id: str, secret: str) -> list[str]:
    row = (
        (await session.execute(select(residents).where(residents.c.id == resident_id)))
        .mappings()
        .one()
    )
    return resident_keys(
        secret,
        given_name=row["given_name"],
        family_name=row["family_name"],
        date_of_birth=row["date_of_birth"],
        postcode=row["postcode"],
        uprn=row["uprn"],
    )


async def open_case(
    session: AsyncSession,
    outbox: Outbox,
    *,
    resident_id: str,
    council: str,
    origin: str,
    status: CaseStatus,
    values: dict[str, Any],
    keys: list[str],
    actor: Actor,
    now: datetime,
) -> RowMapping:
    case_id = new_id()
    case = (
        (
            await session.execute(
                insert(cases)
                .values(
                    id=case_id,
                    council=council,
                    resident_id=resident_id,
                    origin=origin,
                    status=status.value,
                    **{f"{status.value}_at": now},
                    **values,
                )
                .returning(cases)
            )
        )
        .mappings()
        .one()
    )
    await add_timeline(
        session,
        case_id,
        actor,
        f"case opened ({origin})",
        now=now,
        status_to=status.value,
        referrer_visible=True,
    )
    await outbox.add(
        session,
        CaseOpened(
            case_id=case_id, council=council, origin=origin, resident_keys=keys, opened_at=now
        ),
        subject=case_id,
    )
    return case


async def add_consent(
    session: AsyncSession, case_id: str, consent: ConsentIn, *, recorded_by: str
) -> None:
    await session.execute(
        insert(consents).values(
            id=new_id(),
            case_id=case_id,
            given_by=consent.given_by,
            method=consent.method,
            given_at=consent.given_at,
            partner_kinds=[k.value for k in consent.partner_kinds],
            purpose=consent.purpose,
            expires_at=consent.expires_at,
            recorded_by=recorded_by,
        )
    )


async def receive_referral(
    session: AsyncSession,
    outbox: Outbox,
    request: ReferralCreate,
    *,
    council: str,
    referrer: Actor,
    referrer_kind: str,
    key_secret: str,
    now: datetime,
) -> IntakeResult:
    person = request.resident
    facts = ResidentFacts(
        given_name=person.given_name,
        family_name=person.family_name,
        date_of_birth=person.date_of_birth,
        postcode=person.address.postcode if person.address else None,
        uprn=person.address.uprn if person.address else None,
        address=person.address.line if person.address else None,
        phone=person.contact.phone,
        email=person.contact.email,
        preferred_contact=person.contact.preferred.value,
        preferred_language=person.preferred_language,
        interpreter_needed=person.interpreter_needed,
        accessibility_needs=person.accessibility_needs,
    )
    resident_id, duplicates = await find_or_create_resident(session, council, facts, now=now)
    needs = [n.value for n in request.needs]
    circumstances = [c.value for c in request.circumstances]
    basis = request.sharing.lawful_basis
    keys = await keys_of(session, resident_id, key_secret)
    case = await open_case_of(session, resident_id, council)
    attached = case is not None
    earlier_needs: list[str] = []
    if case is None:
        case = await open_case(
            session,
            outbox,
            resident_id=resident_id,
            council=council,
            origin="referral",
            status=CaseStatus.RECEIVED,
            keys=keys,
            actor=referrer,
            now=now,
            values={
                "priority": priority(request.urgency, None),
                "urgency": request.urgency.value,
                "needs": needs,
                "circumstances": circumstances,
                "lawful_basis": basis.value,
                "data_sharing_agreement": request.sharing.data_sharing_agreement,
            },
        )
    else:
        earlier_needs = list(case["needs"])
        urgency = max(RiskLevel(case["urgency"]), request.urgency, key=lambda lvl: lvl.rank)
        risk = RiskLevel(case["risk_level"]) if case["risk_level"] else None
        merged: dict[str, Any] = {
            "needs": list(dict.fromkeys([*case["needs"], *needs])),
            "circumstances": list(dict.fromkeys([*case["circumstances"], *circumstances])),
            "urgency": urgency.value,
            "priority": priority(urgency, risk),
            "updated_at": now,
        }
        if basis is LawfulBasis.CONSENT and case["lawful_basis"] != LawfulBasis.CONSENT:
            merged["lawful_basis"] = basis.value  # the resident's consent now covers sharing
        case = (
            (
                await session.execute(
                    update(cases).where(cases.c.id == case["id"]).values(**merged).returning(cases)
                )
            )
            .mappings()
            .one()
        )
    if request.sharing.consent is not None:
        await add_consent(
            session,
            case["id"],
            request.sharing.consent,
            recorded_by=f"{referrer.subject} ({referrer.organisation})",
        )
    referral_id = new_id()
    await session.execute(
        insert(referrals).values(
            id=referral_id,
            case_id=case["id"],
            resident_id=resident_id,
            referrer_org=referrer.organisation,
            referrer_kind=referrer_kind,
            referrer_subject=referrer.subject,
            needs=needs,
            circumstances=circumstances,
            circumstances_text=request.circumstances_text,
            urgency=request.urgency.value,
        )
    )
    await add_timeline(
        session,
        case["id"],
        referrer,
        "referral received",
        now=now,
        detail="needs: " + ", ".join(needs),
        referrer_visible=True,
    )
    await outbox.add(
        session,
        ReferralReceived(
            case_id=case["id"],
            referral_id=referral_id,
            council=council,
            resident_keys=keys,
            age_years=age_in_years(person.date_of_birth, now.date()),
            needs=request.needs,
            circumstances=request.circumstances,
            urgency=request.urgency,
            received_at=now,
        ),
        subject=case["id"],
    )
    if attached and case["status"] == CaseStatus.AWAITING_CONSENT:
        case = await route_if_allowed(session, outbox, case, actor=referrer, now=now)
    elif attached and CaseStatus(case["status"]) in ROUTED and set(needs) - set(earlier_needs):
        # The case is with partners already: its new needs are routed too.
        await send_packet(session, outbox, case, now=now)
    sharing = await sharing_decision(session, case, now=now)
    return IntakeResult(referral_id, case, attached, duplicates, sharing)
