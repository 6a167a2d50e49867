"""The quick check of a feed row: the common row, proved valid in plain Python.

:func:`services.risk.domain.feeds.check_with_models` is the definition of a valid row: the
shared input policy, then the pydantic models (:class:`~services.risk.domain.feeds.SignalIn`,
the signal type's attributes). Running those on every row of a million-row feed costs about
65 µs a row, most of it for rows that are plainly fine. :class:`QuickCheck` looks at a row
the way they would and either returns the very :class:`~services.risk.domain.feeds.Row` they
would return, or ``None``: "not sure", and the full check runs. It never refuses anything,
so every refusal (and its wording) still comes from the full check, and it is only ever sure
of a row when every value is a plain string, already stripped, and within the simple shapes
below:

- no value or name holding anything the input policy looks at twice: a control character, a
  surrogate, more than 20,000 characters in all, or (outside the date fields) the start of an
  ISO date;
- dates written ``YYYY-MM-DD`` (ASCII digits), a date of birth from 1900 to today, a signal
  observed no later than today; a council's GSS code; lengths within the models' bounds;
  names with a letter, a postcode that normalises, a UPRN of ASCII digits;
- attributes the signal type's model reads as plainly: integers of ASCII digits, money with
  at most its decimal places, one of a literal's words, a date as above; a field that is not
  sent takes its default (a field whose type is anything else, or a flag that is sent, is not
  for the quick check).

The models it was written for are recorded (:data:`WRITTEN_FOR`); if they change, the quick
check stands aside (its ``enabled`` is false) until it is brought up to date, and a unit test
says so. Unit tests compare it with the full check over many generated rows, valid and not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types
from pydantic import BaseModel

from services.risk.domain.signals import CATALOGUE, SignalType
from shared.clock import london_today
from shared.identity import has_letters, normalise_postcode
from shared.input_policy import EARLIEST, LATEST, MAX_TEXT_LENGTH, WRITTEN_AS_A_DATE
from shared.vocabulary import GSS_CODE

# What the input policy looks at twice in a row's names and values: a control character
# (category Cc; tab, line feed and carriage return allowed), a surrogate (Cs) or U+FFFD (bytes
# that were not UTF-8); or a text starting like an ISO date (wider than the policy's own
# pattern: such a text is left to the full check).
_POLICY_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffd]")
_LOOKS_LIKE_A_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PLAIN_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_UPRN = re.compile(r"[0-9]{1,12}")

_SIGNAL_LIMITS = {"source": 100}
_RESIDENT_LIMITS = {
    "given_name": 100,
    "family_name": 100,
    "postcode": 16,
    "council_reference": 64,
    "address": 300,
    "phone": 32,
    "email": 254,
}
_SIGNAL_FIELDS = frozenset(
    {"type", "council", "resident", "attributes", "source", "observed_on", "expires_on"}
)
_RESIDENT_FIELDS = frozenset({*_RESIDENT_LIMITS, "date_of_birth", "uprn"})
_TYPES = {kind.value: kind for kind in SignalType}


@lru_cache(maxsize=1 << 16)  # a feed's dates repeat: the days of a month, birthdays
def _plain_date(value: str) -> date | None:
    if not _PLAIN_DATE.fullmatch(value):
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return day if EARLIEST <= day <= LATEST else None


@lru_cache(maxsize=1024)
def _council(code: str) -> bool:
    return GSS_CODE.fullmatch(code) is not None


@lru_cache(maxsize=1 << 16)
def _name_has_letters(name: str) -> bool:
    return has_letters(name)


@lru_cache(maxsize=1 << 16)
def _postcode(raw: str) -> str | None:
    try:
        return normalise_postcode(raw)
    except ValueError:
        return None


# -- attributes: a reader per field, made from the signal type's model -----------------------

_Reader = Callable[[str], Any]  # the value, or _UNSURE
_UNSURE: Any = object()


def _integer(low: int | None, high: int | None) -> _Reader:
    digits = re.compile(r"[0-9]{1,15}")

    def read(value: str) -> Any:
        if not digits.fullmatch(value):
            return _UNSURE
        number = int(value)
        if (low is not None and number < low) or (high is not None and number > high):
            return _UNSURE
        return number

    return read


def _money(low: Any, high: Any, places: int) -> _Reader:
    shape = re.compile(r"[0-9]{1,12}" + (rf"(?:\.[0-9]{{1,{places}}})?" if places else ""))

    def read(value: str) -> Any:
        if not shape.fullmatch(value):
            return _UNSURE
        amount = Decimal(value)
        if (low is not None and amount < low) or (high is not None and amount > high):
            return _UNSURE
        return amount

    return read


def _one_of(words: tuple[Any, ...]) -> _Reader:
    allowed = frozenset(words)
    return lambda value: value if value in allowed else _UNSURE


def _a_date(value: str) -> Any:
    day = _plain_date(value)
    return _UNSURE if day is None else day


def _bounds(metadata: list[Any]) -> tuple[Any, Any, int | None] | None:
    """(ge, le, decimal places) from a field's constraints; None if it has others."""
    low = high = places = None
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Le):
            high = item.le
        elif getattr(item, "__dict__", None) is not None and set(vars(item)) == {"decimal_places"}:
            places = item.decimal_places
        else:
            return None
    return low, high, places


