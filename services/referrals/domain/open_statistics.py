"""Statistical disclosure control for the open statistics a council publishes each month
(the London Datastore): which counts of a package's tables are published and which are
withheld. Pure: no I/O. The method, and why, is in docs/open-statistics.md.

A table is a grid of counts (rows by columns, e.g. needs by who referred) with its margins:
each row's total, each column's total and the grand total. Margins are the sums of the
cells, so a published margin is a linear equation an attacker can use. Tables of one
package may share totals (**links**: e.g. the grand totals of two tables that count nearly
the same thing); the attacker is assumed to know how linked totals differ (e.g. that they
are equal), so the tables are protected together.

**Primary suppression counts people.** A cell counts needs, referrals or offers, and one
resident can be behind several of them: a cell of 10 needs can be 2 residents. So every
entry (cell or margin) that 1 to 9 distinct residents (``THRESHOLD`` = 10) contribute to is
withheld, whatever its count. A table that does not say who is behind its counts counts
people (each unit a resident). A zero is published: it says that nobody is in the cell. If
one of linked totals is withheld, so are the others (they would give it away).

**Secondary (complementary) suppression** by the hypercube method (in two dimensions, a
rectangle): for every withheld entry we make sure that four withheld entries of its table
(it and one other in its row, one in its column and the one where those meet, margins
included) form a rectangle along which the attacker can move it by any amount over a range
at least ``PROTECTION`` = 10 wide without changing a published number or making a cell
negative. When the rectangle moves a linked total, the tables that share it move along
rectangles of their own by the same amount (a **joint move**), so the linked totals stay
as far apart as they were. Among the (joint) moves wide enough we take the cheapest: fewest
margins newly withheld (users need the totals most), then the smallest counts newly
withheld, then the fewest entries. Withholding more never narrows a move already found, so
one pass over the entries to protect reaches the fixed point. Every row and column with a
withheld entry then holds at least two.

**No rounding.** Published counts are exact: they add up to the published totals.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

THRESHOLD = 10  # entries of 1 to THRESHOLD - 1 residents are withheld
PROTECTION = 10  # a withheld count's feasible values span at least this much
ALL = "all"  # the label of a margin: every area, every need, every measure
MARKER = "[c]"  # the GSS marker for a value withheld as confidential


class Dimension(StrEnum):
    """What a table's rows or columns are."""

    AREA = "area"
    NEED = "need"
    MEASURE = "measure"


class Suppression(StrEnum):
    PRIMARY = "primary"  # an entry of 1 to 9 residents
    SECONDARY = "secondary"  # withheld so that a primary one cannot be worked out


