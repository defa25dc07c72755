"""Server-side SVG charts: tick choice, empty data, one point, negative values, huge numbers,
escaping, and a viewBox that lets the chart scale to a phone."""

import math
import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest

from mlplatform import charts


def _parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)  # noqa: S314  our own markup, well-formed or a failure


def _texts(svg: str, group: str) -> list[str]:
    root = _parse(svg)
    ns = "{http://www.w3.org/2000/svg}"
    found = root.find(f".//{ns}g[@class='{group}']")
    assert found is not None, f"no {group} in the chart"
    return [t.text or "" for t in found.iter(f"{ns}text")]


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1]),
        (-3.2, 7.9, [-5, 0, 5, 10]),
        (0.1, 0.3, [0.1, 0.15, 0.2, 0.25, 0.3]),
        (0, 95, [0, 20, 40, 60, 80, 100]),
    ],
)
def test_ticks_are_round_numbers_covering_the_range(low, high, expected):
    # when
    ticks = charts.nice_ticks(low, high)
    # then
    assert ticks == pytest.approx(expected)
    assert ticks[0] <= low
    assert ticks[-1] >= high


def test_ticks_of_one_value_span_around_it():
    # when
    ticks = charts.nice_ticks(5, 5)
    # then
    assert ticks[0] < 5 < ticks[-1]
    assert len(ticks) >= 3


def test_ticks_of_huge_numbers_stay_round_and_few():
    # when
    ticks = charts.nice_ticks(0, 3.4e12)
    # then
    assert 3 <= len(ticks) <= 8
    assert all(t % 1e11 == 0 for t in ticks)
    assert charts.number_label(ticks[-1]).endswith("T")


def test_ticks_of_non_finite_bounds_are_none():
    assert charts.nice_ticks(0, math.inf) == []


def test_number_labels_are_short():
    assert charts.number_label(1_234_567) == "1.23M"
    assert charts.number_label(-2500) == "-2.5k"
    assert charts.number_label(0.123456) == "0.1235"
    assert charts.number_label(3.0) == "3"


@pytest.mark.parametrize(
    "svg",
    [
        charts.line_chart({}),
        charts.line_chart({"a": [(1, None), (2, math.nan)]}),
        charts.bar_chart([]),
        charts.histogram(None),
        charts.histogram({"edges": [0, 1], "counts": []}),
        charts.histogram({"edges": [0, 1], "counts": [1, 2]}),  # edges do not match counts
    ],
)
def test_empty_data_draws_a_no_data_figure(svg):
    root = _parse(svg)
    assert "chart-empty" in root.get("class", "")
    assert "No data" in svg


def test_one_point_draws_axes_and_the_point():
    # when
    svg = charts.line_chart({"accuracy": [(3, 0.9)]}, x_integer=True, y_label="accuracy")
    # then
    assert svg.count("<circle") == 1
    y_labels = [float(t) for t in _texts(svg, "y-axis")]
    assert min(y_labels) < 0.9 < max(y_labels)
    assert "3" in _texts(svg, "x-axis")


def test_version_numbers_on_x_are_whole_numbers():
    # when
    svg = charts.line_chart({"rmse": [(1, 2.0), (2, 1.5), (4, 1.2)]}, x_integer=True)
    # then
    assert _texts(svg, "x-axis") == ["1", "2", "3", "4"]


def test_negative_values_get_a_zero_line_and_bars_on_both_sides():
    # when
    svg = charts.bar_chart([("v1", -2.5), ("v2", 4)], highlight="v2")
    # then
    labels = [float(t) for t in _texts(svg, "y-axis")]
    assert min(labels) <= -2.5
    assert max(labels) >= 4
    assert 0 in labels
    root = _parse(svg)
    ns = "{http://www.w3.org/2000/svg}"
    zero = root.find(f".//{ns}line[@class='zero']")
    assert zero is not None
    bars = {r.findtext(f"{ns}title"): r for r in root.iter(f"{ns}rect")}
    zero_y = float(zero.get("y1", "nan"))
    negative, positive = bars["v1: -2.5"], bars["v2: 4"]
    assert float(negative.get("y", "nan")) == pytest.approx(zero_y)  # hangs below zero
    assert float(positive.get("y", "nan")) + float(positive.get("height", "nan")) == pytest.approx(
        zero_y
    )
    assert "highlight" in positive.get("class", "")
    assert "highlight" not in negative.get("class", "")


def test_huge_values_are_labelled_compactly():
    # when
    svg = charts.bar_chart([("a", 2e12), ("b", 7.5e12)])
    # then
    assert all(re.fullmatch(r"-?[\d.]+[kMGT]?", t) for t in _texts(svg, "y-axis"))
    assert any(t.endswith("T") for t in _texts(svg, "y-axis"))


def test_counts_can_keep_zero_on_the_axis():
    # when
    svg = charts.line_chart({"requests": [(1, 40), (2, 50)]}, y_from_zero=True)
    # then
    assert float(_texts(svg, "y-axis")[0]) == 0


def test_time_axis_is_labelled_with_clock_times():
    # given
    start = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    points = [(start + timedelta(minutes=m), m % 7) for m in range(0, 120, 5)]
    # when
    svg = charts.line_chart({"requests/min": points}, x_time=True)
    # then
    labels = _texts(svg, "x-axis")
    assert labels
    assert all(re.fullmatch(r"\d\d:\d\d", t) for t in labels)
    assert "10:00" in labels


def test_histogram_has_value_ticks_and_count_ticks():
    # when
    svg = charts.histogram({"edges": [0, 25, 50, 75, 100], "counts": [1, 10, 4, 0]}, x_label="age")
    # then
    assert svg.count('class="bin"') == 4
    assert "0" in _texts(svg, "x-axis")
    assert "100" in _texts(svg, "x-axis")
    assert max(float(t) for t in _texts(svg, "y-axis")) >= 10
    assert ">age</text>" in svg


def test_names_and_labels_are_escaped():
    # when
    svg = charts.line_chart(
        {"<script>alert(1)</script>": [(1, 1), (2, 2)]}, title='"><b>', x_label="<i>"
    )
    # then
    assert "<script>" not in svg
    assert "<b>" not in svg
    assert "<i>" not in svg
    _parse(svg)  # still well-formed


def test_charts_scale_by_their_view_box():
    # when
    svg = charts.line_chart({"a": [(1, 1), (2, 3)]})
    root = _parse(svg)
    # then
    assert root.get("viewBox") == f"0 0 {charts.WIDTH} {charts.HEIGHT}"
    assert root.get("width") == "100%"
    assert root.get("height") is None