def _reader(annotation: Any, metadata: list[Any]) -> _Reader | None:
    if get_origin(annotation) is Annotated:  # (``IsoDate``: a date and how it is written)
        annotation, *written = get_args(annotation)
        metadata = [*written, *metadata]
    if annotation is date and all(item is WRITTEN_AS_A_DATE for item in metadata):
        return _a_date  # only YYYY-MM-DD: never a number
    bounds = _bounds(metadata)
    if bounds is None:
        return None
    low, high, places = bounds
    if annotation is int and places is None:
        return _integer(low, high)
    if annotation is Decimal and places is not None:
        return _money(low, high, places)
    if get_origin(annotation) is Literal and not metadata:
        words = get_args(annotation)
        return _one_of(words) if all(isinstance(w, str) for w in words) else None
    return None


_Fields = list[tuple[str, _Reader | None, bool, Any]]  # name, reader, required, default


def _attribute_fields(model: type[BaseModel]) -> _Fields | None:
    """How to read each field of an attributes model; None if some field is not for us."""
    fields: _Fields = []
    for name, field in model.model_fields.items():
        annotation, required = field.annotation, field.is_required()
        arguments = get_args(annotation)
        if not required and len(arguments) == 2 and type(None) in arguments:
            (annotation,) = (a for a in arguments if a is not type(None))
        reader = _reader(annotation, list(field.metadata))
        if reader is None and required:
            return None
        fields.append((name, reader, required, None if required else field.default))
    return fields


_ATTRIBUTES: dict[SignalType, _Fields | None] = {
    kind: _attribute_fields(spec.attributes) for kind, spec in CATALOGUE.items()
}


def _attributes(kind: SignalType, sent: Mapping[str, str]) -> dict[str, Any] | None:
    fields = _ATTRIBUTES[kind]
    if fields is None:
        return None
    read: dict[str, Any] = {}
    for name, reader, required, default in fields:
        value = sent.get(name)
        if value is None:
            if required:
                return None
            read[name] = default
            continue
        if reader is None:
            return None
        read[name] = reader(value)
        if read[name] is _UNSURE:
            return None
    if len(sent) > len(read) or not sent.keys() <= read.keys():
        return None
    return read


# -- the row ------------------------------------------------------------------------------


def _texts_are_plain(*groups: Mapping[str, Any]) -> bool:
    """Every name and value a stripped, non-empty string with nothing for the policy to look
    at twice (a value of a date field is read as a plain date, or the row is not ours)."""
    texts: list[str] = []
    for group in groups:
        for name, value in group.items():
            if type(value) is not str or not value or value != value.strip():
                return False
            if name[4:5] == "-" and _LOOKS_LIKE_A_DATE.match(name):
                return False
            texts.append(name)
            if name not in _DATE_FIELDS:
                if value[4:5] == "-" and _LOOKS_LIKE_A_DATE.match(value):
                    return False
                texts.append(value)
    joined = " ".join(texts)
    if len(joined) > MAX_TEXT_LENGTH:
        return False
    # Printable ASCII has no control character and no surrogate; anything else is searched.
    return (joined.isascii() and joined.isprintable()) or not _POLICY_CHARACTERS.search(joined)


