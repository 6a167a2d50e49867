"""Disclosure control of the open statistics, checked by an attacker: for every withheld
count, linear programming (scipy's linprog) finds the smallest and largest value it can
take given every published cell and margin and that counts are not negative. Each interval
must be at least PROTECTION wide, so no withheld count can be pinned, nor shown to be
under 10. The same attacker recovers counts from a table with primary suppression only:
the check can fail."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog  # type: ignore[import-untyped]  # scipy ships no stubs

from services.referrals.domain.open_statistics import (
    ALL,
    PROTECTION,
    THRESHOLD,
    CountTable,
    Dimension,
    ProtectedTable,
    PublishedCell,
    Suppression,
    protect,
)


def table_of(grid: list[list[int]]) -> CountTable:
    rows = tuple(f"area{r}" for r in range(len(grid)))
    columns = tuple(f"need{c}" for c in range(len(grid[0])))
    return CountTable(
        name="referrals_by_area_and_need",
        title="Referrals by area and need",
        description="test table",
        rows=Dimension.AREA,
        columns=Dimension.NEED,
        row_labels=rows,
        column_labels=columns,
        counts={(r, c): grid[i][j] for i, r in enumerate(rows) for j, c in enumerate(columns)},
        measure="referrals",
    )


def attacker_bounds(published: ProtectedTable) -> dict[tuple[str, str], tuple[float, float]]:
    """The feasible range of every withheld entry, from the published entries alone."""
    table = published.table
    cells = [(r, c) for r in table.row_labels for c in table.column_labels]
    unknown = [at for at in cells if published.cell(*at).value is None]
    index = {at: i for i, at in enumerate(unknown)}

    def line(row: str, column: str) -> list[tuple[str, str]]:
        return [(r, c) for r, c in cells if row in (ALL, r) and column in (ALL, c)]

    def as_unknowns(row: str, column: str) -> tuple[np.ndarray, int]:
        """The entry as coefficients over the unknown cells plus the published part."""
        coefficients = np.zeros(len(unknown))
        known = 0
        for at in line(row, column):
            value = published.cell(*at).value
            if value is None:
                coefficients[index[at]] = 1
            else:
                known += value
        return coefficients, known

    equations, right = [], []
    for entry in published.cells:
        if entry.value is not None and ALL in (entry.row, entry.column):
            coefficients, known = as_unknowns(entry.row, entry.column)
            equations.append(coefficients)
            right.append(entry.value - known)
    bounds: dict[tuple[str, str], tuple[float, float]] = {}
    for entry in published.withheld:
        objective, known = as_unknowns(entry.row, entry.column)
        ends = []
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
        bounds[(entry.row, entry.column)] = (ends[0], ends[1])
    return bounds


def primary_only(table: CountTable) -> ProtectedTable:
    """The naive method: withhold the counts from 1 to 9 and nothing else."""
    rows, columns = (*table.row_labels, ALL), (*table.column_labels, ALL)
    return ProtectedTable(
        table,
        tuple(
            PublishedCell(r, c, None, Suppression.PRIMARY)
            if 0 < table.count(r, c) < THRESHOLD
            else PublishedCell(r, c, table.count(r, c), None)
            for r in rows
            for c in columns
        ),
    )


# Small counts often, so that most tables need suppression; zeros too.
counts = st.one_of(st.integers(0, 9), st.integers(0, 9), st.integers(10, 80))
grids = st.integers(1, 5).flatmap(
    lambda columns: st.lists(
        st.lists(counts, min_size=columns, max_size=columns), min_size=1, max_size=5
    )
)


@settings(max_examples=200, deadline=None)
@given(grids)
def test_no_withheld_count_can_be_narrowed_below_the_protection(grid: list[list[int]]) -> None:
    table = table_of(grid)
    published = protect(table)
    for (row, column), (low, high) in attacker_bounds(published).items():
        true = table.count(row, column)
        assert low - 1e-6 <= true <= high + 1e-6
        assert high - low >= PROTECTION - 1e-6, (row, column, true, low, high, published)


@settings(max_examples=200, deadline=None)
@given(grids)
def test_exactly_the_small_counts_are_primary_and_the_rest_is_published_exactly(
    grid: list[list[int]],
) -> None:
    table = table_of(grid)
    published = protect(table)
    for entry in published.cells:
        true = table.count(entry.row, entry.column)
        small = 0 < true < THRESHOLD
        assert (entry.suppression is Suppression.PRIMARY) == small
        assert entry.value is None or entry.value == true
        assert (entry.value is None) == (entry.suppression is not None)
    # Every row and column (margins included) with a withheld entry holds at least two.
    for row in (*table.row_labels, ALL):
        in_row = [e for e in published.withheld if e.row == row]
        assert len(in_row) != 1
    for column in (*table.column_labels, ALL):
        in_column = [e for e in published.withheld if e.column == column]
        assert len(in_column) != 1


def test_a_zero_is_published_and_a_table_of_large_counts_is_published_whole() -> None:
    published = protect(table_of([[0, 25], [12, 40]]))
    assert not published.withheld
    assert published.cell("area0", "need0").value == 0
    assert published.cell(ALL, ALL).value == 77


def test_the_smallest_counts_are_withheld_with_a_small_one_and_totals_stay() -> None:
    published = protect(table_of([[3, 50, 12], [40, 60, 11], [30, 70, 90]]))
    withheld = {(e.row, e.column): e.suppression for e in published.withheld}
    # The 3's cheapest rectangle: 12 beside it in its row, 40 in its column and 11 where
    # they meet (63 withheld in all; 12, 30 and 90 would be 132); no total has to go.
    assert withheld == {
        ("area0", "need0"): Suppression.PRIMARY,
        ("area0", "need2"): Suppression.SECONDARY,
        ("area1", "need0"): Suppression.SECONDARY,
        ("area1", "need2"): Suppression.SECONDARY,
    }


def test_a_small_row_total_is_withheld_and_protected() -> None:
    published = protect(table_of([[2, 3], [40, 60], [30, 20]]))
    assert published.cell("area0", ALL).suppression is Suppression.PRIMARY
    for _, (low, high) in attacker_bounds(published).items():
        assert high - low >= PROTECTION


def test_the_attacker_recovers_a_count_that_only_primary_suppression_withheld() -> None:
    table = table_of([[3, 20], [15, 40]])
    naive = primary_only(table)
    low, high = attacker_bounds(naive)[("area0", "need0")]
    assert low == pytest.approx(3) and high == pytest.approx(3)  # the row total gives it away


@settings(max_examples=100, deadline=None)
@given(grids)
def test_primary_suppression_alone_fails_the_attacker_check_when_a_small_count_stands_alone(
    grid: list[list[int]],
) -> None:
    table = table_of(grid)
    naive = primary_only(table)
    alone = [
        e
        for e in naive.withheld
        if e.row != ALL
        and e.column != ALL
        and naive.cell(e.row, ALL).value is not None
        and sum(1 for o in naive.withheld if o.row == e.row) == 1
    ]
    bounds = attacker_bounds(naive)
    for entry in alone:
        low, high = bounds[(entry.row, entry.column)]
        assert low == pytest.approx(high) == pytest.approx(table.count(entry.row, entry.column))