@dataclass(frozen=True)
class CountTable:
    """One month's counts of a council, e.g. referrals by need and source. ``counts`` holds
    the cells by (row, column); a cell left out is zero. ``measure`` names what is counted
    when neither rows nor columns are measures (e.g. ``referrals``).

    ``residents``: for each cell, the pseudonymous references of the residents behind its
    counts (each counted unit is one resident's; a resident may be behind several). Used
    only to count people (the threshold), never published. ``None``: the table counts
    people, each unit a resident of its own.

    The rows' and columns' labels are mutually exclusive categories: each counted unit is
    in one cell, so a margin is the sum of its cells. A **funnel** (stages such as
    referred, offered, helped, each unit counted in every stage it reached) is not: its
    "total" would count a unit once per stage, and the disclosure control's equations
    would be wrong. ``funnel=True`` says a table is one, and is refused: publish each stage
    as a table of its own. No table of the export is a funnel today (sources, need states
    and outcomes are each one per unit)."""

    name: str
    title: str
    description: str
    rows: Dimension
    columns: Dimension
    row_labels: tuple[str, ...]
    column_labels: tuple[str, ...]
    counts: Mapping[tuple[str, str], int] = field(default_factory=dict)
    measure: str | None = None
    residents: Mapping[tuple[str, str], frozenset[str]] | None = None
    funnel: bool = False

    def __post_init__(self) -> None:
        if self.funnel:
            raise ValueError(
                f"{self.name}: a funnel's stages overlap (a unit counts in every stage it "
                "reached), so its totals are not sums: publish each stage as a table of its own"
            )
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
        if self.residents is None:
            return
        for row, column in self.residents:
            if row not in self.row_labels or column not in self.column_labels:
                raise ValueError(f"{self.name}: residents for unknown cell ({row}, {column})")
        for row, column in itertools.product(self.row_labels, self.column_labels):
            count = self.counts.get((row, column), 0)
            people = len(self.residents.get((row, column), ()))
            # Each counted unit is one resident's: at most as many residents as units, and
            # at least one where anything is counted.
            if people > count or (count > 0) != (people > 0):
                raise ValueError(
                    f"{self.name}: ({row}, {column}) counts {count} from {people} residents"
                )

    def _cells(self, row: str, column: str) -> Iterator[tuple[str, str]]:
        rows = self.row_labels if row == ALL else (row,)
        columns = self.column_labels if column == ALL else (column,)
        return itertools.product(rows, columns)

    def count(self, row: str, column: str) -> int:
        """A cell or a margin: ``ALL`` as the row or the column sums over it."""
        return sum(self.counts.get(at, 0) for at in self._cells(row, column))

    def people(self, row: str, column: str) -> int:
        """The distinct residents behind a cell or a margin (a margin's are not the sum of
        its cells': one resident can be in several)."""
        if self.residents is None:
            return self.count(row, column)
        found: set[str] = set()
        for at in self._cells(row, column):
            found.update(self.residents.get(at, ()))
        return len(found)


# An entry of a package: (table name, row label, column label), ``ALL`` for a margin.
Entry = tuple[str, str, str]


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


# Positions in a table with its margins: (row, column) indices where index len(labels)
# is the margin (the total over that dimension). A corner of the package: (table, position).
Position = tuple[int, int]
Corner = tuple[int, Position]
# A corner of a move and how it changes when the entry protected rises by 1 (+1 or -1).
Step = tuple[Corner, int]
Cost = tuple[int, int, int]


@dataclass(frozen=True)
class _Grid:
    values: tuple[tuple[int, ...], ...]  # [row][column], margins last
    people: tuple[tuple[int, ...], ...]

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

    def weight(self, at: Position) -> int:
        # Every line of the grid says sum(weight * entry) == 0 with the margin weighted -1;
        # moving a rectangle by d * weight(corner) * (+1, -1, -1, +1) keeps every line.
        return (-1 if at[0] == self.total_row else 1) * (-1 if at[1] == self.total_column else 1)

    def positions(self) -> Iterator[Position]:
        return itertools.product(range(len(self.values)), range(len(self.values[0])))

    def rectangles(self, at: Position) -> Iterator[tuple[Position, ...]]:
        """Every rectangle with ``at`` as its first corner."""
        row, column = at
        for other_row in range(self.total_row + 1):
            if other_row == row:
                continue
            for other_column in range(self.total_column + 1):
                if other_column != column:
                    yield at, (row, other_column), (other_row, column), (other_row, other_column)

    def directions(self, corners: tuple[Position, ...]) -> tuple[int, ...]:
        """How each corner of a rectangle changes when its first corner rises by 1."""
        own = self.weight(corners[0])
        return tuple(
            turn * self.weight(corner) * own
            for corner, turn in zip(corners, (1, -1, -1, 1), strict=True)
        )


def _grid(table: CountTable) -> _Grid:
    rows = (*table.row_labels, ALL)
    columns = (*table.column_labels, ALL)
    return _Grid(
        tuple(tuple(table.count(r, c) for c in columns) for r in rows),
        tuple(tuple(table.people(r, c) for c in columns) for r in rows),
    )


