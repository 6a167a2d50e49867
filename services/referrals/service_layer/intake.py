"""Intake: a referral arrives. In one transaction, match or create the resident, open a
case (or attach to the resident's open one), store the referral and its consent, and write
the events; a retried request with the same idempotency key gets the first answer. Also
the referrer's view of what it referred."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from services.referrals.adapters import Row
from services.referrals.adapters import cases as cases_db
from services.referrals.adapters import referrals as referrals_db
from services.referrals.domain.lifecycle import WITH_PARTNERS_STATUSES, CaseStatus
from services.referrals.domain.sharing import (
    Article9Condition,
    BasisClaim,
    ConsentRecord,
    SharingDecision,
    article9_condition_for,
    basis_problems,
    may_share_with_partners,
    priority,
)
from services.referrals.service_layer import audit
from services.referrals.service_layer import needs as case_needs
from services.referrals.service_layer.callers import actor_of
from services.referrals.service_layer.cases import (
    ConsentGiven,
    add_consent,
    open_case,
    route_if_allowed,
    send_packet,
    sharing_decision,
)
from services.referrals.service_layer.residents import (
    ResidentFacts,
    hold_for_duplicates,
    keys_from,
    keys_of,
    match_or_create_resident,
)
from services.referrals.service_layer.unit_of_work import ReferralsUnitOfWork
from services.referrals.settings import ReferralsSettings
from shared.auth import OrganisationKind, Principal
from shared.errors import Invalid, NotFound
from shared.events.payloads import ReferralReceived
from shared.identity import age_in_years, has_letters
from shared.vocabulary import Circumstance, LawfulBasis, Need, RiskLevel

# -- commands and results ----------------------------------------------------------------


@dataclass(frozen=True)
class NewReferral:
    """What a referrer tells us: who, where, what they need, how urgent, and on what basis
    it may be shared (with the consent, when consent is the basis)."""

    resident: ResidentFacts
    needs: tuple[Need, ...]
    urgency: RiskLevel
    lawful_basis: LawfulBasis
    council: str | None = None
    circumstances: tuple[Circumstance, ...] = ()
    circumstances_text: str | None = None
    consent: ConsentGiven | None = None
    data_sharing_agreement: str | None = None
    # A basis other than consent: why it applies and who decided; for health needs, the
    # Article 9 condition (domain/sharing.py).
    justification: str | None = None
    decided_by: str | None = None
    article9_condition: Article9Condition | None = None

    @property
    def claim(self) -> BasisClaim:
        return BasisClaim(
            self.lawful_basis, self.justification, self.decided_by, self.article9_condition
        )


@dataclass(frozen=True)
class IdempotencyKey:
    """A retried request carries the same key and the same fingerprint of its body."""

    key: str
    request_hash: str


class ReferralReceipt(BaseModel):
    """The answer to a referral, kept as it was first given for replays.

    A council learns the case, its status, whether the resident already had an open case and
    how many possible duplicates were recorded. A voluntary partner gets the same answer
    whether its referral opened a case or joined one: the referral's id, and whether what it
    sent (its own lawful basis and consent) allows sharing — nothing of the council's
    records (the other fields are None)."""

    referral_id: str
    sharing: SharingDecision
    case_id: str | None = None
    case_status: str | None = None
    attached_to_open_case: bool | None = None
    possible_duplicates: int | None = None
    replayed: bool = False

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, exclude={"replayed"})


@dataclass(frozen=True)
class ReferralProgress:
    referral_id: str
    case_status: str
    needs: list[Need]
    referred_at: datetime
    timeline: list[ProgressEntry]


@dataclass(frozen=True)
class ProgressEntry:
    at: datetime
    action: str
    status: str | None


class _AnsweredMeanwhile(Exception):
    """Another request with the same key committed its answer while this one ran."""


# -- use cases ---------------------------------------------------------------------------


def council_for(referral: NewReferral, principal: Principal, settings: ReferralsSettings) -> str:
    """Who may refer into which council: council staff into their own council only (the
    default when none is named); a voluntary partner into any council the deployment serves
    (it must name it, unless only one is served)."""
    council = referral.council
    if principal.kind is OrganisationKind.COUNCIL:
        if council is not None and council != principal.organisation:
            raise Invalid(
                "council",
                f"a council refers residents of its own council only ({principal.organisation})",
            )
        council = principal.organisation
    if council is None and len(settings.councils) == 1:
        council = settings.councils[0]
    if council is None:
        raise Invalid("council", "required: the GSS code of the council the resident lives in")
    if council not in settings.councils:
        raise Invalid("council", f"{council} is not a council this deployment serves")
    return council


def _check_names(resident: ResidentFacts) -> None:
    """Residents are matched on their names: a name with no letter in any script would match
    every other such name."""
    for field, name in (("given_name", resident.given_name), ("family_name", resident.family_name)):
        if not has_letters(name):
            raise Invalid(f"resident.{field}", "must contain a letter")


async def receive_referral(
    uow: ReferralsUnitOfWork,
    principal: Principal,
    referral: NewReferral,
    idempotency: IdempotencyKey | None = None,
) -> ReferralReceipt:
    _check_names(referral.resident)
    if problems := basis_problems(referral.claim, referral.needs, prefix="sharing."):
        raise Invalid.of(problems)
    council = council_for(referral, principal, uow.settings)
    try:
        async with uow.transaction():
            if idempotency and (replay := await _replay(uow, principal, idempotency)):
                return replay
            receipt = await _receive(uow, principal, referral, council)
            if idempotency and not await referrals_db.store_answer(
                uow.session,
                principal.organisation,
                idempotency.key,
                idempotency.request_hash,
                receipt.stored(),
            ):
                raise _AnsweredMeanwhile
    except _AnsweredMeanwhile:
        # The same key raced in from a retry: answer as the first request did.
        assert idempotency is not None
        async with uow.transaction():
            replay = await _replay(uow, principal, idempotency)
        if replay is None:
            raise RuntimeError("an idempotency key was taken but holds no answer") from None
        return replay
    return receipt


async def _replay(
    uow: ReferralsUnitOfWork, principal: Principal, idempotency: IdempotencyKey
) -> ReferralReceipt | None:
    stored = await referrals_db.stored_answer(uow.session, principal.organisation, idempotency.key)
    if stored is None:
        return None
    if stored["request_hash"] != idempotency.request_hash:
        raise Invalid("Idempotency-Key", "already used for a different request")
    replay = ReferralReceipt.model_validate({**stored["response"], "replayed": True})
    return _as_seen_by(principal, replay)


async def _receive(
    uow: ReferralsUnitOfWork, principal: Principal, referral: NewReferral, council: str
) -> ReferralReceipt:
    session, now, referrer = uow.session, uow.now(), actor_of(principal)
    match = await match_or_create_resident(uow, council, referral.resident, now=now)
    resident_id, duplicates = match.resident_id, len(match.duplicates)
    needs = [n.value for n in referral.needs]
    circumstances = [c.value for c in referral.circumstances]
    basis = referral.lawful_basis
    if match.created is not None:
        keys = keys_from(uow, council, match.created)
        case = None  # a resident created just now has no case to find
    else:
        keys = await keys_of(uow, resident_id)
        case = await cases_db.lock_open_case_of(session, resident_id, council)
    attached = case is not None
    earlier_needs: list[str] = []
    if case is None:
        case = await open_case(
            uow,
            resident_id=resident_id,
            council=council,
            origin="referral",
            status=CaseStatus.RECEIVED,
            keys=keys,
            actor=referrer,
            now=now,
            values={
                "priority": priority(referral.urgency, None),
                "urgency": referral.urgency.value,
                "needs": needs,
                "circumstances": circumstances,
                "lawful_basis": basis.value,
                "data_sharing_agreement": referral.data_sharing_agreement,
                "basis_justification": referral.justification,
                "basis_decided_by": referral.decided_by,
                "article9_condition": _condition(article9_condition_for(referral.claim, needs)),
            },
        )
        if match.duplicates:
            # No double help: a need already routed for the possible duplicate waits.
            await hold_for_duplicates(uow, case, match.duplicates, actor=referrer, now=now)
    else:
        earlier_needs = list(case["needs"])
        case = await _attach(uow, case, referral, now=now)
        # Its new needs start where the case is (one it had before, withdrawn, starts again).
        await case_needs.current(uow, case, now=now, joined=set(case["needs"]) - set(earlier_needs))
    if referral.consent is not None:
        await add_consent(uow, case["id"], referral.consent, recorded_by=referrer)
    referral_id = uow.new_id()
    await referrals_db.insert_referral(
        session,
        id=referral_id,
        case_id=case["id"],
        resident_id=resident_id,
        referrer_org=referrer.organisation,
        referrer_kind=principal.kind.value,
        referrer_subject=referrer.subject,
        needs=needs,
        circumstances=circumstances,
        circumstances_text=referral.circumstances_text,
        urgency=referral.urgency.value,
        # The use case's clock, not the database's: the referrer's view of the case starts
        # here, and must include what this very transaction writes to the timeline.
        created_at=now,
    )
    await cases_db.add_timeline(
        session,
        case["id"],
        referrer,
        "referral received",
        now=now,
        detail="needs: " + ", ".join(needs),
        referrer_visible=True,
    )
    await uow.outbox.add(
        session,
        ReferralReceived(
            case_id=case["id"],
            referral_id=referral_id,
            council=council,
            resident_keys=keys,
            age_years=age_in_years(referral.resident.date_of_birth, now.date()),
            needs=list(referral.needs),
            circumstances=list(referral.circumstances),
            urgency=referral.urgency,
            received_at=now,
            referrer_kind=principal.kind.value,
        ),
        subject=case["id"],
    )
    if attached and case["status"] == CaseStatus.AWAITING_CONSENT:
        case = await route_if_allowed(uow, case, actor=referrer, now=now)
    elif (
        attached
        and CaseStatus(case["status"]) in WITH_PARTNERS_STATUSES
        and set(needs) - set(earlier_needs)
    ):
        # The case is with partners already (an unroutable one too): its new needs are
        # routed.
        await send_packet(uow, case, now=now)
    if principal.kind is OrganisationKind.VCS:
        return ReferralReceipt(referral_id=referral_id, sharing=_own_sharing(referral, now))
    return ReferralReceipt(
        referral_id=referral_id,
        case_id=case["id"],
        case_status=case["status"],
        # A case opened just now has this referral's basis and consent only.
        sharing=await sharing_decision(uow, case, now=now)
        if attached
        else _own_sharing(referral, now),
        attached_to_open_case=attached,
        possible_duplicates=duplicates,
    )


def _own_sharing(referral: NewReferral, now: datetime) -> SharingDecision:
    """What the referral itself allows: its lawful basis and the consent it carries, not the
    case it may have joined (whose basis would tell of earlier referrals)."""
    consent = referral.consent
    record = (
        None
        if consent is None
        else ConsentRecord(
            given_at=consent.given_at,
            expires_at=consent.expires_at,
            withdrawn_at=None,
            partner_kinds=tuple(kind.value for kind in consent.partner_kinds),
        )
    )
    return may_share_with_partners(
        referral.lawful_basis,
        record,
        data_sharing_agreement=referral.data_sharing_agreement,
        now=now,
    )


def _as_seen_by(principal: Principal, receipt: ReferralReceipt) -> ReferralReceipt:
    """A replayed answer in the shape its caller may see (answers stored before partners'
    receipts lost the case fields are trimmed too)."""
    if principal.kind is not OrganisationKind.VCS:
        return receipt
    return ReferralReceipt(
        referral_id=receipt.referral_id, sharing=receipt.sharing, replayed=receipt.replayed
    )


async def _attach(
    uow: ReferralsUnitOfWork, case: Row, referral: NewReferral, *, now: datetime
) -> Row:
    """The referral joins the resident's open case: needs and circumstances add up, the
    higher urgency wins, and consent given now covers sharing."""
    urgency = max(RiskLevel(case["urgency"]), referral.urgency, key=lambda lvl: lvl.rank)
    risk = RiskLevel(case["risk_level"]) if case["risk_level"] else None
    merged: dict[str, Any] = {
        "needs": list(dict.fromkeys([*case["needs"], *(n.value for n in referral.needs)])),
        "circumstances": list(
            dict.fromkeys([*case["circumstances"], *(c.value for c in referral.circumstances)])
        ),
        "urgency": urgency.value,
        "priority": priority(urgency, risk),
        "updated_at": now,
    }
    if referral.lawful_basis is LawfulBasis.CONSENT and case["lawful_basis"] != LawfulBasis.CONSENT:
        merged["lawful_basis"] = referral.lawful_basis.value
        merged["basis_justification"] = merged["basis_decided_by"] = None
    if case["article9_condition"] is None:
        # Health needs arriving now carry the condition this referral gave for them.
        condition = article9_condition_for(referral.claim, merged["needs"])
        merged["article9_condition"] = _condition(condition)
    return await cases_db.update_case(uow.session, case["id"], **merged)


def _condition(condition: Article9Condition | None) -> str | None:
    return condition.value if condition else None


async def referral_progress(
    uow: ReferralsUnitOfWork, principal: Principal, referral_id: str
) -> ReferralProgress:
    """A referral's progress, for whoever made it (and the case's council, and operators).
    Progress only: who else referred, and why the status changed, stay with the council. A
    referrer outside the case's council (a voluntary partner) sees the progress since its
    referral and nothing before it: not the case's opening, nor its status then."""
    try:
        referral_id = str(uuid.UUID(referral_id))
    except ValueError:
        raise NotFound("referral not found") from None
    async with uow.snapshot() as session:
        row = await referrals_db.visible_referral(session, principal, referral_id)
        if row is None:
            raise NotFound("referral not found")
        sees_the_case = principal.kind is OrganisationKind.OPERATOR or (
            principal.kind is OrganisationKind.COUNCIL
            and principal.organisation == row["case_council"]
        )
        entries = await referrals_db.progress_for_referrer(session, row, with_opening=sees_the_case)
        await audit.audited(
            uow,
            principal,
            "referral_progress",
            [audit.NEEDS, audit.PROGRESS],
            [audit.Seen(row["case_council"], row["resident_id"], row["case_id"])],
            purpose="following a referral",
        )
    if sees_the_case:
        status = row["case_status"]
    else:
        # The referral's own progress: received, then each change since. Not the status of
        # a case it may have joined, which would tell that there was one.
        changes = [e["status_to"] for e in entries if e["status_to"] is not None]
        status = changes[-1] if changes else CaseStatus.RECEIVED.value
    return ReferralProgress(
        referral_id=row["id"],
        case_status=status,
        needs=[Need(n) for n in row["needs"]],
        referred_at=row["created_at"],
        timeline=[
            ProgressEntry(at=e["at"], action=e["action"], status=e["status_to"]) for e in entries
        ],
    )
