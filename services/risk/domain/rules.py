"""Rulesets: simple, explainable rules written in CEL (a safe, non-Turing-complete language),
never Python. Loading validates everything and names the rule at fault.

A rule reads a resident's *profile*:

- ``signals.<type>.<field>``: the latest current signal of each type (see ``signals.py``),
  with ``days_ago`` and ``observed_on``; test presence with ``has(signals.<type>)``;
- ``distinct_signals_90d``: how many different signal types were observed in the last 90 days;
- ``referral.circumstances``, ``referral.needs`` (lists), ``referral.urgency``,
  ``referral.age`` (-1 when unknown or not a plausible age) and ``referral.present`` (false
  for a feed-only profile).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

import celpy
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.risk.domain.signals import CATALOGUE, SignalType, fields_of
from shared.vocabulary import Circumstance, Need, RiskLevel

REFERRAL_FIELDS = {"circumstances", "needs", "urgency", "age", "present"}
_SIGNAL_REF = re.compile(r"\bsignals\.([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?")
_REFERRAL_REF = re.compile(r"\breferral\.([A-Za-z_][A-Za-z0-9_]*)")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\.([a-z_]+)\}")


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    description: str = Field(min_length=1, max_length=300)
    explanation: str = Field(
        min_length=1, max_length=500, description="plain English; {type.field} placeholders allowed"
    )
    when: str = Field(min_length=1, max_length=2000, description="a CEL condition")
    level: RiskLevel
    score: int = Field(ge=0, le=100)
    suggest: list[Need] = []


class RulesetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    flag_level: RiskLevel = Field(
        description="a resident without a case at or above this is flagged"
    )
    rules: list[RuleSpec] = Field(min_length=1)


class RulesetError(ValueError):
    """The ruleset cannot be used; ``errors`` name each rule at fault and why."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


@dataclass(frozen=True)
class Fired:
    rule_id: str
    explanation: str
    level: RiskLevel
    score: int
    suggest: tuple[Need, ...]


@dataclass(frozen=True)
class Note:
    """What a reader of an assessment must know that no rule found: recorded among its
    reasons (under an id no rule may take), changing neither its level nor its score."""

    id: str
    explanation: str


NO_RESIDENT_KEY = Note(
    "no-resident-key",
    "We could not match this to any information the council holds, because the referral "
    "gives no date of birth, postcode or UPRN (property reference number): this assessment "
    "is based only on what the referral says.",
)
NOTES = {note.id: note for note in (NO_RESIDENT_KEY,)}


@dataclass(frozen=True)
class Result:
    level: RiskLevel
    score: int
    fired: tuple[Fired, ...]
    suggested_needs: tuple[Need, ...]
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True)
class Rule:
    spec: RuleSpec
    program: Any  # a compiled celpy program

    def explain(self, profile: Mapping[str, Any]) -> str:
        def fill(match: re.Match[str]) -> str:
            section, field = match.groups()
            value = profile.get("signals", {}).get(section, {}).get(field)
            return str(value) if value is not None else match.group(0)

        return _PLACEHOLDER.sub(fill, self.spec.explanation)


@dataclass(frozen=True)
class Ruleset:
    spec: RulesetSpec
    rules: tuple[Rule, ...]
    source: str

    @property
    def version(self) -> str:
        """The label and a hash of the exact text: recorded on every assessment."""
        digest = hashlib.sha256(self.source.encode()).hexdigest()[:12]
        return f"{self.spec.label}@{digest}"

    def evaluate(self, profile: Mapping[str, Any]) -> Result:
        activation = celpy.json_to_cel(dict(profile))
        fired = []
        for rule in self.rules:
            if _decide(rule.program, activation) is True:
                fired.append(
                    Fired(
                        rule.spec.id,
                        rule.explain(profile),
                        rule.spec.level,
                        rule.spec.score,
                        tuple(rule.spec.suggest),
                    )
                )
        if not fired:
            return Result(RiskLevel.NONE, 0, (), ())
        level = max((f.level for f in fired), key=lambda lvl: lvl.rank)
        needs = tuple(dict.fromkeys(n for f in fired for n in f.suggest))
        return Result(level, min(100, sum(f.score for f in fired)), tuple(fired), needs)


