"""When help arrived: which signals an outcome addressed, and which signals may flag a
resident again afterwards.

A partner's outcome that helped (support provided, partly resolved) for a need marks the
resident's signals current at that time, of the types that need addresses, as *handled*.
Afterwards a signal counts towards a flag only if it is *new* (no handled signal of its type)
or *worse* than the handled one of its type; a signal that says no more than a handled one
(the same fact re-sent by a monthly feed, with a later date) is set aside like it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from services.risk.domain.rules import SignalFact
from services.risk.domain.signals import SignalType
from shared.vocabulary import Need, Outcome

# Outcomes that say help arrived: the signals the need addresses are handled.
HELPED = frozenset({Outcome.SUPPORT_PROVIDED, Outcome.PARTLY_RESOLVED})

_N = Need
# The needs whose help addresses each signal type (a plain table, published in docs/risk.md).
ADDRESSED_BY: Mapping[SignalType, frozenset[Need]] = {
    SignalType.RENT_ARREARS: frozenset({_N.HOUSING, _N.MONEY_AND_DEBT, _N.BENEFITS}),
    SignalType.COUNCIL_TAX_ARREARS: frozenset({_N.MONEY_AND_DEBT, _N.BENEFITS}),
    SignalType.BENEFIT_SANCTION: frozenset({_N.BENEFITS, _N.MONEY_AND_DEBT}),
    SignalType.DHP_REFUSED_OR_ENDING: frozenset({_N.HOUSING, _N.BENEFITS, _N.MONEY_AND_DEBT}),
    SignalType.EVICTION_NOTICE: frozenset({_N.HOUSING, _N.MONEY_AND_DEBT}),
    SignalType.DISCONNECTION_RISK: frozenset({_N.FUEL_AND_UTILITIES, _N.MONEY_AND_DEBT}),
    SignalType.PRIORITY_SERVICES_REGISTER: frozenset(
        {_N.FUEL_AND_UTILITIES, _N.PHYSICAL_HEALTH_AND_DISABILITY}
    ),
    SignalType.SCHOOL_ABSENCE: frozenset({_N.CHILDREN_AND_FAMILIES}),
    SignalType.HOSPITAL_DISCHARGE_UNSUPPORTED: frozenset(
        {_N.PHYSICAL_HEALTH_AND_DISABILITY, _N.CARERS_SUPPORT, _N.SOCIAL_ISOLATION}
    ),
    SignalType.BEREAVEMENT: frozenset({_N.MENTAL_HEALTH, _N.SOCIAL_ISOLATION}),
    SignalType.JOB_LOSS: frozenset({_N.EMPLOYMENT_AND_SKILLS, _N.BENEFITS, _N.MONEY_AND_DEBT}),
}


def helped(outcome: Outcome) -> bool:
    return outcome in HELPED


def types_addressed(need: Need) -> list[SignalType]:
    """The signal types help with ``need`` addresses."""
    return sorted(kind for kind, needs in ADDRESSED_BY.items() if need in needs)


# -- worse or not -------------------------------------------------------------------------------

_STAGES = {
    SignalType.COUNCIL_TAX_ARREARS: (
        "stage",
        ("reminder", "final_notice", "summons", "liability_order", "enforcement"),
    ),
    SignalType.EVICTION_NOTICE: (
        "notice_type",
        ("section_21", "section_8", "possession_order", "warrant"),
    ),
}
# Amounts that only count as worse when they grow.
_GROWING = {
    SignalType.RENT_ARREARS: ("weeks", "amount"),
    SignalType.COUNCIL_TAX_ARREARS: ("amount",),
    SignalType.BENEFIT_SANCTION: ("amount",),
    SignalType.SCHOOL_ABSENCE: ("percent",),
}
# Fields whose change is a new fact, neither better nor worse (another utility, a new notice).
_IDENTITY = {
    SignalType.BENEFIT_SANCTION: ("kind",),
    SignalType.DHP_REFUSED_OR_ENDING: ("status",),
    SignalType.EVICTION_NOTICE: ("notice_date",),
    SignalType.DISCONNECTION_RISK: ("utility",),
}


def _number(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def is_worse(kind: SignalType, later: Mapping[str, Any], handled: Mapping[str, Any]) -> bool:
    """Whether a later signal says more than a handled one of the same type: a larger
    amount or count, a later stage, self-disconnection, or another fact altogether (another
    notice, utility, kind of deduction). Types without attributes are never worse: the same
    fact re-sent."""
    for name in _IDENTITY.get(kind, ()):
        if str(later.get(name)) != str(handled.get(name)):
            return True
    stage = _STAGES.get(kind)
    if stage is not None:
        name, order = stage
        if order.index(later[name]) > order.index(handled[name]):
            return True
    for name in _GROWING.get(kind, ()):
        if _number(later.get(name)) > _number(handled.get(name)):
            return True
    return bool(
        kind is SignalType.DISCONNECTION_RISK
        and later.get("self_disconnection")
        and not handled.get("self_disconnection")
    )


# -- what counts after help ---------------------------------------------------------------------


class SignalStanding(StrEnum):
    HANDLED = "handled"  # help addressed it
    SAME_AS_HANDLED = "same_as_handled"  # says no more than a handled one: set aside too
    WORSE = "worse"  # worse than the handled one of its type: counts
    NEW = "new"  # no handled signal of its type: counts


COUNTS = frozenset({SignalStanding.WORSE, SignalStanding.NEW})


@dataclass(frozen=True)
class Help:
    """What a profile's outcomes did: the handled signals, and the last time help arrived."""

    handled: tuple[SignalFact, ...]  # attributes are mappings: compared, not hashed
    helped_at: datetime


