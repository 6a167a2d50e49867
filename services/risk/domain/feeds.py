"""Feed rows: what one signal looks like on the way in, from JSON, NDJSON or CSV, and the
reasons a row is refused (line, field, reason), so good rows are kept and bad ones reported.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.risk.domain.signals import CATALOGUE, SignalType
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
    """Text lines from a byte stream, never holding more than a chunk and a line."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8-sig", errors="replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8-sig", errors="replace").rstrip("\r")


async def parse_ndjson(lines: AsyncIterator[str]) -> AsyncIterator[tuple[int, Any]]:
    number = 0
    async for line in lines:
        number += 1
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, _Unreadable(f"not JSON: {exc.msg}")


async def parse_csv(lines: AsyncIterator[str]) -> AsyncIterator[tuple[int, Any]]:
    """CSV with a header row; the line number is the record's first line in the file. A
    record is complete when its quotes balance (a quoted cell may hold a line break)."""
    buffer: list[str] = []
    quotes = 0
    header: list[str] | None = None
    number = 0
    async for line in lines:
        number += 1
        buffer.append(line)
        quotes += line.count('"')
        if quotes % 2:
            continue
        first_line = number - len(buffer) + 1
        error: str | None = None
        try:
            cells = next(csv.reader(["\n".join(buffer)], strict=True), [])
        except csv.Error as exc:
            cells, error = [], str(exc)
        buffer, quotes = [], 0
        if error:
            yield first_line, _Unreadable(f"not CSV: {error}")
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = [cell.strip() for cell in cells]
            continue
        if len(cells) != len(header):
            yield (
                first_line,
                _Unreadable(f"has {len(cells)} cells where the header has {len(header)}"),
            )
            continue
        yield first_line, from_csv_record(dict(zip(header, cells, strict=True)))


@dataclass(frozen=True)
class _Unreadable:
    reason: str


def check_parsed(line: int, raw: Any) -> Row | list[RowError]:
    if isinstance(raw, _Unreadable):
        return [RowError(line, "row", raw.reason)]
    return check(line, raw)
