"""Feed rows: what one signal looks like on the way in, from JSON, NDJSON or CSV, and the
reasons a row is refused (line, field, reason), so good rows are kept and bad ones reported.

A file is read one physical line at a time and every line is accounted for: the CSV header,
a blank line (skipped), or one row, read or refused. A line break inside a quoted CSV cell is
not supported: each half is refused as a row with an unclosed quote, and the next line is read
as the next record, so one broken line never swallows the lines after it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.risk.domain.signals import CATALOGUE, SignalType
from shared.errors import Invalid
from shared.identity import normalise_postcode
from shared.vocabulary import GSS_CODE


class ResidentIdentifiers(BaseModel):
    """Used to derive the resident's keys, and sealed into a flag; never stored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    date_of_birth: date | None = None
    postcode: str | None = Field(default=None, max_length=16)
    uprn: str | None = Field(default=None, pattern=r"^[0-9]{1,12}$")
    council_reference: str | None = Field(default=None, max_length=64)
    address: str | None = Field(default=None, max_length=300)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)

    @field_validator("postcode")
    @classmethod
    def _postcode(cls, value: str | None) -> str | None:
        return normalise_postcode(value) if value else None

    @field_validator("date_of_birth")
    @classmethod
    def _born(cls, value: date | None) -> date | None:
        if value is not None and not date(1900, 1, 1) <= value <= date.today():
            raise ValueError("must be between 1900 and today")
        return value


class SignalIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: SignalType
    council: str = Field(pattern=GSS_CODE.pattern)
    resident: ResidentIdentifiers
    attributes: dict[str, Any] = {}
    source: str = Field(min_length=1, max_length=100, examples=["newham-housing-rent"])
    observed_on: date
    expires_on: date | None = None

    @field_validator("observed_on")
    @classmethod
    def _not_future(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("must not be in the future")
        return value


@dataclass(frozen=True)
class Row:
    """A valid signal, attributes checked against its type, expiry settled."""

    line: int
    signal: SignalIn
    attributes: dict[str, Any]
    expires_on: date


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    reason: str


def check(line: int, raw: Any) -> Row | list[RowError]:
    """One row: a Row, or every reason it is refused."""
    try:
        signal = SignalIn.model_validate(raw)
    except ValidationError as exc:
        return [
            RowError(line, ".".join(map(str, e["loc"])) or "row", e["msg"]) for e in exc.errors()
        ]
    kind = CATALOGUE[signal.type]
    try:
        attributes = kind.attributes.model_validate(signal.attributes)
    except ValidationError as exc:
        return [
            RowError(line, ".".join(["attributes", *map(str, e["loc"])]), e["msg"])
            for e in exc.errors()
        ]
    person = signal.resident
    if not (person.date_of_birth or person.postcode or person.uprn):
        return [RowError(line, "resident", "needs a date of birth, postcode or UPRN to be matched")]
    expires = signal.expires_on or signal.observed_on + timedelta(days=kind.current_for_days)
    if expires <= signal.observed_on:
        return [RowError(line, "expires_on", "must be after observed_on")]
    return Row(line, signal, attributes.model_dump(mode="python"), expires)


_RESIDENT_COLUMNS = set(ResidentIdentifiers.model_fields)
_SIGNAL_COLUMNS = {"type", "council", "source", "observed_on", "expires_on"}


def from_csv_record(record: dict[str, str]) -> dict[str, Any]:
    """A flat CSV record: resident and signal columns by name; any other column is an
    attribute of the signal (``weeks``, ``amount``, ``stage`` …). Empty cells are absent."""
    cells = {k.strip(): v.strip() for k, v in record.items() if k and v is not None and v.strip()}
    return {
        **{k: v for k, v in cells.items() if k in _SIGNAL_COLUMNS},
        "resident": {k: v for k, v in cells.items() if k in _RESIDENT_COLUMNS},
        "attributes": {
            k: v
            for k, v in cells.items()
            if k not in _SIGNAL_COLUMNS and k not in _RESIDENT_COLUMNS
        },
    }


async def lines_of(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """The physical lines of a byte stream (ending LF or CRLF; a byte-order mark dropped),
    never holding more than a chunk and a line. A final newline does not start a line."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8-sig", errors="replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8-sig", errors="replace").rstrip("\r")


class Feed:
    """The records of an import, numbered by their line, with every line accounted for.

    Iterate it for ``(line, record)``; a record that cannot be read is still yielded (as an
    unreadable row, refused by :func:`check_parsed`), so that ``lines_read`` is always
    ``lines_skipped`` (a header, blank lines) plus the records yielded: no line is lost.
    """

    def __init__(self) -> None:
        self.lines_read = 0
        self.lines_skipped = 0
        self._records: AsyncIterator[tuple[int, Any]] | None = None

    def __aiter__(self) -> Feed:
        return self

    async def __anext__(self) -> tuple[int, Any]:
        if self._records is None:
            self._records = self._read()
        return await anext(self._records)

    def _read(self) -> AsyncIterator[tuple[int, Any]]:
        raise NotImplementedError


class _LineFeed(Feed):
    """One record a physical line; blank lines are skipped (counted, not rows)."""

    def __init__(self, lines: AsyncIterator[str]) -> None:
        super().__init__()
        self._lines = lines

    async def _read(self) -> AsyncIterator[tuple[int, Any]]:
        async for text in self._lines:
            self.lines_read += 1
            number = self.lines_read
            record = self._record(number, text) if text.strip() else _SKIP
            if record is _SKIP:
                self.lines_skipped += 1
                continue
            yield number, record

    def _record(self, number: int, text: str) -> Any:
        raise NotImplementedError


class NdjsonFeed(_LineFeed):
    def _record(self, number: int, text: str) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            return _Unreadable(f"not JSON: {exc.msg} (column {exc.colno})")
        except RecursionError:
            return _Unreadable("not JSON we can read: nested too deeply")


_UNCLOSED_QUOTE = (
    "a quoted cell is not closed on this line (a line break inside a cell is not supported: "
    "each record is one line)"
)


class CsvFeed(_LineFeed):
    """A header row (the first line that is not blank), then one record a line, each line
    parsed on its own: a quote left open spoils that line only, never the lines after it."""

    def __init__(self, lines: AsyncIterator[str]) -> None:
        super().__init__(lines)
        self.header: list[str] | None = None

    def _record(self, number: int, text: str) -> Any:
        cells = _cells(text)
        if self.header is None:
            if isinstance(cells, _Unreadable):
                raise Invalid(
                    "header", f"line {number}, the header row, cannot be read: {cells.reason}"
                )
            self.header = _header(number, cells)
            return _SKIP
        if isinstance(cells, _Unreadable):
            return _Unreadable(f"not CSV: {cells.reason}")
        if len(cells) != len(self.header):
            return _Unreadable(f"has {len(cells)} cells where the header has {len(self.header)}")
        for position, (name, cell) in enumerate(zip(self.header, cells, strict=True), start=1):
            if not name and cell.strip():
                return _Unreadable(f"cell {position} has a value but its column has no name")
        return from_csv_record(dict(zip(self.header, cells, strict=True)))


def _cells(text: str) -> list[str] | _Unreadable:
    if text.count('"') % 2:
        return _Unreadable(_UNCLOSED_QUOTE)
    try:
        return next(csv.reader([text], strict=True))
    except csv.Error as exc:
        return _Unreadable(str(exc))


def _header(number: int, cells: list[str]) -> list[str]:
    names = [cell.strip() for cell in cells]
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        raise Invalid("header", f"line {number}, the header row, repeats {', '.join(repeated)}")
    return names


class BatchFeed(Feed):
    """Values sent as one JSON batch: their place in the batch is their line."""

    def __init__(self, values: Iterable[Any]) -> None:
        super().__init__()
        self._values = values

    async def _read(self) -> AsyncIterator[tuple[int, Any]]:
        for value in self._values:
            self.lines_read += 1
            yield self.lines_read, value


def parse_ndjson(lines: AsyncIterator[str]) -> NdjsonFeed:
    """NDJSON: one JSON object a line; a line that is not JSON is one refused row."""
    return NdjsonFeed(lines)


def parse_csv(lines: AsyncIterator[str]) -> CsvFeed:
    """CSV with a header row, one record a physical line (see :class:`CsvFeed`)."""
    return CsvFeed(lines)


_SKIP = object()


@dataclass(frozen=True)
class _Unreadable:
    reason: str


def check_parsed(line: int, raw: Any) -> Row | list[RowError]:
    if isinstance(raw, _Unreadable):
        return [RowError(line, "row", raw.reason)]
    return check(line, raw)
