"""The loop closes: a partner's outcome for a resident's case, recorded on the resident's
profile. An outcome that helped marks the signals its need addresses as handled
(``domain/outcomes.py``): they no longer flag the resident; new or worse ones can."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.risk.adapters import cases as stored_cases
from services.risk.adapters import outcomes as stored_outcomes
from services.risk.adapters.profiles import lock_council
from services.risk.domain.outcomes import helped, types_addressed
from services.risk.service_layer.unit_of_work import RiskUnitOfWork
from shared.vocabulary import Need, Outcome


@dataclass(frozen=True)
class OutcomeToRecord:
    case_id: str
    need: Need
    outcome: Outcome
    recorded_at: datetime


@dataclass(frozen=True)
class OutcomeRecorded:
    recorded: bool  # False: the case is unknown here, has no profile, or held it already
    signals_handled: int = 0


async def record_outcome(uow: RiskUnitOfWork, command: OutcomeToRecord) -> OutcomeRecorded:
    """The outcome on the profile of the case's resident (the case links them: an outreach
    case is opened from a flag, a referral's case from its referral). If it helped, the
    signals current then that its need addresses are handled. Recorded once, however often
    it arrives."""
    async with uow.transaction():
        case = await stored_cases.get(uow.session, command.case_id)
        if case is None or case.profile_id is None:
            return OutcomeRecorded(recorded=False)
        # Help and an import's signals of the same resident, one after the other: else the
        # import flags her not seeing the help, and the help marks handled not seeing them.
        await lock_council(uow.session, case.council)
        outcome_id = uow.new_id()
        did_help = helped(command.outcome)
        if not await stored_outcomes.record(
            uow.session,
            id=outcome_id,
            profile_id=case.profile_id,
            case_id=command.case_id,
            need=command.need.value,
            outcome=command.outcome.value,
            helped=did_help,
            recorded_at=command.recorded_at,
        ):
            return OutcomeRecorded(recorded=False)
        handled = 0
        if did_help:
            handled = await stored_outcomes.mark_handled(
                uow.session,
                outcome_id=outcome_id,
                profile_id=case.profile_id,
                types=types_addressed(command.need),
                on=command.recorded_at.date(),
                at=command.recorded_at,
            )
        return OutcomeRecorded(recorded=True, signals_handled=handled)
