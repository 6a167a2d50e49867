"""Assessments: of a case when its referral arrives, of residents when new signals arrive
(flagged to their council when they cross the flag level), and why each one came out as it
did, in plain English.

Identifiers are used to derive keys and, for a resident who is flagged, sealed into the flag
for the referrals service; they are never written to this service's tables. A referral whose
resident has no key (no date of birth, postcode or UPRN) makes no profile: its case is
assessed on what the referral says, and its reasons say that no signal could be matched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from services.risk.adapters import assessments as stored_assessments
from services.risk.adapters import bulk
from services.risk.adapters import cases as stored_cases
from services.risk.adapters import outcomes as stored_outcomes
from services.risk.adapters import signals as stored_signals
from services.risk.adapters.assessments import NewAssessment, StoredAssessment
from services.risk.adapters.profiles import lock_council, resolve_profiles
from services.risk.domain.flags import LastFlag, should_flag
from services.risk.domain.outcomes import (
    COUNTS,
    Help,
    SignalStanding,
    after_help,
    describe,
    is_returning,
)
from services.risk.domain.rules import (
    NOTES,
    ReferralFacts,
    Result,
    Ruleset,
    SignalFact,
    assess_case,
)
from services.risk.domain.transparency import explain
from services.risk.service_layer import audit
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared.auth import Principal
from shared.errors import NotFound
from shared.events.payloads import Reason, ResidentFlagged, RiskAssessed
from shared.identity import seal_identity
from shared.vocabulary import Need, RiskLevel

# -- cases, as the referrals service opens and closes them ------------------------------------


@dataclass(frozen=True)
class ReferralToAssess:
    case_id: str
    council: str
    resident_keys: list[str]
    referral: ReferralFacts
    received_at: datetime


async def assess_referral(uow: RiskUnitOfWork, command: ReferralToAssess) -> Result:
    """A referral arrived: record its case (open) and assess it at once, with whatever
    signals are held for the resident (none, for a resident with no key), by the ruleset in
    force for its council."""
    async with uow.transaction():
        await _open_case(
            uow,
            case_id=command.case_id,
            council=command.council,
            keys=command.resident_keys,
            referral=command.referral,
        )
        ruleset = await uow.ruleset_for(command.council)
        return await _assess_case(uow, command.case_id, ruleset=ruleset, now=command.received_at)


async def record_case_opened(
    uow: RiskUnitOfWork, *, case_id: str, council: str, resident_keys: list[str]
) -> None:
    """A case was opened (from a referral or a flag): new signals now re-assess the case
    instead of flagging the resident."""
    async with uow.transaction():
        await _open_case(uow, case_id=case_id, council=council, keys=resident_keys, referral=None)


async def record_case_closed(uow: RiskUnitOfWork, case_id: str) -> None:
    async with uow.transaction():
        await stored_cases.close(uow.session, case_id)


async def _open_case(
    uow: RiskUnitOfWork,
    *,
    case_id: str,
    council: str,
    keys: list[str],
    referral: ReferralFacts | None,
) -> str | None:
    """The case, open, on the resident's profile; no profile when the resident has no key
    (one could never be found again, and would hold nothing)."""
    profile_id: str | None = None
    if keys:
        await lock_council(uow.session, council)
        (profile_id,) = await resolve_profiles(uow.session, council, [keys], new_id=uow.new_id)
    await stored_cases.upsert_open(
        uow.session,
        case_id=case_id,
        profile_id=profile_id,
        council=council,
        referral=referral.to_json() if referral is not None else None,
    )
    return profile_id


async def _assess_case(
    uow: RiskUnitOfWork, case_id: str, *, ruleset: Ruleset, now: datetime
) -> Result:
    case = await stored_cases.get(uow.session, case_id)
    if case is None:
        raise LookupError(f"case {case_id} is not known here")
    held = None  # no key, no profile: no signal can be matched
    if case.profile_id is not None:
        held = (await stored_signals.facts_of(uow.session, [case.profile_id]))[case.profile_id]
    result = assess_case(ruleset, held, case.referral, today=now.date())
    await _record(uow, case.profile_id, case_id, result, ruleset, flagged=False, now=now)
    await uow.outbox.add(
        uow.session,
        RiskAssessed(
            case_id=case_id,
            level=result.level,
            score=result.score,
            reasons=_reasons(result),
            suggested_needs=list(result.suggested_needs),
            ruleset_version=ruleset.version,
            assessed_at=now,
        ),
        subject=case_id,
    )
    return result


# -- residents, after new signals -------------------------------------------------------------


class ResidentSeen(NamedTuple):
    """Who a profile's latest signal in a batch named: held in memory for the transaction
    only, to seal into a flag."""

    resident_key: str  # the strongest
    identity: dict[str, Any]  # the identifiers, as JSON (``ResidentIdentifiers``)


@dataclass
class Reassessed:
    flagged: int = 0
    cases_assessed: int = 0


async def assess_residents(
    uow: RiskUnitOfWork,
    council: str,
    seen: Mapping[str, ResidentSeen],
    *,
    ruleset: Ruleset,
    now: datetime,
    first_seen: Mapping[str, list[SignalFact]] | None = None,
) -> Reassessed:
    """Residents (profiles) of one council got new signals: re-assess each open case they
    have, or else flag them at or above the flag level, outside the cooling-off period, by
    ``ruleset``: the one in force for that council.
    A step of the caller's transaction (storing the signals). What the rules need about
    everyone affected is read at once, and the flags are written at once (their assessments
    in one statement, their events in one more). ``first_seen``: profiles the caller made in
    this transaction, with every signal they hold (nothing else can be held about them: no
    case, flag or help), so nothing about them is read back."""
    outcome = Reassessed()
    affected = list(seen)
    if not affected:
        return outcome
    first_seen = first_seen or {}
    known = [profile for profile in affected if profile not in first_seen]
    open_cases: dict[str, list[str]] = {}
    facts: dict[str, list[SignalFact]] = dict(first_seen)
    last_flags: dict[str, LastFlag] = {}
    helped: dict[str, Help] = {}
    if known:
        open_cases = await stored_cases.open_cases_of(uow.session, known)
        facts.update(await stored_signals.facts_of(uow.session, known))
        last_flags = await stored_assessments.last_flags(uow.session, known)
        helped = await stored_outcomes.help_of(uow.session, known)  # rarely anyone
    cooling_off = timedelta(days=uow.settings.flag_cooling_off_days)
    returning_window = timedelta(days=uow.settings.returning_window_days)
    today = now.date()
    flags: list[_Flag] = []
    for profile in affected:
        if open_cases.get(profile):
            for case_id in open_cases[profile]:
                await _assess_case(uow, case_id, ruleset=ruleset, now=now)
                outcome.cases_assessed += 1
            continue
        held = facts.get(profile, [])
        help_ = helped.get(profile)
        after = None
        if help_ is not None:  # only new or worse signals count since help arrived
            after = after_help(held, help_)
            held = after.counting
        if should_flag(
            ruleset.level_of_signals(held, today=today),
            flag_level=ruleset.spec.flag_level,
            last_flag=last_flags.get(profile),
            cooling_off=cooling_off,
            now=now,
        ):
            result = ruleset.evaluate_signals(held, today=today)
            flags.append(
                _Flag(
                    profile,
                    seen[profile],
                    result,
                    returning=is_returning(help_, now, returning_window),
                    helped_at=help_.helped_at if help_ is not None else None,
                    signals=describe(after.standing, today=today) if after else None,
                )
            )
    await _flag_all(uow, council, flags, ruleset=ruleset, now=now)
    outcome.flagged += len(flags)
    return outcome


@dataclass(frozen=True)
class _Flag:
    profile: str
    resident: ResidentSeen
    result: Result
    returning: bool = False  # flagged again soon after help arrived
    helped_at: datetime | None = None
    signals: list[dict[str, str]] | None = None  # their standing, once help arrived


async def _flag_all(
    uow: RiskUnitOfWork,
    council: str,
    flags: list[_Flag],
    *,
    ruleset: Ruleset,
    now: datetime,
) -> None:
    """Record each flag's assessment and write its event, all in two statements."""
    if not flags:
        return
    secret = uow.resident_key_secret
    assessed: list[NewAssessment] = []
    events: list[tuple[ResidentFlagged, str]] = []
    # Time-ordered ids: a feed's flags sit together at the end of the index on them.
    ids = iter(bulk.time_ordered_ids(len(flags)))
    for flag in flags:
        resident, result = flag.resident, flag.result
        reasons = _reasons(result)
        assessed.append(
            NewAssessment(
                id=next(ids),
                profile_id=flag.profile,
                case_id=None,
                level=result.level.value,
                score=result.score,
                # ``Reason.model_dump()``, built directly (a feed flags thousands).
                reasons=[{"rule_id": r.rule_id, "explanation": r.explanation} for r in reasons],
                suggested_needs=[n.value for n in result.suggested_needs],
                ruleset_version=ruleset.version,
                flagged=True,
                created_at=now,
                signals=flag.signals,
                returning_resident=flag.returning,
                helped_at=flag.helped_at,
            )
        )
        flagged = ResidentFlagged(
            resident_key=resident.resident_key,
            council=council,
            level=result.level,
            score=result.score,
            reasons=reasons,
            suggested_needs=list(result.suggested_needs),
            ruleset_version=ruleset.version,
            sealed_identity=seal_identity(secret, resident.identity),
            flagged_at=now,
            returning=flag.returning,
            helped_at=flag.helped_at if flag.returning else None,
        )
        events.append((flagged, resident.resident_key))
    await stored_assessments.record_all(uow.session, assessed)
    # Bulk work: a feed's flags wait behind interactive events, never in front of them. Every
    # flag is written here, so a resident key's events are all in the bulk lane, in order.
    await uow.outbox.add_all(uow.session, events, bulk=True)