class QuickCheck:
    """``quick_check(line, raw)``: the ``Row`` the full check would return for this record,
    or None when the full check must decide (it may still find the row valid). Made with
    the models of ``feeds.py`` (which calls it first in ``check``)."""

    def __init__(self, signal_model: Any, resident_model: Any, row: Any) -> None:
        self._signal = signal_model
        self._resident = resident_model
        self._row = row
        self.enabled = _written_for(signal_model, resident_model) == WRITTEN_FOR and all(
            _constructs_as_pydantic(model, sample)
            for model, sample in (
                (resident_model, {"given_name": "A", "family_name": "B", "uprn": "1"}),
                (
                    signal_model,
                    {
                        "type": SignalType.JOB_LOSS,
                        "council": "E09000025",
                        "resident": None,
                        "source": "s",
                        "observed_on": date(2026, 1, 1),
                    },
                ),
            )
        )

    def __call__(self, line: int, raw: Any) -> Any:
        if not self.enabled or type(raw) is not dict or not raw.keys() <= _SIGNAL_FIELDS:
            return None
        resident = raw.get("resident")
        attributes = raw.get("attributes", _NO_ATTRIBUTES)
        if type(resident) is not dict or type(attributes) is not dict:
            return None
        if not resident.keys() <= _RESIDENT_FIELDS:
            return None
        signal = {k: v for k, v in raw.items() if k != "resident" and k != "attributes"}
        if not _texts_are_plain(signal, resident, attributes):
            return None
        return self._checked(line, "attributes" in raw, signal, resident, attributes)

    def _checked(
        self,
        line: int,
        sent_attributes: bool,
        signal: dict[str, str],
        resident: dict[str, str],
        attributes: dict[str, str],
    ) -> Any:
        kind = _TYPES.get(signal.get("type", ""))
        council = signal.get("council", "")
        source = signal.get("source", "")
        if kind is None or not _council(council) or not 0 < len(source) <= 100:
            return None
        today = london_today()
        observed = _plain_date(signal.get("observed_on", ""))
        if observed is None or observed > today:
            return None
        expires: date | None = None
        if "expires_on" in signal:
            expires = _plain_date(signal["expires_on"])
            if expires is None:
                return None
        person: dict[str, Any] = {}
        for name, value in resident.items():
            limit = _RESIDENT_LIMITS.get(name)
            if limit is not None and len(value) > limit:
                return None
            person[name] = value
        for name in ("given_name", "family_name"):
            if name not in person or not _name_has_letters(person[name]):
                return None
        if "date_of_birth" in person:
            born = _plain_date(person["date_of_birth"])
            if born is None or born > today:
                return None
            person["date_of_birth"] = born
        if "postcode" in person:
            person["postcode"] = _postcode(person["postcode"])
            if person["postcode"] is None:
                return None
        if "uprn" in person and not _UPRN.fullmatch(person["uprn"]):
            return None
        if not ("date_of_birth" in person or "postcode" in person or "uprn" in person):
            return None
        read = _attributes(kind, attributes)
        if read is None:
            return None
        until = expires or observed + timedelta(days=CATALOGUE[kind].current_for_days)
        if until <= observed:
            return None
        fields: dict[str, Any] = {
            "type": kind,
            "council": council,
            "resident": _construct(self._resident, person),
            "source": source,
            "observed_on": observed,
        }
        if "expires_on" in signal:
            fields["expires_on"] = expires
        given = {*fields, "attributes"} if sent_attributes else set(fields)
        fields["attributes"] = dict(attributes)  # a fresh dict, also when none are sent
        return self._row(line, _construct(self._signal, fields, given), read, until)


_set = object.__setattr__


def _construct(model: Any, values: dict[str, Any], given: set[str] | None = None) -> Any:
    """What ``model.model_construct(**values)`` makes (``values`` holding no alias and no
    extra field, and every field whose default is mutable: it would be copied), without
    its per-field bookkeeping: the fields in the model's order, the given ones set, the
    others their defaults; ``given`` (default: those in ``values``) as the fields set."""
    made = model.__new__(model)
    fields = _DEFAULTS.get(model)
    if fields is None:
        fields = _DEFAULTS[model] = {
            name: field.get_default(call_default_factory=True)
            for name, field in model.model_fields.items()
        }
    every = fields.copy()
    every.update(values)
    _set(made, "__dict__", every)
    _set(made, "__pydantic_fields_set__", set(values) if given is None else given)
    _set(made, "__pydantic_extra__", None)
    _set(made, "__pydantic_private__", None)
    return made


