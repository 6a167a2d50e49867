"""Rulesets: simple, explainable rules written in CEL (a safe, non-Turing-complete language),
never Python. Loading validates everything and names the rule at fault. Conditions run as
compiled CEL (the ``cel`` package, ``common-expression-language``), all of a ruleset's in
one program.

A rule reads a resident's *profile*:

- ``signals.<type>.<field>``: the latest current signal of each type (see ``signals.py``),
  with ``days_ago`` and ``observed_on``; test presence with ``has(signals.<type>)``;
- ``distinct_signals_90d``: how many different signal types were observed in the last 90 days;
- ``referral.circumstances``, ``referral.needs`` (lists), ``referral.urgency``,
  ``referral.age`` (-1 when unknown or not a plausible age) and ``referral.present`` (false
  for a feed-only profile).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

import cel
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.risk.domain.signals import CATALOGUE, SignalType, fields_of
from shared.input_policy import (
    MAX_DEPTH,
    MAX_INTEGER,
    past_the_digit_limit,
    problems_in,
    validation_reason,
)
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
    program: Any  # the compiled CEL program of its condition (``cel.Program``)

    def explain(self, profile: Mapping[str, Any]) -> str:
        def fill(match: re.Match[str]) -> str:
            section, field = match.groups()
            value = profile.get("signals", {}).get(section, {}).get(field)
            return str(value) if value is not None else match.group(0)

        return _PLACEHOLDER.sub(fill, self.spec.explanation)

    def explain_signals(
        self, latest: Mapping[SignalType, SignalFact], today: date
    ) -> tuple[Rule, str]:
        """The rule and :meth:`explain` of the profile of a resident known from signals alone
        (their latest current signals): each placeholder filled as the profile shows it."""
        if "{" not in self.spec.explanation:
            return self, self.spec.explanation

        def fill(match: re.Match[str]) -> str:
            section, field = match.groups()
            fact = latest.get(section)  # type: ignore[arg-type]  # a StrEnum key, by value
            value = None if fact is None else _seen(fact, field, today)
            return str(value) if value is not None and value is not _MISSING else match.group(0)

        return self, _PLACEHOLDER.sub(fill, self.spec.explanation)


# What a ruleset decided of a resident: the positions of the rules firing, and the level.
_Decided = tuple[tuple[int, ...], RiskLevel]


class Ruleset:
    """A loaded ruleset. Its conditions run as compiled CEL: one program returning every
    rule's outcome at once (a rule whose condition cannot decide does not fire: when the
    combined program fails, each rule runs on its own). What the rules decide depends only
    on the parts of a profile their conditions read (:class:`Reads`), so it is remembered
    by those parts: residents alike in what the rules read are decided once."""

    def __init__(self, spec: RulesetSpec, rules: tuple[Rule, ...], source: str) -> None:
        self.spec = spec
        self.rules = rules
        self.source = source
        self.reads = Reads.of(rule.spec.when for rule in rules)
        self._together = _compile_together([rule.spec.when for rule in rules])
        self._decided: dict[Hashable, _Decided] = {}

    @functools.cached_property
    def version(self) -> str:
        """The label and a hash of the exact text: recorded on every assessment."""
        digest = hashlib.sha256(self.source.encode()).hexdigest()[:12]
        return f"{self.spec.label}@{digest}"

    def evaluate(self, profile: Mapping[str, Any]) -> Result:
        return self._result(
            (rule, rule.explain(profile))
            for rule in (self.rules[index] for index in self.firing(profile))
        )

    def level_of(self, profile: Mapping[str, Any]) -> RiskLevel:
        """The level :meth:`evaluate` would give, without its explanations."""
        return self._decision(profile)[1]

    def level_of_signals(self, signals: Sequence[SignalFact], *, today: date) -> RiskLevel:
        """``level_of(build_profile(signals, None, today=today))`` for a resident known from
        signals alone, worked out from what the rules read of the latest ones: the profile
        is built only if the rules have not yet decided a resident alike."""
        _, key, decision = self._decided_on_signals(signals, today)
        if decision is None:  # decided now, remembered by the key in hand
            return self._decision(build_profile(signals, None, today=today), key)[1]
        return decision[1]

    def evaluate_signals(self, signals: Sequence[SignalFact], *, today: date) -> Result:
        """``evaluate(build_profile(signals, None, today=today))`` for a resident known from
        signals alone: once the rules have decided a resident alike, the explanations are
        filled from the latest signals themselves, without building the profile."""
        latest, _, decision = self._decided_on_signals(signals, today)
        if decision is None:
            return self.evaluate(build_profile(signals, None, today=today))
        return self._result(
            self.rules[index].explain_signals(latest, today) for index in decision[0]
        )

    def _decided_on_signals(
        self, signals: Sequence[SignalFact], today: date
    ) -> tuple[Mapping[SignalType, SignalFact], Hashable | None, _Decided | None]:
        """The latest current signals, what the rules read of them (None: not from signals
        alone), and the decision on a resident alike if one was made already."""
        latest = latest_current(signals, today=today)
        key = self.reads.key_of_signals(latest, today=today)
        return latest, key, None if key is None else self._decided.get(key)

    def _result(self, explained: Iterable[tuple[Rule, str]]) -> Result:
        fired = [
            Fired(
                rule.spec.id,
                explanation,
                rule.spec.level,
                rule.spec.score,
                tuple(rule.spec.suggest),
            )
            for rule, explanation in explained
        ]
        if not fired:
            return Result(RiskLevel.NONE, 0, (), ())
        level = max((f.level for f in fired), key=lambda lvl: lvl.rank)
        needs = tuple(dict.fromkeys(n for f in fired for n in f.suggest))
        return Result(level, min(100, sum(f.score for f in fired)), tuple(fired), needs)

    def firing(self, profile: Mapping[str, Any]) -> tuple[int, ...]:
        """The positions of the rules that fire on this profile, in order."""
        return self._decision(profile)[0]

    def _decision(self, profile: Mapping[str, Any], key: Hashable | None = None) -> _Decided:
        """The rules firing on ``profile``, and its level; ``key``: its ``reads.key``."""
        key = self.reads.key(profile) if key is None else key
        decision = self._decided.get(key)
        if decision is None:
            firing = tuple(
                index for index, outcome in enumerate(self._outcomes(profile)) if outcome is True
            )
            level = max(
                (self.rules[index].spec.level for index in firing),
                key=lambda lvl: lvl.rank,
                default=RiskLevel.NONE,
            )
            if len(self._decided) >= _DECIDED_KEPT:
                self._decided.clear()
            decision = self._decided[key] = (firing, level)
        return decision

    def _outcomes(self, profile: Mapping[str, Any]) -> list[bool | str]:
        """Each rule's outcome: True or False, or why its condition could not decide."""
        activation = dict(profile)
        if self._together is not None:
            try:
                outcomes = self._together.execute(activation)
            except Exception:  # one condition could not decide: ask each on its own
                outcomes = None
            if isinstance(outcomes, list) and len(outcomes) == len(self.rules):
                return [
                    outcome if isinstance(outcome, bool) else _NOT_A_BOOLEAN for outcome in outcomes
                ]
        return [_decide(rule.program, activation) for rule in self.rules]