def _decide(program: Any, activation: Any) -> bool | str:
    """True or False, or why the condition could not decide (a rule that cannot decide
    does not fire)."""
    try:
        outcome = program.evaluate(activation)
    except (celpy.CELEvalError, TypeError, KeyError, ValueError) as exc:
        reason = exc.args[0] if exc.args else exc
        return f"condition cannot be evaluated: {reason}"
    if isinstance(outcome, celpy.CELEvalError):
        return f"condition cannot be evaluated: {outcome.args[0] if outcome.args else outcome}"
    if not isinstance(outcome, celpy.celtypes.BoolType):
        return "condition must be true or false"
    return bool(outcome)


def _probe_profile() -> dict[str, Any]:
    """A profile holding every field a rule may read, to try each rule once at load time."""
    signals: dict[str, Any] = {}
    for signal_type, kind in CATALOGUE.items():
        sample: dict[str, Any] = {}
        for name, field in kind.attributes.model_fields.items():
            annotation = str(field.annotation)
            sample[name] = (
                True
                if "bool" in annotation
                else "2026-01-01"
                if "date" in annotation
                else 1
                if ("int" in annotation or "Decimal" in annotation)
                else "x"
            )
        signals[signal_type.value] = {**sample, "days_ago": 1, "observed_on": "2026-01-01"}
    return {
        "signals": signals,
        "distinct_signals_90d": 1,
        "referral": {
            "circumstances": [c.value for c in Circumstance],
            "needs": [n.value for n in Need],
            "urgency": "low",
            "age": 30,
            "present": True,
        },
    }


def _check_references(rule: RuleSpec) -> list[str]:
    problems = []
    for signal_name, field in _SIGNAL_REF.findall(rule.when):
        if signal_name not in SignalType.__members__.values():
            problems.append(f"unknown signal type '{signal_name}'")
        elif field and field not in fields_of(SignalType(signal_name)):
            problems.append(
                f"signal '{signal_name}' has no field '{field}' "
                f"(it has: {', '.join(sorted(fields_of(SignalType(signal_name))))})"
            )
    for field in _REFERRAL_REF.findall(rule.when):
        if field not in REFERRAL_FIELDS:
            problems.append(f"referral has no field '{field}'")
    for section, field in _PLACEHOLDER.findall(rule.explanation):
        if section not in SignalType.__members__.values() or field not in fields_of(
            SignalType(section)
        ):
            problems.append(f"explanation placeholder {{{section}.{field}}} names no signal field")
    return problems


def load_ruleset(source: str) -> Ruleset:
    """Parse and validate a YAML ruleset; RulesetError names every rule at fault."""
    try:
        raw = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise RulesetError([f"not valid YAML: {exc}"]) from exc
    try:
        spec = RulesetSpec.model_validate(raw)
    except ValidationError as exc:
        refused: list[str] = []
        for err in exc.errors():
            loc = list(err["loc"])
            where = "ruleset"
            if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
                rules = raw.get("rules") if isinstance(raw, dict) else None
                rule_id = (
                    rules[loc[1]].get("id")
                    if isinstance(rules, list) and isinstance(rules[loc[1]], dict)
                    else None
                )
                where = f"rule '{rule_id}'" if rule_id else f"rule #{loc[1] + 1}"
                loc = loc[2:]
            field = ".".join(map(str, loc))
            refused.append(f"{where}: {field + ': ' if field else ''}{err['msg']}")
        raise RulesetError(refused) from exc
    errors: list[str] = []
    seen: set[str] = set()
    environment = celpy.Environment()
    probe = celpy.json_to_cel(_probe_profile())
    rules = []
    for rule in spec.rules:
        if rule.id in seen:
            errors.append(f"rule '{rule.id}': duplicate id")
            continue
        if rule.id in NOTES:
            errors.append(f"rule '{rule.id}': the id is reserved for the service's own notes")
            continue
        seen.add(rule.id)
        problems = _check_references(rule)
        try:
            program = environment.program(environment.compile(rule.when))
        except celpy.CELParseError as exc:
            errors.append(
                f"rule '{rule.id}': condition is not valid CEL: " + " ".join(str(exc).split())
            )
            continue
        outcome = _decide(program, probe)
        if not problems and isinstance(outcome, str):
            problems.append(outcome)
        errors += [f"rule '{rule.id}': {p}" for p in problems]
        rules.append(Rule(rule, program))
    if errors:
        raise RulesetError(errors)
    return Ruleset(spec, tuple(rules), source)


