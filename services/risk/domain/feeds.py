"""Feed rows: what one signal looks like on the way in, from JSON, NDJSON or CSV, and the
reasons a row is refused (line, field, reason), so good rows are kept and bad ones reported.

A file is read one physical line at a time and every line is accounted for: it is skipped
(the CSV header, a blank line), it is a row (read or refused), or it is joined to the row
above it (a line break inside a quoted CSV cell): ``lines_read = rows + lines_skipped +
lines_joined``.

A quoted CSV cell may hold line breaks, and a broken quote never swallows the lines after it:

- a line whose quotes are unbalanced (an odd number of ``"``) starts a *candidate* record, and
  the physical lines after it are joined to it, the line break kept in the cell (``\\n``, also
  for a CRLF file), until the quotes balance, over at most :data:`MAX_LINES_IN_A_RECORD`
  physical lines;
- the candidate is one row, numbered by its first line, only if, once balanced, it parses as
  CSV into exactly as many cells as the header has;
- otherwise (the quotes do not balance within the bound, the file ends first, or the record
  is not CSV or has another number of cells) only its **first** line is refused (field
  ``row``: "a quoted cell is not closed …") and reading resumes at the very next physical
  line, so the lines after a broken quote are read as they would be without it.

At most ``MAX_LINES_IN_A_RECORD - 1`` lines are held ahead, so memory stays bounded. The
header is one line. NDJSON is one record a line.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.risk.domain.fast_rows import QuickCheck
from services.risk.domain.signals import CATALOGUE, SignalType
from shared.clock import london_today
from shared.errors import Invalid
from shared.identity import name_with_letters, normalise_postcode
from shared.input_policy import IsoDate, UnreadableJson, problems_in, read_json, validation_reason
from shared.vocabulary import GSS_CODE


class ResidentIdentifiers(BaseModel):
    """Used to derive the resident's keys, and sealed into a flag; never stored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    date_of_birth: IsoDate | None = None
    postcode: str | None = Field(default=None, max_length=16)
    uprn: str | None = Field(default=None, pattern=r"^[0-9]{1,12}$")
    council_reference: str | None = Field(default=None, max_length=64)
    address: str | None = Field(default=None, max_length=300)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)

    @field_validator("given_name", "family_name")
    @classmethod
    def _has_letters(cls, value: str) -> str:
        # Letterless names would give every such resident the same keys.
        return name_with_letters(value)

    @field_validator("postcode")
    @classmethod
    def _postcode(cls, value: str | None) -> str | None:
        return normalise_postcode(value) if value else None

    @field_validator("date_of_birth")
    @classmethod
    def _born(cls, value: date | None) -> date | None:
        if value is not None and not date(1900, 1, 1) <= value <= london_today():
            raise ValueError("must be between 1900 and today")
        return value


class SignalIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: SignalType
    council: str = Field(pattern=GSS_CODE.pattern)
    resident: ResidentIdentifiers
    attributes: dict[str, Any] = {}
    source: str = Field(min_length=1, max_length=100, examples=["newham-housing-rent"])
    observed_on: IsoDate
    expires_on: IsoDate | None = None

    @field_validator("observed_on")
    @classmethod
    def _not_future(cls, value: date) -> date:
        if value > london_today():
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
    """One row: a Row, or every reason it is refused. The shared input policy first (no
    control characters, bounded lengths, integers and dates), as for any request. The
    common row is proved valid by the quick check (``fast_rows.py``), which returns the very
    Row this would, or stands aside."""
    if (quick := _quick_check(line, raw)) is not None:
        return quick
    return check_with_models(line, raw)


def check_with_models(line: int, raw: Any) -> Row | list[RowError]:
    """:func:`check` by the definition itself: the input policy, then the models."""
    if refused := [RowError(line, field, reason) for field, reason in problems_in(raw)]:
        return refused
    try:
        signal = SignalIn.model_validate(raw)
    except ValidationError as exc:
        return [
            RowError(line, ".".join(map(str, e["loc"])) or "row", validation_reason(e))
            for e in exc.errors()
        ]
    kind = CATALOGUE[signal.type]
    try:
        attributes = kind.attributes.model_validate(signal.attributes)
    except ValidationError as exc:
        return [
            RowError(line, ".".join(["attributes", *map(str, e["loc"])]), validation_reason(e))
            for e in exc.errors()
        ]
    person = signal.resident
    if not (person.date_of_birth or person.postcode or person.uprn):
        return [RowError(line, "resident", "needs a date of birth, postcode or UPRN to be matched")]
    expires = signal.expires_on or signal.observed_on + timedelta(days=kind.current_for_days)
    if expires <= signal.observed_on:
        return [RowError(line, "expires_on", "must be after observed_on")]
    return Row(line, signal, attributes.model_dump(mode="python"), expires)