def _reasons(result: Result) -> list[Reason]:
    """The rules that fired, then the notes (under ids no rule may take)."""
    return [Reason(rule_id=f.rule_id, explanation=f.explanation) for f in result.fired] + [
        Reason(rule_id=n.id, explanation=n.explanation) for n in result.notes
    ]


async def _record(
    uow: RiskUnitOfWork,
    profile_id: str | None,
    case_id: str | None,
    result: Result,
    ruleset: Ruleset,
    *,
    flagged: bool,
    now: datetime,
) -> None:
    await stored_assessments.record(
        uow.session,
        _assessment(uow, profile_id, case_id, result, ruleset, flagged=flagged, now=now),
    )


def _assessment(
    uow: RiskUnitOfWork,
    profile_id: str | None,
    case_id: str | None,
    result: Result,
    ruleset: Ruleset,
    *,
    flagged: bool,
    now: datetime,
    why: list[Reason] | None = None,
) -> NewAssessment:
    return NewAssessment(
        id=uow.new_id(),
        profile_id=profile_id,
        case_id=case_id,
        level=result.level.value,
        score=result.score,
        reasons=[r.model_dump() for r in (_reasons(result) if why is None else why)],
        suggested_needs=[n.value for n in result.suggested_needs],
        ruleset_version=ruleset.version,
        flagged=flagged,
        created_at=now,
    )


