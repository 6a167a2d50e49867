"""The reporting pages' SVG charts (services/referrals/web/charts.py): bars proportional to
the figures, zero and empty data drawn without error, every label escaped, and the chart
named and described for assistive technology."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from services.referrals.web.charts import Bar, Series, bar_chart, bar_lengths, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def parsed(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def bar_widths(svg: str) -> list[float]:
    return [float(r.attrib["width"]) for r in parsed(svg).iter(f"{SVG}rect")]


def test_bars_are_proportional_to_the_values() -> None:
    svg = bar_chart("c", "Offers", "by response", [Bar("a", 10), Bar("b", 5), Bar("c", 2.5)])
    widths = bar_widths(svg)
    assert widths[0] == 420  # the largest fills the plot
    assert widths == pytest.approx([420, 210, 105])
    assert bar_lengths([3, 1, 0], 300) == [300, 100, 0]


def test_each_figure_is_written_beside_its_bar() -> None:
    svg = bar_chart("c", "t", "d", [Bar("accepted", 7), Bar("median", 1.5), Bar("x", 0, "none")])
    texts = [t.text for t in parsed(svg).iter(f"{SVG}text")]
    assert texts == ["accepted", "7", "median", "1.5", "x", "none"]


def test_zero_and_negative_values_draw_no_bar() -> None:
    assert bar_widths(bar_chart("c", "t", "d", [Bar("a", 0), Bar("b", 0)])) == [0, 0]
    assert bar_lengths([-2, 4], 100) == [0, 100]


def test_no_data_says_so_and_is_still_a_named_image() -> None:
    for svg in (
        bar_chart("c", "Offers", "none yet", []),
        line_chart("l", "Load", "none yet", [], []),
    ):
        root = parsed(svg)
        assert "No figures to show." in "".join(root.itertext())
        assert root.attrib["role"] == "img"
        assert not list(root.iter(f"{SVG}rect"))


def test_the_chart_is_named_and_described() -> None:
    root = parsed(bar_chart("chart-x", "Offers by response", "Bars: offers", [Bar("a", 1)]))
    assert root.attrib["role"] == "img"
    assert root.attrib["aria-labelledby"] == "chart-x-title chart-x-desc"
    assert root.find(f"{SVG}title").text == "Offers by response"  # type: ignore[union-attr]
    assert root.find(f"{SVG}desc").text == "Bars: offers"  # type: ignore[union-attr]


def test_labels_titles_and_ids_are_escaped() -> None:
    hostile = '<script>alert("x")</script> & "quotes"'
    svg = bar_chart('id"><x', hostile, hostile, [Bar(hostile, 1, shown=hostile)])
    assert "<script>" not in svg and 'id"><x' not in svg
    root = parsed(svg)  # still well-formed
    assert root.find(f"{SVG}title").text == hostile  # type: ignore[union-attr]
    line = line_chart("l", hostile, hostile, [hostile], [Series(hostile, [1])])
    assert "<script>" not in line
    assert hostile in "".join(parsed(line).itertext())


def test_long_labels_are_shortened_on_the_chart_but_whole_in_its_tooltip() -> None:
    label = "food, 3f2c6a1e-9b0d-4f7e-8a55-0c1d2e3f4a5b: support provided"
    root = parsed(bar_chart("c", "t", "d", [Bar(label, 2)]))
    (bar,) = root.iter(f"{SVG}g")
    assert bar.find(f"{SVG}title").text == f"{label}: 2"  # type: ignore[union-attr]
    shown = bar.find(f"{SVG}text").text or ""  # type: ignore[union-attr]
    assert shown.endswith("…") and len(shown) == 40


def test_lines_rise_with_the_values_one_point_a_label() -> None:
    svg = line_chart(
        "l", "Load", "d", ["2026-11-02", "2026-11-09", "2026-11-16"], [Series("p1", [0, 2, 4])]
    )
    root = parsed(svg)
    circles = [(float(c.attrib["cx"]), float(c.attrib["cy"])) for c in root.iter(f"{SVG}circle")]
    assert len(circles) == 3
    xs, ys = zip(*circles, strict=True)
    assert xs[0] < xs[1] < xs[2]
    assert ys[0] > ys[1] > ys[2]  # SVG's y grows downwards
    assert ys[0] - ys[1] == pytest.approx(ys[1] - ys[2])  # proportional
    (polyline,) = root.iter(f"{SVG}polyline")
    assert len(polyline.attrib["points"].split()) == 3


def test_a_line_chart_of_zeros_and_of_one_week_draws() -> None:
    root = parsed(line_chart("l", "t", "d", ["w1"], [Series("p", [0]), Series("q", [0])]))
    assert len(list(root.iter(f"{SVG}circle"))) == 2
    assert not list(root.iter(f"{SVG}polyline"))  # one point: a marker, no line


def test_series_are_told_apart_by_dash_as_well_as_colour() -> None:
    svg = line_chart("l", "t", "d", ["a", "b"], [Series("p", [1, 2]), Series("q", [2, 1])])
    lines = list(parsed(svg).iter(f"{SVG}polyline"))
    assert lines[0].attrib["stroke"] != lines[1].attrib["stroke"]
    assert "stroke-dasharray" in lines[1].attrib and "stroke-dasharray" not in lines[0].attrib


def test_a_series_must_have_a_value_for_each_label() -> None:
    with pytest.raises(ValueError, match="values"):
        line_chart("l", "t", "d", ["a", "b"], [Series("p", [1])])


def test_no_inline_style_so_the_pages_csp_holds() -> None:
    svg = bar_chart("c", "t", "d", [Bar("a", 1)]) + line_chart(
        "l", "t", "d", ["a"], [Series("p", [1])]
    )
    assert not re.search(r"\sstyle=", svg)