_DECIDED_KEPT = 1 << 16
"""How many distinct decisions a ruleset remembers (then it starts again)."""
_NOT_A_BOOLEAN = "condition must be true or false"


def _compile_together(conditions: list[str]) -> Any:
    """One program returning every condition's outcome, as a list; None if the conditions,
    each valid alone, cannot be put together (never expected). Each condition stands on
    lines of its own, so a comment in one ends with its line."""
    try:
        return cel.compile("[\n" + ",\n".join(f"(\n{c}\n)" for c in conditions) + "\n]")
    except ValueError:
        return None


def _decide(program: Any, activation: Mapping[str, Any]) -> bool | str:
    """True or False, or why the condition could not decide (a rule that cannot decide
    does not fire)."""
    try:
        outcome = program.execute(dict(activation))
    except Exception as exc:  # the CEL runtime's errors: no such key, no such overload…
        reason = exc.args[0] if exc.args else type(exc).__name__
        return f"condition cannot be evaluated: {reason}"
    if not isinstance(outcome, bool):
        return _NOT_A_BOOLEAN
    return outcome


_MISSING = object()
_HAS_SIGNAL = re.compile(r"\bhas\(\s*signals\.([A-Za-z_][A-Za-z0-9_]*)\s*\)")
_SIGNAL_READ = re.compile(
    r"\bsignals\.([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?(\s*[(\[])?"
)
_REFERRAL_READ = re.compile(r"\breferral\.([A-Za-z_][A-Za-z0-9_]*)(\s*\()?")
_SIGNALS_NAME = re.compile(r"\bsignals\b")
_REFERRAL_NAME = re.compile(r"\breferral\b")


