"""Disclosure control of the open statistics, checked by an attacker: for every withheld
count, linear programming (scipy's linprog, ``open_statistics_attacker``) finds the
smallest and largest value it can take given every published cell and margin of the
package, the exact differences of the totals its tables share, and that counts are not
negative. Each interval must be at least PROTECTION wide, so no withheld count can be
pinned, nor shown to be under 10. Entries are withheld by the residents behind them, not
their counts. The same attacker recovers counts from a table with primary suppression
only, and a shared total from tables protected apart: the check can fail."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.referrals.domain.open_statistics import (
    ALL,
    PROTECTION,
    THRESHOLD,
    CountTable,
    Dimension,
    Entry,
    ProtectedTable,
    PublishedCell,
    Suppression,
    protect,
    protect_package,
)
from tests.unit.referrals.open_statistics_attacker import package_bounds


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
    """The feasible range of every withheld entry of one table, from its published entries."""
    return {(row, column): ends for (_, row, column), ends in package_bounds([published]).items()}


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


# -- people, not needs ---------------------------------------------------------------------


def with_residents(grid: list[list[frozenset[str]]], counts: list[list[int]]) -> CountTable:
    table = table_of(counts)
    return CountTable(
        **{
            **table.__dict__,
            "residents": {
                (r, c): grid[i][j]
                for i, r in enumerate(table.row_labels)
                for j, c in enumerate(table.column_labels)
            },
        }
    )


@st.composite
def tables_with_residents(draw: st.DrawFn) -> CountTable:
    """Counts, and for each the residents behind it, from a small pool: one resident is
    often behind several cells, and behind several units of one cell."""
    grid = draw(grids)
    pool = [f"resident{i}" for i in range(draw(st.integers(1, 30)))]
    residents = [
        [
            frozenset(
                draw(st.lists(st.sampled_from(pool), min_size=1, max_size=count)) if count else ()
            )
            for count in row
        ]
        for row in grid
    ]
    return with_residents(residents, grid)


def test_a_cell_of_many_needs_from_few_residents_is_withheld_and_protected() -> None:
    two = frozenset({"a", "b"})
    many = [frozenset(f"p{i}-{j}" for j in range(40)) for i in range(4)]
    # 12 needs from 2 residents; the rest counts one need per resident.
    table = with_residents(
        [[two, many[0]], [many[1], many[2]]],
        [[12, 40], [40, 40]],
    )
    published = protect(table)
    assert published.cell("area0", "need0").suppression is Suppression.PRIMARY
    assert table.people("area0", "need0") == 2 and table.count("area0", "need0") == 12
    for (row, column), (low, high) in attacker_bounds(published).items():
        assert low <= table.count(row, column) <= high
        assert high - low >= PROTECTION
    # What is published stays the additive count.
    assert published.cell(ALL, ALL).value == 132


def test_a_total_counts_its_distinct_residents_not_the_sum_of_its_cells_residents() -> None:
    same = frozenset(f"r{i}" for i in range(6))
    table = with_residents([[same, same], [same, same]], [[10, 10], [10, 10]])
    assert table.people(ALL, ALL) == 6
    published = protect(table)
    # Every entry is the same six residents: every one is withheld, margins included.
    assert {e.suppression for e in published.cells} == {Suppression.PRIMARY}


@settings(max_examples=150, deadline=None)
@given(tables_with_residents())
def test_exactly_the_entries_of_1_to_9_residents_are_primary_and_none_can_be_narrowed(
    table: CountTable,
) -> None:
    published = protect(table)
    for entry in published.cells:
        people = table.people(entry.row, entry.column)
        assert (entry.suppression is Suppression.PRIMARY) == (0 < people < THRESHOLD)
        assert entry.value is None or entry.value == table.count(entry.row, entry.column)
    for (row, column), (low, high) in attacker_bounds(published).items():
        true = table.count(row, column)
        assert low - 1e-6 <= true <= high + 1e-6
        assert high - low >= PROTECTION - 1e-6, (row, column, true, low, high)


def test_residents_must_fit_the_counts_and_a_funnel_is_refused() -> None:
    table = table_of([[3, 20]])
    with pytest.raises(ValueError, match="counts 3 from 4 residents"):
        CountTable(**{**table.__dict__, "residents": {("area0", "need0"): frozenset("abcd")}})
    with pytest.raises(ValueError, match="counts 20 from 0 residents"):
        CountTable(**{**table.__dict__, "residents": {("area0", "need0"): frozenset("abc")}})
    with pytest.raises(ValueError, match="funnel"):
        CountTable(**{**table.__dict__, "funnel": True})


# -- the whole package: tables that share totals ------------------------------------------


def table_named(
    name: str, rows: Dimension, labels: tuple[str, ...], grid: list[list[int]]
) -> CountTable:
    columns = tuple(f"{name}{c}" for c in range(len(grid[0])))
    return CountTable(
        name=name,
        title=name,
        description="test table",
        rows=rows,
        columns=Dimension.MEASURE,
        row_labels=labels,
        column_labels=columns,
        counts={(r, c): grid[i][j] for i, r in enumerate(labels) for j, c in enumerate(columns)},
    )


def links_of(needs: tuple[str, ...]) -> list[tuple[Entry, ...]]:
    """As the export links its tables: the grand totals of all three, and each need's total
    of the referrals and outcomes tables."""
    return [
        (("referrals", ALL, ALL), ("needs", ALL, ALL), ("outcomes", ALL, ALL)),
        *((("referrals", n, ALL), ("outcomes", n, ALL)) for n in needs),
    ]


def split(draw: st.DrawFn, total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` non-negative parts."""
    cuts = sorted(draw(st.lists(st.integers(0, total), min_size=parts - 1, max_size=parts - 1)))
    ends = [0, *cuts, total]
    return [b - a for a, b in itertools.pairwise(ends)]