# -- why: the latest assessment, explained ----------------------------------------------------


@dataclass(frozen=True)
class SignalOnRecord:
    """A current signal behind a flag made after help arrived, and its standing: handled
    (help addressed it), the same as a handled one, worse than one, or new."""

    type: str
    observed_on: date
    standing: SignalStanding

    @property
    def counted(self) -> bool:
        return self.standing in COUNTS


@dataclass(frozen=True)
class Explained:
    level: RiskLevel
    score: int
    assessed_at: datetime
    ruleset_version: str
    reasons: list[Reason]
    suggested_needs: list[Need]
    explanation: str
    signals: list[SignalOnRecord] = field(default_factory=list)  # once help arrived
    returning: bool = False
    helped_at: datetime | None = None


def _explained(assessment: StoredAssessment) -> Explained:
    reasons = [Reason.model_validate(r) for r in assessment.reasons]
    signals = [
        SignalOnRecord(
            item["type"], date.fromisoformat(item["observed_on"]), SignalStanding(item["standing"])
        )
        for item in assessment.signals or ()
    ]
    explanation = explain(
        assessment.level,
        [r.explanation for r in reasons if r.rule_id not in NOTES],
        [r.explanation for r in reasons if r.rule_id in NOTES],
    )
    if assessment.helped_at is not None:
        explanation += "\n\n" + _after_help(assessment, signals)
    return Explained(
        level=assessment.level,
        score=assessment.score,
        assessed_at=assessment.created_at,
        ruleset_version=assessment.ruleset_version,
        reasons=reasons,
        suggested_needs=[Need(n) for n in assessment.suggested_needs],
        explanation=explanation,
        signals=signals,
        returning=assessment.returning_resident,
        helped_at=assessment.helped_at,
    )


def _after_help(assessment: StoredAssessment, signals: list[SignalOnRecord]) -> str:
    assert assessment.helped_at is not None
    when = assessment.helped_at.date().isoformat()
    set_aside = sum(1 for s in signals if not s.counted)
    items = "1 item" if set_aside == 1 else f"{set_aside} items"
    text = (
        f"Help was recorded on {when}. Only information that is new or worse since then "
        f"counted towards this: {items} that the help dealt with (or that said no more) did not."
    )
    if assessment.returning_resident:
        text += " This is soon after that help, so the council may want to check how it went."
    return text


async def explain_case(
    uow: RiskUnitOfWork, case_id: str, *, council: str | None, reader: Principal | None = None
) -> Explained:
    """Why a case has its level. ``council``: the caller's (None: an operator, any council).
    The read is audited, naming ``reader`` (None: a caller that names nobody)."""
    async with uow.snapshot():
        assessment = await stored_assessments.latest_of_case(uow.session, case_id, council=council)
        if assessment is None:
            raise NotFound("no assessment for this case")
        seen = await audit.seen_case(uow, case_id)
        await audit.audited(uow, audit.reading(reader, council), "explain_case", audit.WHY, [seen])
        return _explained(assessment)


async def explain_resident(
    uow: RiskUnitOfWork, resident_key: str, *, council: str | None, reader: Principal | None = None
) -> Explained:
    """Why a resident was flagged, by the key the flag carried. Audited, as ``explain_case``."""
    async with uow.snapshot():
        assessment = await stored_assessments.latest_of_resident(
            uow.session, resident_key, council=council
        )
        if assessment is None:
            raise NotFound("no assessment for this resident")
        seen = await audit.seen_resident(uow, resident_key)
        principal = audit.reading(reader, council)
        await audit.audited(uow, principal, "explain_resident", audit.WHY, [seen])
        return _explained(assessment)
