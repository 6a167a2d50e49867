"""Statistical disclosure control for the open statistics a council publishes each month
(the London Datastore): which counts of a table are published and which are withheld.
Pure: no I/O. The method, and why, is in docs/open-statistics.md.

A table is a grid of counts (rows by columns, e.g. areas by needs) with its margins: each
row's total, each column's total and the grand total. Margins are the sums of the cells, so
a published margin is a linear equation an attacker can use.

**Primary suppression.** Every count from 1 to 9 (``THRESHOLD`` = 10), cell or margin, is
withheld. A zero is published: it says that nobody is in the cell, which discloses nothing
about a person.

**Secondary (complementary) suppression** by the hypercube method (in two dimensions, a
rectangle): for every primary cell we make sure that four withheld entries of the table
(the cell and one other in its row, one in its column and the one where those meet, margins
included) form a rectangle along which the attacker can move any amount between 0 and a
width of at least ``PROTECTION`` = 10 without changing a published number or making a cell
negative. So every withheld count is consistent with values at least 10 apart, whatever
the attacker does with the published cells and margins: the smallest feasible value and
the largest are 10 or more apart (the unit test checks this with a linear-programming
attacker). Among the rectangles wide enough we take the cheapest: fewest margins newly
withheld (users need the totals most), then the smallest counts newly withheld, then the
fewest cells. Withholding more never narrows a rectangle already found, so one pass over
the primary cells reaches the fixed point. Every row and column with a withheld entry then
holds at least two.

**No rounding.** Published counts are exact: they add up to the published totals.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

THRESHOLD = 10  # counts from 1 to THRESHOLD - 1 are withheld
PROTECTION = 10  # a withheld count's feasible values span at least this much
ALL = "all"  # the label of a margin: every area, every need, every measure
MARKER = "[c]"  # the GSS marker for a value withheld as confidential


class Dimension(StrEnum):
    """What a table's rows or columns are."""

    AREA = "area"
    NEED = "need"
    MEASURE = "measure"


class Suppression(StrEnum):
    PRIMARY = "primary"  # a count from 1 to 9
    SECONDARY = "secondary"  # withheld so that a primary one cannot be worked out


@dataclass(frozen=True)
class CountTable:
    """One month's counts of a council, e.g. referrals by area and need. ``counts`` holds
    the cells by (row, column); a cell left out is zero. ``measure`` names what is counted
    when neither rows nor columns are measures (e.g. ``referrals``)."""

    name: str
    title: str
    description: str
    rows: Dimension
    columns: Dimension
    row_labels: tuple[str, ...]
    column_labels: tuple[str, ...]
    counts: Mapping[tuple[str, str], int] = field(default_factory=dict)
    measure: str | None = None

    def __post_init__(self) -> None:
        if self.rows == self.columns:
            raise ValueError(f"{self.name}: rows and columns are both {self.rows}")
        if (self.measure is None) != (Dimension.MEASURE in (self.rows, self.columns)):
            raise ValueError(f"{self.name}: name the measure unless rows or columns are measures")
        for labels in (self.row_labels, self.column_labels):
            if not labels:
                raise ValueError(f"{self.name}: a table needs at least one row and one column")
            if len(set(labels)) != len(labels):
                raise ValueError(f"{self.name}: labels repeat: {labels}")
            if ALL in labels or "" in labels:
                raise ValueError(f"{self.name}: {ALL!r} and empty labels are kept for margins")
        for (row, column), count in self.counts.items():
            if row not in self.row_labels or column not in self.column_labels:
                raise ValueError(f"{self.name}: count for unknown cell ({row}, {column})")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"{self.name}: count for ({row}, {column}) is {count!r}")

    def count(self, row: str, column: str) -> int:
        """A cell or a margin: ``ALL`` as the row or the column sums over it."""
        rows = self.row_labels if row == ALL else (row,)
        columns = self.column_labels if column == ALL else (column,)
        return sum(self.counts.get((r, c), 0) for r in rows for c in columns)


@dataclass(frozen=True)
class PublishedCell:
    """A cell or margin as published: its count, or ``None`` and why it was withheld."""

    row: str
    column: str
    value: int | None
    suppression: Suppression | None


@dataclass(frozen=True)
class ProtectedTable:
    """A table as published: every cell and margin, row by row (each row's total last,
    the column totals as the last row)."""

    table: CountTable
    cells: tuple[PublishedCell, ...]

    def cell(self, row: str, column: str) -> PublishedCell:
        return self._by_position[(row, column)]

    @cached_property
    def _by_position(self) -> dict[tuple[str, str], PublishedCell]:
        return {(c.row, c.column): c for c in self.cells}

    @property
    def withheld(self) -> tuple[PublishedCell, ...]:
        return tuple(c for c in self.cells if c.value is None)