@dataclass(frozen=True)
class Reads:
    """What a ruleset's conditions read of a profile, found in their text, erring on the
    side of reading more: ``has(signals.T)`` reads whether T is present; ``signals.T.f``
    reads that field of T; ``signals.T`` used any other way (indexed, a function called on
    it), or a field followed by a call, reads all of T; ``signals`` or ``referral`` named
    any other way (``size(signals)``, ``signals["T"]``, spaced dots, a comprehension's
    variable) reads all of it. ``distinct_signals_90d`` is always read.

    Two profiles with the same :meth:`key` are alike in everything the conditions read, so
    the rules decide them the same way."""

    presence: tuple[str, ...]  # signal types whose presence is read
    fields: tuple[tuple[str, tuple[str, ...]], ...]  # (type, fields read)
    whole_types: tuple[str, ...]  # signal types read whole
    all_signals: bool
    referral_fields: tuple[str, ...]
    all_referral: bool

    @classmethod
    def of(cls, conditions: Iterable[str]) -> Reads:
        presence: set[str] = set()
        fields: dict[str, set[str]] = {}
        whole: set[str] = set()
        referral: set[str] = set()
        all_signals = all_referral = False
        for condition in conditions:
            rest = condition
            for match in _HAS_SIGNAL.finditer(condition):
                presence.add(match.group(1))
            rest = _HAS_SIGNAL.sub(" ", rest)
            for match in _SIGNAL_READ.finditer(rest):
                kind, field, then = match.groups()
                if field and not then:
                    fields.setdefault(kind, set()).add(field)
                else:
                    whole.add(kind)
            rest = _SIGNAL_READ.sub(" ", rest)
            for match in _REFERRAL_READ.finditer(rest):
                field, call = match.groups()
                if call:
                    all_referral = True
                referral.add(field)
            rest = _REFERRAL_READ.sub(" ", rest)
            all_signals = all_signals or bool(_SIGNALS_NAME.search(rest))
            all_referral = all_referral or bool(_REFERRAL_NAME.search(rest))
        return cls(
            presence=tuple(sorted(presence - whole - set(fields))),
            fields=tuple(
                (kind, tuple(sorted(names)))
                for kind, names in sorted(fields.items())
                if kind not in whole
            ),
            whole_types=tuple(sorted(whole)),
            all_signals=all_signals,
            referral_fields=tuple(sorted(referral)),
            all_referral=all_referral,
        )

    def key(self, profile: Mapping[str, Any]) -> Hashable:
        """Everything the conditions read of this profile, each value with its type (so
        ``1``, ``1.0`` and ``true`` stay apart), as one hashable value."""
        signals = profile.get("signals", {})
        distinct = profile.get("distinct_signals_90d")
        referral = profile.get("referral", {})
        parts: list[Any] = [_frozen(distinct)]
        if self.all_signals:
            parts.append(_frozen(signals))
        else:
            parts.extend(kind in signals for kind in self.presence)
            for kind, names in self.fields:
                held = signals.get(kind)
                parts.append(
                    None
                    if held is None
                    else tuple(_frozen(held.get(name, _MISSING)) for name in names)
                )
            parts.extend(_frozen(signals.get(kind, _MISSING)) for kind in self.whole_types)
        parts.extend(self._referral_parts(referral))
        return tuple(parts)

    def key_of_signals(
        self, latest: Mapping[SignalType, SignalFact], *, today: date
    ) -> Hashable | None:
        """:meth:`key` of the profile of a resident known from signals alone, from their
        latest current signals (None when the rules read whole signals: build the profile)."""
        if self.all_signals or self.whole_types:
            return None
        parts: list[Any] = [
            _frozen(sum(1 for fact in latest.values() if (today - fact.observed_on).days <= 90))
        ]
        parts.extend(kind in latest for kind in self.presence)
        for kind, names in self.fields:
            fact = latest.get(kind)  # type: ignore[call-overload]  # a StrEnum key, by value
            parts.append(
                None if fact is None else tuple(_frozen(_seen(fact, n, today)) for n in names)
            )
        parts.extend(self._no_referral_parts)
        return tuple(parts)

    @functools.cached_property
    def _no_referral_parts(self) -> tuple[Hashable, ...]:
        """``_referral_parts`` of a resident with no case: the same for every one of them."""
        return tuple(self._referral_parts(_NO_REFERRAL))

    def _referral_parts(self, referral: Mapping[str, Any]) -> list[Hashable]:
        if self.all_referral:
            return [_frozen(referral)]
        return [_frozen(referral.get(name, _MISSING)) for name in self.referral_fields]