def _position(table: CountTable, row: str, column: str) -> Position:
    def index(labels: tuple[str, ...], label: str) -> int:
        if label == ALL:
            return len(labels)
        if label not in labels:
            raise ValueError(f"links: {table.name} has no {label!r}")
        return labels.index(label)

    return index(table.row_labels, row), index(table.column_labels, column)


class _Package:
    """The tables of a package, their links, and what is withheld so far."""

    def __init__(
        self,
        tables: Sequence[CountTable],
        links: Sequence[Sequence[Entry]],
        threshold: int,
        protection: int,
    ) -> None:
        self.grids = [_grid(t) for t in tables]
        self.protection = protection
        index = {t.name: i for i, t in enumerate(tables)}
        if len(index) != len(tables):
            raise ValueError("tables: names repeat")
        self.group_of: dict[Corner, int] = {}
        self.groups: list[tuple[Corner, ...]] = []
        for link in links:
            copies: list[Corner] = []
            for name, row, column in link:
                if name not in index:
                    raise ValueError(f"links: no table {name!r}")
                corner = (index[name], _position(tables[index[name]], row, column))
                if corner in self.group_of:
                    raise ValueError(f"links: {(name, row, column)} is in two links")
                self.group_of[corner] = len(self.groups)
                copies.append(corner)
            if len(copies) < 2 or len({t for t, _ in copies}) != len(copies):
                raise ValueError(f"links: {link} must name entries of two or more tables")
            self.groups.append(tuple(copies))
        self.tables_of_group = [frozenset(t for t, _ in group) for group in self.groups]
        self.groups_in = [
            frozenset(g for g, tables_of in enumerate(self.tables_of_group) if i in tables_of)
            for i in range(len(tables))
        ]
        self.withheld: dict[Corner, Suppression] = {
            (t, at): Suppression.PRIMARY
            for t, grid in enumerate(self.grids)
            for at in grid.positions()
            if 0 < grid.people[at[0]][at[1]] < threshold
        }
        # A linked total withheld would be read from the others: they are withheld too.
        for group in self.groups:
            if any(c in self.withheld for c in group):
                for copy in group:
                    self.withheld.setdefault(copy, Suppression.SECONDARY)

    def steps(self, table: int, rectangle: tuple[Position, ...], sign: int = 1) -> list[Step]:
        """A rectangle's corners and how each changes when its first changes by ``sign``."""
        directions = self.grids[table].directions(rectangle)
        return [((table, c), d * sign) for c, d in zip(rectangle, directions, strict=True)]

    def cost(self, steps: Sequence[Step]) -> Cost:
        new = {c for c, _ in steps if c not in self.withheld}
        margins = sum(1 for t, at in new if not self.grids[t].is_cell(at))
        return margins, sum(self.grids[t].value(at) for t, at in new), len(new)

    def bounds(
        self, steps: Sequence[Step], rising: float = math.inf, falling: float = math.inf
    ) -> tuple[float, float]:
        """How far the protected entry can rise and fall along the move: until a cell moving
        against it, or with it (itself included), reaches 0."""
        for (t, at), direction in steps:
            grid = self.grids[t]
            if grid.is_cell(at):
                if direction > 0:
                    falling = min(falling, grid.value(at))
                else:
                    rising = min(rising, grid.value(at))
        return rising, falling

    def moved_groups(self, steps: Sequence[Step]) -> dict[int, int]:
        return {self.group_of[c]: d for c, d in steps if c in self.group_of}

    def protect_all(self) -> None:
        for corner in list(self.withheld):
            for extra in self.protect_one(corner):
                self.withheld[extra] = Suppression.SECONDARY

    def protect_one(self, corner: Corner) -> list[Corner]:
        """The entries to withhold as well so that ``corner`` lies on a wide enough move."""
        table, at = corner
        grid = self.grids[table]
        best: tuple[Cost, list[Corner]] | None = None
        for rectangle in grid.rectangles(at):
            steps = self.steps(table, rectangle)
            if best is not None and self.cost(steps) >= best[0]:
                continue  # more corners only cost more
            rising, falling = self.bounds(steps)
            if rising + falling < self.protection:
                continue
            joint = self.complete(steps, self.moved_groups(steps), {table}, rising, falling)
            if joint is None:
                continue
            cost = self.cost(joint)
            if best is None or cost < best[0]:
                best = cost, sorted({c for c, _ in joint if c not in self.withheld})
                if not best[1]:
                    return []
        if best is None:
            # Unlinked, the rectangle through the entry's row total, column total and the
            # grand total always fits (only the cell itself is bound below); linked tables
            # whose totals can be moved together fit too. Links that cannot be are refused.
            raise ValueError(f"links: no joint move protects entry {at} of table {table}")
        return best[1]

    def complete(
        self,
        steps: list[Step],
        moved: dict[int, int],
        fixed: set[int],
        rising: float,
        falling: float,
    ) -> list[Step] | None:
        """A joint move: ``steps`` and, in every other table holding a linked total they
        move, a rectangle that moves it by as much (and moves no total of a table that is
        already fixed); ``None`` if there is none wide enough."""
        pending = [
            t for t in range(len(self.grids)) if t not in fixed and self.groups_in[t] & moved.keys()
        ]
        if not pending:
            return steps
        table = pending[0]
        required = {g: d for g, d in moved.items() if g in self.groups_in[table]}
        for rectangle_steps, extras in self.candidates(table, required, fixed):
            r, f = self.bounds(rectangle_steps, rising, falling)
            if r + f < self.protection:
                continue
            joint = self.complete(
                steps + rectangle_steps, {**moved, **extras}, fixed | {table}, r, f
            )
            if joint is not None:
                return joint
        return None

    def candidates(
        self, table: int, required: dict[int, int], fixed: set[int]
    ) -> list[tuple[list[Step], dict[int, int]]]:
        """The rectangles of ``table`` that move its copies of the ``required`` totals as
        given, cheapest first, with the other linked totals each moves."""
        grid = self.grids[table]
        group, direction = next(iter(required.items()))
        (through,) = [at for t, at in self.groups[group] if t == table]
        found: list[tuple[Cost, list[Step], dict[int, int]]] = []
        for rectangle in grid.rectangles(through):
            steps = self.steps(table, rectangle, direction)
            moved = self.moved_groups(steps)
            if any(moved.get(g) != d for g, d in required.items()):
                continue
            extras = {g: d for g, d in moved.items() if g not in required}
            if any(self.tables_of_group[g] & fixed for g in extras):
                continue
            found.append((self.cost(steps), steps, extras))
        found.sort(key=lambda f: f[0])
        return [(steps, extras) for _, steps, extras in found]


def protect_package(
    tables: Sequence[CountTable],
    links: Sequence[Sequence[Entry]] = (),
    *,
    threshold: int = THRESHOLD,
    protection: int = PROTECTION,
) -> tuple[ProtectedTable, ...]:
    """The tables as published together: primary then secondary suppression (see the
    module). ``links``: groups of entries of different tables that count the same (or
    nearly the same) total; an attacker is assumed to know how they differ."""
    package = _Package(tables, links, threshold, protection)
    package.protect_all()
    published = []
    for t, table in enumerate(tables):
        grid = package.grids[t]
        rows = (*table.row_labels, ALL)
        columns = (*table.column_labels, ALL)
        published.append(
            ProtectedTable(
                table,
                tuple(
                    PublishedCell(
                        rows[r],
                        columns[c],
                        None if (t, (r, c)) in package.withheld else grid.value((r, c)),
                        package.withheld.get((t, (r, c))),
                    )
                    for r, c in grid.positions()
                ),
            )
        )
    return tuple(published)


def protect(
    table: CountTable, *, threshold: int = THRESHOLD, protection: int = PROTECTION
) -> ProtectedTable:
    """One table as published on its own (see the module)."""
    (published,) = protect_package([table], threshold=threshold, protection=protection)
    return published