@st.composite
def packages(draw: st.DrawFn) -> list[CountTable]:
    """A referrals table (need by source), a needs table (area by state) and an outcomes
    table (need by outcome), shaped as the export's. Either the shared totals are equal
    (the outcomes split each need's referrals, the needs table splits their grand total),
    as the attacker may assume, or the tables are drawn apart."""
    rows = draw(st.integers(1, 4))
    needs = tuple(f"need{i}" for i in range(rows))
    sources, states, outcomes = (draw(st.integers(1, 3)) for _ in range(3))
    areas = tuple(f"area{i}" for i in range(draw(st.integers(1, 3))))
    referrals = [draw(st.lists(counts, min_size=sources, max_size=sources)) for _ in needs]
    if draw(st.booleans()):
        outcome_grid = [split(draw, sum(row), outcomes) for row in referrals]
        total = sum(map(sum, referrals))
        flat = split(draw, total, len(areas) * states)
        needs_grid = [flat[i * states : (i + 1) * states] for i in range(len(areas))]
    else:
        outcome_grid = [draw(st.lists(counts, min_size=outcomes, max_size=outcomes)) for _ in needs]
        needs_grid = [draw(st.lists(counts, min_size=states, max_size=states)) for _ in areas]
    return [
        table_named("referrals", Dimension.NEED, needs, referrals),
        table_named("needs", Dimension.AREA, areas, needs_grid),
        table_named("outcomes", Dimension.NEED, needs, outcome_grid),
    ]


@settings(max_examples=150, deadline=None)
@given(packages())
def test_no_withheld_count_of_a_package_can_be_narrowed_with_the_shared_totals(
    tables: list[CountTable],
) -> None:
    links = links_of(tables[0].row_labels)
    published = protect_package(tables, links)
    by_name = {p.table.name: p for p in published}
    # A shared total is published in every table or in none.
    for link in links:
        assert (
            len({by_name[name].cell(row, column).value is None for name, row, column in link}) == 1
        )
    for (name, row, column), (low, high) in package_bounds(published, links).items():
        true = by_name[name].table.count(row, column)
        assert low - 1e-6 <= true <= high + 1e-6
        assert high - low >= PROTECTION - 1e-6, (name, row, column, true, low, high)
    # The primary ones are exactly those of 1 to 9 (each unit a resident here).
    for p in published:
        for entry in p.cells:
            small = 0 < p.table.count(entry.row, entry.column) < THRESHOLD
            assert (entry.suppression is Suppression.PRIMARY) == small


def test_tables_protected_apart_give_a_shared_total_away_and_together_they_do_not() -> None:
    needs = ("food", "housing")
    referrals = table_named("referrals", Dimension.NEED, needs, [[25, 15], [2, 6]])
    outcomes = table_named("outcomes", Dimension.NEED, needs, [[38, 2], [7, 1]])
    links = [
        (("referrals", ALL, ALL), ("outcomes", ALL, ALL)),
        *((("referrals", n, ALL), ("outcomes", n, ALL)) for n in needs),
    ]
    apart = [protect(referrals), protect(outcomes)]
    # The outcomes' grand total is withheld to protect its small cells, and the referrals
    # table publishes the same total: 48.
    assert apart[1].cell(ALL, ALL).value is None and apart[0].cell(ALL, ALL).value == 48
    assert package_bounds(apart, links)[("outcomes", ALL, ALL)] == pytest.approx((48, 48))
    together = protect_package([referrals, outcomes], links)
    assert together[0].cell(ALL, ALL).value is None
    for (name, row, column), (low, high) in package_bounds(together, links).items():
        assert high - low >= PROTECTION, (name, row, column, low, high)


def test_links_must_name_entries_of_two_tables_of_the_package() -> None:
    one = table_named("referrals", Dimension.NEED, ("food",), [[3, 20]])
    other = table_named("outcomes", Dimension.NEED, ("food",), [[3, 20]])
    with pytest.raises(ValueError, match=r"^links: no table 'nowhere'"):
        protect_package([one, other], [(("referrals", ALL, ALL), ("nowhere", ALL, ALL))])
    with pytest.raises(ValueError, match="two or more tables"):
        protect_package([one, other], [(("referrals", ALL, ALL), ("referrals", "food", ALL))])
    with pytest.raises(ValueError, match="has no 'rent'"):
        protect_package([one, other], [(("referrals", "rent", ALL), ("outcomes", ALL, ALL))])
