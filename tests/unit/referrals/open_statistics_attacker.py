"""The attacker of the open statistics, shared by the unit and integration tests: from
every published cell and margin of a whole package, that counts are not negative, and the
exact difference between totals two tables share (the worst case: they may be known to be
equal), linear programming (scipy's linprog) finds the smallest and the largest value each
withheld entry can take."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.optimize import linprog  # type: ignore[import-untyped]  # scipy ships no stubs

from services.referrals.domain.open_statistics import ALL, Entry, ProtectedTable

Cell = tuple[str, str, str]  # (table, row, column) of a cell proper


def package_bounds(
    published: Sequence[ProtectedTable],
    links: Sequence[Sequence[Entry]] = (),
    differences: Mapping[tuple[Entry, Entry], int] | None = None,
) -> dict[Entry, tuple[float, float]]:
    """The feasible range of every withheld entry of the package. ``links``: the totals
    tables share; the attacker knows how each copy differs from the link's first (from
    ``differences`` by (first, copy), default the true difference, which the tables give)."""
    by_name = {p.table.name: p for p in published}
    cells: list[Cell] = [
        (p.table.name, r, c)
        for p in published
        for r in p.table.row_labels
        for c in p.table.column_labels
    ]
    unknown = [at for at in cells if by_name[at[0]].cell(at[1], at[2]).value is None]
    index = {at: i for i, at in enumerate(unknown)}

    def as_unknowns(entry: Entry) -> tuple[np.ndarray, int]:
        """The entry as coefficients over the unknown cells plus the published part."""
        name, row, column = entry
        table = by_name[name].table
        coefficients = np.zeros(len(unknown))
        known = 0
        for r in table.row_labels if row == ALL else (row,):
            for c in table.column_labels if column == ALL else (column,):
                value = by_name[name].cell(r, c).value
                if value is None:
                    coefficients[index[(name, r, c)]] = 1
                else:
                    known += value
        return coefficients, known

    equations: list[np.ndarray] = []
    right: list[float] = []
    for p in published:
        for entry in p.cells:
            if entry.value is not None and ALL in (entry.row, entry.column):
                coefficients, known = as_unknowns((p.table.name, entry.row, entry.column))
                equations.append(coefficients)
                right.append(entry.value - known)
    for link in links:
        first, *others = link
        for other in others:
            if differences is not None and (first, other) in differences:
                gap = differences[(first, other)]
            else:
                gap = by_name[first[0]].table.count(*first[1:]) - by_name[other[0]].table.count(
                    *other[1:]
                )
            a, known_a = as_unknowns(first)
            b, known_b = as_unknowns(other)
            # first - other == gap, over the unknowns.
            equations.append(a - b)
            right.append(gap - known_a + known_b)

    bounds: dict[Entry, tuple[float, float]] = {}
    for p in published:
        for entry in p.withheld:
            at = (p.table.name, entry.row, entry.column)
            objective, known = as_unknowns(at)
            ends: list[float] = []
            for sense in (1, -1):
                result = linprog(
                    sense * objective,
                    A_eq=np.array(equations) if equations else None,
                    b_eq=np.array(right) if right else None,
                    bounds=(0, None),
                    method="highs",
                )
                if result.status == 3:  # unbounded: only the maximum can be
                    assert sense == -1
                    ends.append(math.inf)
                    continue
                assert result.status == 0, result.message
                ends.append(sense * result.fun + known)
            bounds[at] = (ends[0], ends[1])
    return bounds