_quick_check = QuickCheck(SignalIn, ResidentIdentifiers, Row)

# What is taken off either end of a CSV cell: spaces and line breaks, Unicode's too, but no
# control character (``str.strip()`` takes U+000B, U+000C, U+001C to U+001F and U+0085 as
# space): such a character stays, for the input policy to refuse as it does in NDJSON.
PADDING = "\t\r\n" + "".join(
    c for c in map(chr, range(0x3001)) if c.isspace() and unicodedata.category(c) != "Cc"
)

_RESIDENT_COLUMNS = set(ResidentIdentifiers.model_fields)
_SIGNAL_COLUMNS = {"type", "council", "source", "observed_on", "expires_on"}


def from_csv_record(record: dict[str, str]) -> dict[str, Any]:
    """A flat CSV record: resident and signal columns by name; any other column is an
    attribute of the signal (``weeks``, ``amount``, ``stage`` …). Empty cells are absent."""
    cells = {
        k.strip(PADDING): v.strip(PADDING)
        for k, v in record.items()
        if k and v is not None and v.strip(PADDING)
    }
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
    """The physical lines of a byte stream (ending LF or CRLF; a byte-order mark starting a
    line dropped), never holding more than a chunk and a line. A final newline does not
    start a line. The complete lines of each chunk are decoded together (UTF-8, a byte that
    is not replaced), as each line would be on its own: no UTF-8 sequence spans a line feed."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        end = pending.rfind(b"\n")
        if end < 0:
            continue
        complete, pending = pending[:end], pending[end + 1 :]
        for line in complete.decode("utf-8", errors="replace").split("\n"):
            yield (line[1:] if line[:1] == "\ufeff" else line).rstrip("\r")
    if pending:
        yield pending.decode("utf-8-sig", errors="replace").rstrip("\r")


MAX_LINES_IN_A_RECORD = 10
"""The most physical lines one CSV record may span (a quoted cell holding line breaks)."""


class Feed:
    """The records of an import, numbered by their (first) line, with every line accounted for.

    Iterate it for ``(line, record)``; a record that cannot be read is still yielded (as an
    unreadable row, refused by :func:`check_parsed`), so that, once read to the end,
    ``lines_read`` is always ``lines_skipped`` (a header, blank lines) plus ``lines_joined``
    (the second and later lines of CSV records spanning lines) plus the records yielded: no
    line is lost.
    """

    def __init__(self) -> None:
        self.lines_read = 0
        self.lines_skipped = 0
        self.lines_joined = 0
        self._records: AsyncIterator[tuple[int, Any]] | None = None

    def __aiter__(self) -> AsyncIterator[tuple[int, Any]]:
        # ``async for`` reads the records themselves: no wrapper's step for every record.
        if self._records is None:
            self._records = self._read()
        return self._records

    async def __anext__(self) -> tuple[int, Any]:
        return await anext(self.__aiter__())

    def _read(self) -> AsyncIterator[tuple[int, Any]]:
        raise NotImplementedError


class _LineFeed(Feed):
    """Records starting on a physical line; blank lines are skipped (counted, not rows).

    Lines read ahead (see :class:`CsvFeed`) and handed back are read again, in order, before
    the next line of the stream; ``lines_read`` counts each line of the stream once.
    """

    def __init__(self, lines: AsyncIterator[str]) -> None:
        super().__init__()
        self._lines = lines
        self._ahead: deque[tuple[int, str]] = deque()

    async def _line(self) -> tuple[int, str] | None:
        """The next physical line and its number, or None at the end of the file."""
        if self._ahead:
            return self._ahead.popleft()
        text = await anext(self._lines, None)
        if text is None:
            return None
        self.lines_read += 1
        return self.lines_read, text

    def _give_back(self, lines: list[tuple[int, str]]) -> None:
        """Lines read ahead but not used: they are read again, in order, before any other."""
        self._ahead.extendleft(reversed(lines))

    async def _read(self) -> AsyncIterator[tuple[int, Any]]:
        while (line := await self._line()) is not None:
            number, text = line
            # (Blank is spaces only: a line of control characters is a row, and refused.)
            record = await self._record(number, text) if text.strip(PADDING) else _SKIP
            if record is _SKIP:
                self.lines_skipped += 1
                continue
            yield number, record

    async def _record(self, number: int, text: str) -> Any:
        raise NotImplementedError


class NdjsonFeed(_LineFeed):
    async def _record(self, number: int, text: str) -> Any:
        try:
            return read_json(text)
        except json.JSONDecodeError as exc:
            return _Unreadable(f"not JSON: {exc.msg} (column {exc.colno})")
        except UnreadableJson as exc:
            return _Unreadable(f"not JSON we can read: {exc}")


_UNCLOSED_QUOTE = "a quoted cell is not closed on this line"


class CsvFeed(_LineFeed):
    """A header row (the first line that is not blank, on one line), then the records.

    A line with balanced quotes is a record on its own. A line with a quote left open starts
    a candidate record spanning lines (see the module's docstring): it is one row if it
    closes within :data:`MAX_LINES_IN_A_RECORD` lines into as many cells as the header has;
    if not, that first line alone is refused and the lines read ahead are read again, so a
    broken quote spoils its own line only, never the lines after it.
    """

    def __init__(self, lines: AsyncIterator[str]) -> None:
        super().__init__(lines)
        self.header: list[str] | None = None
        self._plan = _Columns([])

    async def _record(self, number: int, text: str) -> Any:
        if self.header is None:
            cells = _cells(text)
            if isinstance(cells, _Unreadable):
                raise Invalid(
                    "header", f"line {number}, the header row, cannot be read: {cells.reason}"
                )
            self.header = _header(number, cells)
            self._plan = _Columns(self.header)
            return _SKIP
        if '"' not in text and "\r" not in text and "\x00" not in text:
            # No quote and nothing else the csv module reads specially: the cells are the
            # text between the commas, as the csv module would read them.
            return self._plan.record(text.split(","))
        if _quote_open(text):
            return await self._spanning(number, text, self.header)
        cells = _cells(text)
        if isinstance(cells, _Unreadable):
            return _Unreadable(f"not CSV: {cells.reason}")
        return self._row(cells, self.header)

    async def _spanning(self, number: int, text: str, header: list[str]) -> Any:
        """A record whose first line leaves a quote open: joined to the lines after it until
        its quotes balance, or, if it is not one record of the header's cells, refused on
        its first line, the lines read ahead given back."""
        ahead: list[tuple[int, str]] = []
        while True:
            if len(ahead) == MAX_LINES_IN_A_RECORD - 1:
                why = f"its quotes do not balance within {MAX_LINES_IN_A_RECORD} lines"
                break
            line = await self._line()
            if line is None:
                why = "the file ends before its quotes balance"
                break
            ahead.append(line)
            if not _quote_open(line[1]):
                continue
            # The quotes balance here (an odd number of them on each line).
            cells = _parse("\n".join([text, *(following for _, following in ahead)]))
            if isinstance(cells, list) and len(cells) == len(header):
                self.lines_joined += len(ahead)
                return self._row(cells, header)
            found = (
                f"is not CSV ({cells.reason})"
                if isinstance(cells, _Unreadable)
                else f"has {len(cells)} cells where the header has {len(header)}"
            )
            joined = f"line {line[0]}" if line[0] == number + 1 else f"lines {number + 1}-{line[0]}"
            why = f"read with {joined}, where its quotes balance, it {found}"
            break
        self._give_back(ahead)
        return _Unreadable(f"{_UNCLOSED_QUOTE}: {why}")

    def _row(self, cells: list[str], header: list[str]) -> Any:
        return self._plan.record(cells)


class _Columns:
    """Where each column of a header goes in a record (see :func:`from_csv_record`): the
    signal's, the resident's, or an attribute; a column without a name holds nothing."""

    def __init__(self, header: list[str]) -> None:
        self.width = len(header)
        self.nameless = [index for index, name in enumerate(header) if not name]
        self.signal = [(i, n) for i, n in enumerate(header) if n in _SIGNAL_COLUMNS]
        self.resident = [(i, n) for i, n in enumerate(header) if n in _RESIDENT_COLUMNS]
        self.attributes = [
            (i, n)
            for i, n in enumerate(header)
            if n and n not in _SIGNAL_COLUMNS and n not in _RESIDENT_COLUMNS
        ]

    def record(self, cells: list[str]) -> Any:
        """``from_csv_record(dict(zip(header, cells)))``, or why the cells are not a record."""
        if len(cells) != self.width:
            return _Unreadable(f"has {len(cells)} cells where the header has {self.width}")
        for index in self.nameless:
            if cells[index].strip(PADDING):
                return _Unreadable(f"cell {index + 1} has a value but its column has no name")
        record: dict[str, Any] = {}
        for index, name in self.signal:
            if value := cells[index].strip(PADDING):
                record[name] = value
        resident = record["resident"] = {}
        for index, name in self.resident:
            if value := cells[index].strip(PADDING):
                resident[name] = value
        attributes = record["attributes"] = {}
        for index, name in self.attributes:
            if value := cells[index].strip(PADDING):
                attributes[name] = value
        return record


def _quote_open(text: str) -> bool:
    return text.count('"') % 2 == 1


def _cells(text: str) -> list[str] | _Unreadable:
    """The cells of one physical line."""
    if _quote_open(text):
        return _Unreadable(_UNCLOSED_QUOTE)
    return _parse(text)


def _parse(text: str) -> list[str] | _Unreadable:
    """The cells of exactly one CSV record (its quoted cells may hold ``\n``)."""
    try:
        records = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        return _Unreadable(str(exc))
    if len(records) != 1:
        return _Unreadable(f"{len(records)} records, not one")
    return records[0]


def _header(number: int, cells: list[str]) -> list[str]:
    """The header's column names. A header missing a column every row needs, or naming one
    no signal has, refuses the file: every row would be refused for it, and a file sent
    without a header (its first row taken for one) would have every row's report name the
    first resident's details as its columns. So a name is repeated in a refusal only if it is
    a column's (or written as one could be)."""
    names = [cell.strip(PADDING) for cell in cells]
    where = f"line {number}, the header row,"
    if missing := sorted(_REQUIRED_COLUMNS.difference(names)):
        raise Invalid(
            "header",
            f"{where} has no {', '.join(missing)}: a feed's first line names its columns "
            f"({', '.join(sorted(_REQUIRED_COLUMNS))} at least; docs/risk.md)",
        )
    if unknown := [name for name in names if name and name not in _KNOWN_COLUMNS]:
        shown = [name for name in unknown if _LIKE_A_COLUMN.fullmatch(name)]
        others = len(unknown) - len(shown)
        named = ", ".join([*shown, *([f"{others} more"] if others else [])])
        raise Invalid("header", f"{where} names columns no signal has: {named}")
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        raise Invalid("header", f"{where} repeats {', '.join(repeated)}")
    return names


# Every row needs these; a row may hold any of the others (an attribute of its signal's type).
_REQUIRED_COLUMNS = frozenset(
    {n for n, f in SignalIn.model_fields.items() if f.is_required() and n != "resident"}
    | {n for n, f in ResidentIdentifiers.model_fields.items() if f.is_required()}
)
_KNOWN_COLUMNS = frozenset(
    _SIGNAL_COLUMNS
    | _RESIDENT_COLUMNS
    | {name for kind in CATALOGUE.values() for name in kind.attributes.model_fields}
)
_LIKE_A_COLUMN = re.compile(r"[a-z][a-z0-9_]{0,39}")


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
    """CSV with a header row, a record a line or, a quoted cell holding line breaks, up to
    :data:`MAX_LINES_IN_A_RECORD` lines (see :class:`CsvFeed`)."""
    return CsvFeed(lines)


_SKIP = object()


@dataclass(frozen=True)
class _Unreadable:
    reason: str


def check_parsed(line: int, raw: Any) -> Row | list[RowError]:
    if isinstance(raw, _Unreadable):
        return [RowError(line, "row", raw.reason)]
    return check(line, raw)