_DEFAULTS: dict[Any, dict[str, Any]] = {}


def _constructs_as_pydantic(model: Any, values: dict[str, Any]) -> bool:
    """Whether :func:`_construct` makes what pydantic's own ``model_construct`` does."""
    ours, theirs = _construct(model, dict(values)), model.model_construct(**values)
    return (
        all(
            getattr(ours, slot, None) == getattr(theirs, slot, None)
            for slot in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__")
        )
        and getattr(theirs, "__pydantic_private__", None) is None
    )


_NO_ATTRIBUTES: dict[str, Any] = {}
_DATE_FIELDS = frozenset({"observed_on", "expires_on", "date_of_birth", "notice_date"})


def _shape(model: type[BaseModel]) -> list[tuple[str, str, str, bool]]:
    return [
        (name, _named(str(field.annotation)), _named(repr(field.metadata)), field.is_required())
        for name, field in model.model_fields.items()
    ]


def _named(text: str) -> str:
    """A field's description without where its validators' functions lie in memory."""
    return re.sub(r" at 0x[0-9a-f]+", "", text)


def _validators(model: type[BaseModel]) -> list[tuple[str, tuple[str, ...], str]]:
    return sorted(
        (name, tuple(d.info.fields), d.info.mode)
        for name, d in model.__pydantic_decorators__.field_validators.items()
    )


def _written_for(signal_model: Any, resident_model: Any) -> dict[str, Any]:
    return {
        "signal": _shape(signal_model),
        "signal validators": _validators(signal_model),
        "signal config": sorted(signal_model.model_config.items()),
        "resident": _shape(resident_model),
        "resident validators": _validators(resident_model),
        "resident config": sorted(resident_model.model_config.items()),
    }


# ``IsoDate``: a date, written as one (``shared.input_policy``).
_WRITTEN = (
    "BeforeValidator(func=<function _written_as_a_date>, json_schema_input_type=PydanticUndefined)"
)
_WRITTEN_AS_A_DATE = f"[{_WRITTEN}]"
_OPTIONAL_DATE = f"typing.Optional[typing.Annotated[datetime.date, {_WRITTEN}]]"
WRITTEN_FOR: dict[str, Any] = {
    "signal": [
        ("type", "<enum 'SignalType'>", "[]", True),
        (
            "council",
            "<class 'str'>",
            "[_PydanticGeneralMetadata(pattern='^[ENSWK][0-9]{8}$')]",
            True,
        ),
        ("resident", "<class 'services.risk.domain.feeds.ResidentIdentifiers'>", "[]", True),
        ("attributes", "dict[str, typing.Any]", "[]", False),
        ("source", "<class 'str'>", "[MinLen(min_length=1), MaxLen(max_length=100)]", True),
        ("observed_on", "<class 'datetime.date'>", _WRITTEN_AS_A_DATE, True),
        (
            "expires_on",
            _OPTIONAL_DATE,
            "[]",
            False,
        ),
    ],
    "signal validators": [("_not_future", ("observed_on",), "after")],
    "signal config": [("extra", "forbid"), ("str_strip_whitespace", True)],
    "resident": [
        ("given_name", "<class 'str'>", "[MinLen(min_length=1), MaxLen(max_length=100)]", True),
        ("family_name", "<class 'str'>", "[MinLen(min_length=1), MaxLen(max_length=100)]", True),
        (
            "date_of_birth",
            _OPTIONAL_DATE,
            "[]",
            False,
        ),
        ("postcode", "str | None", "[MaxLen(max_length=16)]", False),
        ("uprn", "str | None", "[_PydanticGeneralMetadata(pattern='^[0-9]{1,12}$')]", False),
        ("council_reference", "str | None", "[MaxLen(max_length=64)]", False),
        ("address", "str | None", "[MaxLen(max_length=300)]", False),
        ("phone", "str | None", "[MaxLen(max_length=32)]", False),
        ("email", "str | None", "[MaxLen(max_length=254)]", False),
    ],
    "resident validators": [
        ("_born", ("date_of_birth",), "after"),
        ("_has_letters", ("given_name", "family_name"), "after"),
        ("_postcode", ("postcode",), "after"),
    ],
    "resident config": [("extra", "forbid"), ("str_strip_whitespace", True)],
}
"""The models this quick check was written for: it stands aside if they differ."""