@dataclass(frozen=True)
class AfterHelp:
    counting: list[SignalFact]  # what the rules may flag on
    standing: list[tuple[SignalFact, SignalStanding]]  # every signal held, and why


def after_help(held: Sequence[SignalFact], help_: Help | None) -> AfterHelp:
    """The signals that may flag a resident: all of them if help never arrived; else only the
    new and the worse ones."""
    if help_ is None or not help_.handled:
        return AfterHelp(list(held), [(fact, SignalStanding.NEW) for fact in held])
    by_type: dict[SignalType, list[SignalFact]] = {}
    for fact in help_.handled:
        by_type.setdefault(fact.type, []).append(fact)
    standing: list[tuple[SignalFact, SignalStanding]] = []
    for fact in held:
        if fact in help_.handled:
            standing.append((fact, SignalStanding.HANDLED))
        elif fact.type not in by_type:
            standing.append((fact, SignalStanding.NEW))
        elif _covered(fact, by_type[fact.type]):
            standing.append((fact, SignalStanding.SAME_AS_HANDLED))
        else:
            standing.append((fact, SignalStanding.WORSE))
    return AfterHelp([fact for fact, s in standing if s in COUNTS], standing)


def _covered(fact: SignalFact, handled: Sequence[SignalFact]) -> bool:
    """Says no more than one of the handled signals of its type."""
    return any(not is_worse(fact.type, fact.attributes, h.attributes) for h in handled)


def is_returning(help_: Help | None, now: datetime, window: timedelta) -> bool:
    """Flagged again within ``window`` of the last help: a returning resident."""
    return help_ is not None and now - help_.helped_at <= window


def describe(standing: Iterable[tuple[SignalFact, SignalStanding]], *, today: date) -> list[dict]:
    """The current signals and their standing, for the record of a flag (the why-API)."""
    return [
        {"type": fact.type.value, "observed_on": fact.observed_on.isoformat(), "standing": s.value}
        for fact, s in sorted(standing, key=lambda item: (item[0].type, item[0].observed_on))
        if fact.observed_on <= today <= fact.expires_on
    ]