# -- profiles -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignalFact:
    type: SignalType
    attributes: Mapping[str, Any]
    observed_on: date
    expires_on: date


@dataclass(frozen=True)
class ReferralFacts:
    circumstances: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    urgency: str = "none"
    age: int | None = None

    @classmethod
    def from_json(cls, facts: Mapping[str, Any] | None) -> ReferralFacts | None:
        if facts is None:
            return None
        return cls(
            tuple(facts.get("circumstances", ())),
            tuple(facts.get("needs", ())),
            facts.get("urgency", "none"),
            facts.get("age"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "circumstances": list(self.circumstances),
            "needs": list(self.needs),
            "urgency": self.urgency,
            "age": self.age,
        }


MAX_AGE = 150


def _plausible_age(age: int | None) -> bool:
    """An age a person can have: not one below zero (a date of birth of "today" read a time
    zone ahead), nor one too large for a rule to compare (CEL integers have 64 bits)."""
    return age is not None and 0 <= age <= MAX_AGE


def build_profile(
    signals: Iterable[SignalFact], referral: ReferralFacts | None, *, today: date
) -> dict[str, Any]:
    """What rules read: the latest *current* signal of each type (expired ones are gone)."""
    latest: dict[SignalType, SignalFact] = {}
    for fact in signals:
        if fact.expires_on < today or fact.observed_on > today:
            continue
        if fact.type not in latest or fact.observed_on > latest[fact.type].observed_on:
            latest[fact.type] = fact
    view = {
        kind.value: {
            **jsonable_attributes(fact.attributes),
            "days_ago": (today - fact.observed_on).days,
            "observed_on": fact.observed_on.isoformat(),
        }
        for kind, fact in latest.items()
    }
    recent = sum(1 for fact in latest.values() if (today - fact.observed_on).days <= 90)
    facts = referral or ReferralFacts()
    return {
        "signals": view,
        "distinct_signals_90d": recent,
        "referral": {
            "circumstances": list(facts.circumstances),
            "needs": list(facts.needs),
            "urgency": facts.urgency,
            "age": facts.age if _plausible_age(facts.age) else -1,
            "present": referral is not None,
        },
    }


def assess_case(
    ruleset: Ruleset,
    signals: Iterable[SignalFact] | None,
    referral: ReferralFacts | None,
    *,
    today: date,
) -> Result:
    """A case's assessment: the rules over what its referral says and the resident's signals.
    ``signals`` is None when the resident has no key (the referral names no date of birth,
    postcode or UPRN), so none could be matched: the rules read the referral alone, and the
    result says so (:data:`NO_RESIDENT_KEY`)."""
    result = ruleset.evaluate(build_profile(signals or (), referral, today=today))
    return result if signals is not None else replace(result, notes=(NO_RESIDENT_KEY,))


def jsonable_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Money is a double in CEL (compare with 500.0), counts are ints, dates ISO strings."""
    return {
        key: float(value)
        if isinstance(value, Decimal)
        else value.isoformat()
        if isinstance(value, date)
        else value
        for key, value in attributes.items()
    }