# Positions in the table with its margins: (row, column) indices where index len(labels)
# is the margin (the total over that dimension).
Position = tuple[int, int]


@dataclass(frozen=True)
class _Grid:
    values: tuple[tuple[int, ...], ...]  # [row][column], margins last

    @property
    def total_row(self) -> int:
        return len(self.values) - 1

    @property
    def total_column(self) -> int:
        return len(self.values[0]) - 1

    def is_cell(self, at: Position) -> bool:
        """A cell proper (not a margin): only cells are bound to be non-negative; a margin
        is a sum of cells."""
        return at[0] != self.total_row and at[1] != self.total_column

    def value(self, at: Position) -> int:
        return self.values[at[0]][at[1]]

    def weight(self, row: int, column: int) -> int:
        # Every line of the grid says sum(weight * entry) == 0 with the margin weighted -1;
        # moving a rectangle by d * weight(corner) * (+1, -1, -1, +1) keeps every line.
        return (-1 if row == self.total_row else 1) * (-1 if column == self.total_column else 1)

    def positions(self) -> Iterator[Position]:
        return itertools.product(range(len(self.values)), range(len(self.values[0])))


def _grid(table: CountTable) -> _Grid:
    rows = (*table.row_labels, ALL)
    columns = (*table.column_labels, ALL)
    return _Grid(tuple(tuple(table.count(r, c) for c in columns) for r in rows))


def _rectangle_width(grid: _Grid, corners: tuple[Position, Position, Position, Position]) -> float:
    """How far apart two tables can be in the first corner when they differ only along
    this rectangle: it rises until a cell moving against it reaches 0, and falls until a
    cell moving with it does (itself included)."""
    first, *_ = corners
    sense = (1, -1, -1, 1)
    own = grid.weight(*first)
    rising = math.inf
    falling = math.inf
    for corner, turn in zip(corners, sense, strict=True):
        if not grid.is_cell(corner):
            continue
        moves_with_first = turn * grid.weight(*corner) * own > 0
        if moves_with_first:
            falling = min(falling, grid.value(corner))
        else:
            rising = min(rising, grid.value(corner))
    return rising + falling


def _cost(grid: _Grid, new: list[Position]) -> tuple[int, int, int]:
    margins = sum(1 for at in new if not grid.is_cell(at))
    return margins, sum(grid.value(at) for at in new), len(new)


def _protect_one(
    grid: _Grid, at: Position, withheld: dict[Position, Suppression], protection: int
) -> list[Position]:
    """The entries to withhold as well so that ``at`` sits on a wide enough rectangle."""
    best: tuple[tuple[int, int, int], list[Position]] | None = None
    row, column = at
    for other_row in range(grid.total_row + 1):
        if other_row == row:
            continue
        for other_column in range(grid.total_column + 1):
            if other_column == column:
                continue
            corners = (at, (row, other_column), (other_row, column), (other_row, other_column))
            if _rectangle_width(grid, corners) < protection:
                continue
            new = [c for c in corners if c not in withheld]
            cost = _cost(grid, new)
            if best is None or cost < best[0]:
                best = cost, new
                if not new:
                    return []
    # The rectangle through the cell's row total, column total and the grand total always
    # fits: only the cell itself is bound below, so the rest can rise without limit.
    assert best is not None
    return best[1]


def protect(
    table: CountTable, *, threshold: int = THRESHOLD, protection: int = PROTECTION
) -> ProtectedTable:
    """The table as published: primary then secondary suppression (see the module)."""
    grid = _grid(table)
    withheld = {
        at: Suppression.PRIMARY for at in grid.positions() if 0 < grid.value(at) < threshold
    }
    for at in [a for a, why in withheld.items() if why is Suppression.PRIMARY]:
        for extra in _protect_one(grid, at, withheld, protection):
            withheld[extra] = Suppression.SECONDARY
    rows = (*table.row_labels, ALL)
    columns = (*table.column_labels, ALL)
    return ProtectedTable(
        table,
        tuple(
            PublishedCell(
                rows[r],
                columns[c],
                None if (r, c) in withheld else grid.value((r, c)),
                withheld.get((r, c)),
            )
            for r, c in grid.positions()
        ),
    )