def _seen(fact: SignalFact, name: str, today: date) -> Any:
    """What a profile shows of a signal's field (see :func:`build_profile`)."""
    if name == "days_ago":
        return (today - fact.observed_on).days
    if name == "observed_on":
        return fact.observed_on.isoformat()
    value = fact.attributes.get(name, _MISSING)
    return _jsonable(value) if value is not _MISSING else _MISSING


def _frozen(value: Any) -> Hashable:
    """A value as a hashable key that keeps its type: equal keys, identical values."""
    if type(value) in _SCALARS:  # the common case, without the checks below (``Mapping``'s)
        return (type(value), value)
    if isinstance(value, Mapping):
        return (dict, tuple(sorted((k, _frozen(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return (list, tuple(_frozen(v) for v in value))
    if value is _MISSING:
        return _MISSING
    return (type(value), value)


_SCALARS = frozenset({str, int, float, bool, type(None)})


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
    except RecursionError:
        raise RulesetError(
            [f"not YAML we can read: nests deeper than {MAX_DEPTH} levels"]
        ) from None
    except ValueError as exc:  # an integer of thousands of digits, or a day not on the calendar
        raise RulesetError(
            [
                f"not YAML we can read: a number outside ±{MAX_INTEGER}"
                if past_the_digit_limit(exc)
                else "not YAML we can read: a value it cannot read (a day not on the calendar?)"
            ]
        ) from None
    # The parsed values are what is stored and shown (an explanation on every flag), so the
    # requests' policy applies to them: a YAML escape ("\0") writes what the text did not.
    if problems := [f"{field}: {reason}" for field, reason in problems_in(raw)]:
        raise RulesetError(problems)
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
            refused.append(f"{where}: {field + ': ' if field else ''}{validation_reason(err)}")
        raise RulesetError(refused) from exc
    errors: list[str] = []
    seen: set[str] = set()
    probe = _probe_profile()
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
            program = cel.compile(rule.when)
        except ValueError as exc:
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


class SignalFact(NamedTuple):
    """A stored signal as the rules see it (a tuple: a feed's residents have a million)."""

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


def latest_current(signals: Iterable[SignalFact], *, today: date) -> dict[SignalType, SignalFact]:
    """The latest current signal of each type (of two as late, the first)."""
    latest: dict[SignalType, SignalFact] = {}
    for fact in signals:
        if fact.expires_on < today or fact.observed_on > today:
            continue
        if fact.type not in latest or fact.observed_on > latest[fact.type].observed_on:
            latest[fact.type] = fact
    return latest


def build_profile(
    signals: Iterable[SignalFact], referral: ReferralFacts | None, *, today: date
) -> dict[str, Any]:
    """What rules read: the latest *current* signal of each type (expired ones are gone)."""
    latest = latest_current(signals, today=today)
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


# The referral part of the profile of a resident with no case (see build_profile).
_NO_REFERRAL: Mapping[str, Any] = build_profile((), None, today=date(2000, 1, 1))["referral"]


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
    return {key: _jsonable(value) for key, value in attributes.items()}


def _jsonable(value: Any) -> Any:
    """An attribute's value as :func:`jsonable_attributes` gives it."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value
