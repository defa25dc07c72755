"""Charts drawn on the server as inline SVG: real axes, ticks and labels; no JavaScript, no
chart library.

Three kinds: a line/point chart (x: numbers such as version numbers, or datetimes; y: a metric;
one or more named series), a bar chart (labelled bars) and a histogram
(`{"edges": [...], "counts": [...]}`, the shape the feature store's statistics hold). Every
value that reaches the markup goes through `format_html`, and each chart is sized by its viewBox
alone (`width: 100%` in CSS), so it scales down to a phone. A chart with no data is a short
"No data" figure, never an error.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH = 480
HEIGHT = 240
# Room for the y tick labels (left), the x tick labels and axis label (bottom).
MARGIN_LEFT = 64
MARGIN_RIGHT = 16
MARGIN_TOP = 16
MARGIN_BOTTOM = 48
AXIS = "#5c6577"
GRID = "#e3e6ec"
PALETTE = ("#2f6fde", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c")


def _nice(value: float, *, round_: bool) -> float:
    """A 'nice' number near `value`: 1, 2 or 5 (or 10) times a power of ten."""
    exponent = math.floor(math.log10(value))
    fraction = value / 10**exponent
    if round_:
        nice = 1 if fraction < 1.5 else 2 if fraction < 3 else 5 if fraction < 7 else 10
    else:
        nice = 1 if fraction <= 1 else 2 if fraction <= 2 else 5 if fraction <= 5 else 10
    return nice * 10**exponent


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` evenly spaced round tick values covering [low, high] (Heckbert's nice
    numbers). A single value (low == high) gets a span around it; non-finite input, no ticks."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if low > high:
        low, high = high, low
    if low == high:
        pad = abs(low) * 0.5 if low else 1.0
        low, high = low - pad, high + pad
    span = _nice(high - low, round_=False)
    step = _nice(span / max(count - 1, 1), round_=True)
    start = math.floor(low / step) * step
    stop = math.ceil(high / step) * step
    ticks: list[float] = []
    index = 0
    while True:
        value = start + index * step
        if value > stop + step / 2:
            break
        # Round away float noise (0.30000000000000004) at the step's precision.
        digits = max(0, -math.floor(math.log10(step)) + 1)
        ticks.append(round(value, digits) + 0.0)
        index += 1
    return ticks


def number_label(value: float) -> str:
    """A short label: 1.2k, 3.4M, 5G for large magnitudes, up to 4 significant digits else."""
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:.3g}{suffix}"
    if value == int(value):
        return str(int(value))
    return f"{value:.4g}"


def _time_label(value: float, span: float) -> str:
    moment = datetime.fromtimestamp(value, tz=UTC)
    if span <= 2 * 86400:
        return moment.strftime("%H:%M")
    if span <= 365 * 86400:
        return moment.strftime("%b %d")
    return moment.strftime("%Y-%m")


def _time_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Tick times on round boundaries (minutes, hours, days) covering [low, high] seconds."""
    if low == high:
        low, high = low - 1800, high + 1800
    steps = (60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
    raw = (high - low) / max(count - 1, 1)
    step = next((s for s in steps if s >= raw), None)
    if step is None:
        return [t * 86400 for t in nice_ticks(low / 86400, high / 86400, count)]
    start = math.floor(low / step) * step
    stop = math.ceil(high / step) * step
    return [float(start + i * step) for i in range(int((stop - start) // step) + 1)]


@dataclass(frozen=True)
class _Scale:
    low: float
    high: float
    out_low: float
    out_high: float

    def __call__(self, value: float) -> float:
        if self.high == self.low:
            return round((self.out_low + self.out_high) / 2, 1)
        share = (value - self.low) / (self.high - self.low)
        return round(self.out_low + share * (self.out_high - self.out_low), 1)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _x_value(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    return _finite(value)


def _empty(title: str, width: int, height: int) -> SafeString:
    return format_html(
        '<svg class="chart chart-empty" role="img" aria-label="{}: no data"'
        ' xmlns="http://www.w3.org/2000/svg" width="100%" viewBox="0 0 {} {}"'
        ' preserveAspectRatio="xMidYMid meet">'
        '<text x="{}" y="{}" text-anchor="middle" font-size="14" fill="{}">No data</text></svg>',
        title or "Chart",
        width,
        height // 3,
        width // 2,
        height // 6,
        AXIS,
    )


def _frame(
    *,
    title: str,
    width: int,
    height: int,
    body: SafeString,
    x_label: str,
    y_label: str,
    css: str,
) -> SafeString:
    return format_html(
        '<svg class="chart {}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg"'
        ' width="100%" viewBox="0 0 {} {}" preserveAspectRatio="xMidYMid meet"'
        ' font-family="sans-serif">'
        "<title>{}</title>{}"
        '<text class="x-label" x="{}" y="{}" text-anchor="middle" font-size="12" fill="{}">'
        "{}</text>"
        '<text class="y-label" x="14" y="{}" text-anchor="middle" font-size="12" fill="{}"'
        ' transform="rotate(-90 14 {})">{}</text></svg>',
        css,
        title or "Chart",
        width,
        height,
        title or "Chart",
        body,
        MARGIN_LEFT + (width - MARGIN_LEFT - MARGIN_RIGHT) / 2,
        height - 6,
        AXIS,
        x_label,
        MARGIN_TOP + (height - MARGIN_TOP - MARGIN_BOTTOM) / 2,
        AXIS,
        MARGIN_TOP + (height - MARGIN_TOP - MARGIN_BOTTOM) / 2,
        y_label,
    )


def _y_axis(ticks: list[float], y: _Scale, width: int) -> SafeString:
    right = width - MARGIN_RIGHT
    return format_html(
        '<g class="y-axis">{}<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/></g>',
        format_html_join(
            "",
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>'
            '<text x="{}" y="{}" text-anchor="end" font-size="11" fill="{}">{}</text>',
            (
                (
                    MARGIN_LEFT,
                    y(t),
                    right,
                    y(t),
                    GRID,
                    MARGIN_LEFT - 6,
                    round(y(t) + 4, 1),
                    AXIS,
                    number_label(t),
                )
                for t in ticks
            ),
        ),
        MARGIN_LEFT,
        MARGIN_TOP,
        MARGIN_LEFT,
        y.out_low,
        AXIS,
    )


def _x_axis(ticks: Iterable[tuple[float, str]], bottom: float, width: int) -> SafeString:
    return format_html(
        '<g class="x-axis"><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>{}</g>',
        MARGIN_LEFT,
        bottom,
        width - MARGIN_RIGHT,
        bottom,
        AXIS,
        format_html_join(
            "",
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>'
            '<text x="{}" y="{}" text-anchor="middle" font-size="11" fill="{}">{}</text>',
            ((x, bottom, x, bottom + 4, AXIS, x, bottom + 16, AXIS, label) for x, label in ticks),
        ),
    )


def _y_range(values: Sequence[float], *, zero: bool) -> tuple[list[float], float, float]:
    low, high = min(values), max(values)
    if zero:
        low, high = min(low, 0.0), max(high, 0.0)
    ticks = nice_ticks(low, high)
    return ticks, ticks[0], ticks[-1]


def line_chart(
    series: dict[str, Sequence[tuple[Any, Any]]],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    x_time: bool = False,
    x_integer: bool = False,
    y_from_zero: bool = False,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> SafeString:
    """Lines with a point at each value: `{series name: [(x, y), ...]}`. x is a number (a
    version number: `x_integer=True` puts ticks on whole numbers only) or a datetime
    (`x_time=True`); points whose y is missing or not finite are left out; `y_from_zero` keeps
    zero on the y axis (counts). A legend names the series when there is more than one."""
    cleaned: dict[str, list[tuple[float, float]]] = {}
    for name, points in series.items():
        kept = []
        for x_raw, y_raw in points:
            x_value, y_value = _x_value(x_raw), _finite(y_raw)
            if x_value is not None and y_value is not None:
                kept.append((x_value, y_value))
        if kept:
            cleaned[name] = sorted(kept)
    if not cleaned:
        return _empty(title, width, height)
    xs = [x for points in cleaned.values() for x, _ in points]
    ys = [y for points in cleaned.values() for _, y in points]
    y_ticks, y_low, y_high = _y_range(ys, zero=y_from_zero)
    bottom = height - MARGIN_BOTTOM
    y = _Scale(y_low, y_high, bottom, MARGIN_TOP)
    x_low, x_high = min(xs), max(xs)
    if x_time:
        x_ticks = _time_ticks(x_low, x_high)
        x_low, x_high = x_ticks[0], x_ticks[-1]
        labels = [_time_label(t, x_high - x_low) for t in x_ticks]
    elif x_integer:
        step = max(1, math.ceil((x_high - x_low) / 8))
        first = math.floor(x_low)
        x_ticks = [float(v) for v in range(first, math.ceil(x_high) + 1, step)]
        if x_low == x_high:
            x_low, x_high = x_low - 1, x_high + 1
        x_ticks = [t for t in x_ticks if x_low <= t <= x_high]
        labels = [number_label(t) for t in x_ticks]
    else:
        x_ticks = nice_ticks(x_low, x_high)
        x_low, x_high = x_ticks[0], x_ticks[-1]
        labels = [number_label(t) for t in x_ticks]
    x = _Scale(x_low, x_high, MARGIN_LEFT + 8, width - MARGIN_RIGHT - 8)
    parts = []
    for index, (name, points) in enumerate(cleaned.items()):
        color = PALETTE[index % len(PALETTE)]
        coordinates = " ".join(f"{x(px):.1f},{y(py):.1f}" for px, py in points)
        dots = format_html_join(
            "",
            '<circle cx="{}" cy="{}" r="3.5" fill="{}"><title>{}: {}</title></circle>',
            (
                (
                    x(px),
                    y(py),
                    color,
                    _time_label(px, 0) if x_time else number_label(px),
                    number_label(py),
                )
                for px, py in points
            ),
        )
        parts.append(
            format_html(
                '<g class="series" data-series="{}"><polyline points="{}" fill="none" stroke="{}"'
                ' stroke-width="2"/>{}</g>',
                name,
                coordinates,
                color,
                dots,
            )
        )
    legend = ""
    if len(cleaned) > 1:
        legend = format_html_join(
            "",
            '<rect x="{}" y="{}" width="10" height="10" fill="{}"/>'
            '<text x="{}" y="{}" font-size="11" fill="{}">{}</text>',
            (
                (
                    MARGIN_LEFT + 8,
                    MARGIN_TOP + 14 * i,
                    PALETTE[i % len(PALETTE)],
                    MARGIN_LEFT + 22,
                    MARGIN_TOP + 14 * i + 9,
                    AXIS,
                    name,
                )
                for i, name in enumerate(cleaned)
            ),
        )
    body = format_html(
        "{}{}{}{}",
        _y_axis(y_ticks, y, width),
        _x_axis(((x(t), label) for t, label in zip(x_ticks, labels, strict=True)), bottom, width),
        format_html_join("", "{}", ((p,) for p in parts)),
        legend,
    )
    return _frame(
        title=title,
        width=width,
        height=height,
        body=body,
        x_label=x_label,
        y_label=y_label,
        css="line-chart",
    )


def bar_chart(
    bars: Sequence[tuple[Any, Any]],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    highlight: Any = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> SafeString:
    """One bar per `(label, value)`, from zero (negative values go below the zero line). The
    bar whose label equals `highlight` is drawn in the accent colour."""
    kept = [(str(label), v) for label, raw in bars if (v := _finite(raw)) is not None]
    if not kept:
        return _empty(title, width, height)
    y_ticks, y_low, y_high = _y_range([v for _, v in kept], zero=True)
    bottom = height - MARGIN_BOTTOM
    y = _Scale(y_low, y_high, bottom, MARGIN_TOP)
    slot = (width - MARGIN_LEFT - MARGIN_RIGHT) / len(kept)
    bar = max(slot * 0.7, 1.0)
    zero = y(0.0)
    rects = format_html_join(
        "",
        '<rect class="bar{}" x="{}" y="{}" width="{}" height="{}" fill="{}">'
        "<title>{}: {}</title></rect>",
        (
            (
                " highlight" if highlight is not None and label == str(highlight) else "",
                round(MARGIN_LEFT + i * slot + (slot - bar) / 2, 1),
                min(y(v), zero),
                round(bar, 1),
                round(abs(zero - y(v)), 1),
                PALETTE[1] if highlight is not None and label == str(highlight) else PALETTE[0],
                label,
                number_label(v),
            )
            for i, (label, v) in enumerate(kept)
        ),
    )
    body = format_html(
        '{}{}<line class="zero" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>{}',
        _y_axis(y_ticks, y, width),
        _x_axis(
            (
                (round(MARGIN_LEFT + i * slot + slot / 2, 1), label)
                for i, (label, _) in enumerate(kept)
            ),
            bottom,
            width,
        ),
        MARGIN_LEFT,
        zero,
        width - MARGIN_RIGHT,
        zero,
        AXIS,
        rects,
    )
    return _frame(
        title=title,
        width=width,
        height=height,
        body=body,
        x_label=x_label,
        y_label=y_label,
        css="bar-chart",
    )


def histogram(
    data: dict[str, Any] | None,
    *,
    title: str = "Histogram",
    x_label: str = "",
    y_label: str = "count",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> SafeString:
    """Adjacent bars over `{"edges": [n + 1 numbers], "counts": [n numbers]}`; the x axis is
    the value axis with nice ticks between the first and last edge."""
    edges = [_finite(e) for e in (data or {}).get("edges") or []]
    counts = [_finite(c) for c in (data or {}).get("counts") or []]
    if (
        not counts
        or len(edges) != len(counts) + 1
        or any(e is None for e in edges)
        or any(c is None for c in counts)
    ):
        return _empty(title, width, height)
    edge_values = [e for e in edges if e is not None]
    count_values = [c for c in counts if c is not None]
    y_ticks, y_low, y_high = _y_range(count_values, zero=True)
    bottom = height - MARGIN_BOTTOM
    y = _Scale(y_low, y_high, bottom, MARGIN_TOP)
    x_low, x_high = edge_values[0], edge_values[-1]
    x_ticks = [t for t in nice_ticks(x_low, x_high) if x_low <= t <= x_high] or [x_low, x_high]
    x = _Scale(x_low, x_high, MARGIN_LEFT, width - MARGIN_RIGHT)
    rects = format_html_join(
        "",
        '<rect class="bin" x="{}" y="{}" width="{}" height="{}" fill="{}"'
        ' stroke="#fff" stroke-width="0.5"><title>[{}, {}): {}</title></rect>',
        (
            (
                x(edge_values[i]),
                y(c),
                round(max(x(edge_values[i + 1]) - x(edge_values[i]), 0.5), 1),
                round(bottom - y(c), 1),
                PALETTE[0],
                number_label(edge_values[i]),
                number_label(edge_values[i + 1]),
                number_label(c),
            )
            for i, c in enumerate(count_values)
        ),
    )
    body = format_html(
        "{}{}{}",
        _y_axis(y_ticks, y, width),
        rects,
        _x_axis(((x(t), number_label(t)) for t in x_ticks), bottom, width),
    )
    return _frame(
        title=title,
        width=width,
        height=height,
        body=body,
        x_label=x_label,
        y_label=y_label,
        css="histogram",
    )


def _legend(names: Sequence[str], *, x: float, y: float, opacity: float = 1.0) -> SafeString:
    """Swatches and names, one per line, from (x, y) down."""
    return format_html_join(
        "",
        '<g class="legend-item"><rect x="{}" y="{}" width="10" height="10" fill="{}"'
        ' fill-opacity="{}"/><text x="{}" y="{}" font-size="11" fill="{}">{}</text></g>',
        (
            (
                x,
                y + 14 * i,
                PALETTE[i % len(PALETTE)],
                opacity,
                x + 14,
                y + 14 * i + 9,
                AXIS,
                name,
            )
            for i, name in enumerate(names)
        ),
    )


def overlaid_histogram(
    edges: Sequence[Any],
    series: dict[str, Sequence[Any]],
    *,
    title: str = "Histogram",
    x_label: str = "",
    y_label: str = "share of rows",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> SafeString:
    """Histograms of several series over the same bins, drawn over each other with
    see-through fills: `edges` (n + 1 numbers) and `{series name: [n values]}` (a share or a
    count per bin). A series of the wrong length, or edges that are not numbers, is left out;
    the legend names the series."""
    edge_values = [_finite(e) for e in edges]
    if len(edge_values) < 2 or any(e is None for e in edge_values):
        return _empty(title, width, height)
    bins = [e for e in edge_values if e is not None]
    kept: dict[str, list[float]] = {}
    for name, values in series.items():
        numbers = [_finite(v) for v in values]
        if len(numbers) == len(bins) - 1 and all(v is not None for v in numbers):
            kept[name] = [v for v in numbers if v is not None]
    if not kept:
        return _empty(title, width, height)
    y_ticks, y_low, y_high = _y_range([v for vs in kept.values() for v in vs], zero=True)
    bottom = height - MARGIN_BOTTOM
    y = _Scale(y_low, y_high, bottom, MARGIN_TOP)
    x_low, x_high = bins[0], bins[-1]
    x_ticks = [t for t in nice_ticks(x_low, x_high) if x_low <= t <= x_high] or [x_low, x_high]
    x = _Scale(x_low, x_high, MARGIN_LEFT, width - MARGIN_RIGHT)
    layers = []
    for index, (name, values) in enumerate(kept.items()):
        color = PALETTE[index % len(PALETTE)]
        rects = format_html_join(
            "",
            '<rect class="bin" x="{}" y="{}" width="{}" height="{}" fill="{}" fill-opacity="0.45"'
            ' stroke="{}" stroke-width="1"><title>{} [{}, {}]: {}</title></rect>',
            (
                (
                    x(bins[i]),
                    y(v),
                    round(max(x(bins[i + 1]) - x(bins[i]), 0.5), 1),
                    round(bottom - y(v), 1),
                    color,
                    color,
                    name,
                    number_label(bins[i]),
                    number_label(bins[i + 1]),
                    number_label(v),
                )
                for i, v in enumerate(values)
            ),
        )
        layers.append(format_html('<g class="series" data-series="{}">{}</g>', name, rects))
    body = format_html(
        "{}{}{}{}",
        _y_axis(y_ticks, y, width),
        format_html_join("", "{}", ((layer,) for layer in layers)),
        _x_axis(((x(t), number_label(t)) for t in x_ticks), bottom, width),
        _legend(list(kept), x=width - MARGIN_RIGHT - 110, y=MARGIN_TOP, opacity=0.6),
    )
    return _frame(
        title=title,
        width=width,
        height=height,
        body=body,
        x_label=x_label,
        y_label=y_label,
        css="overlaid-histogram",
    )


def grouped_bars(
    categories: Sequence[Any],
    series: dict[str, Sequence[Any]],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> SafeString:
    """One group of bars per category, one bar per series side by side:
    `{series name: [a value per category]}` (a missing value draws no bar). Long category
    names are shortened on the axis; each bar's title has the full name and value."""
    labels = [str(c) for c in categories]
    kept = {
        name: [_finite(v) for v in values]
        for name, values in series.items()
        if len(values) == len(labels)
    }
    numbers = [v for values in kept.values() for v in values if v is not None]
    if not labels or not numbers:
        return _empty(title, width, height)
    y_ticks, y_low, y_high = _y_range(numbers, zero=True)
    bottom = height - MARGIN_BOTTOM
    y = _Scale(y_low, y_high, bottom, MARGIN_TOP)
    slot = (width - MARGIN_LEFT - MARGIN_RIGHT) / len(labels)
    bar = max(slot * 0.8 / len(kept), 1.0)
    zero = y(0.0)
    rects = []
    for index, (name, values) in enumerate(kept.items()):
        color = PALETTE[index % len(PALETTE)]
        rects.append(
            format_html(
                '<g class="series" data-series="{}">{}</g>',
                name,
                format_html_join(
                    "",
                    '<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="{}">'
                    "<title>{} · {}: {}</title></rect>",
                    (
                        (
                            round(MARGIN_LEFT + i * slot + slot * 0.1 + index * bar, 1),
                            min(y(v), zero),
                            round(bar, 1),
                            round(abs(zero - y(v)), 1),
                            color,
                            labels[i],
                            name,
                            number_label(v),
                        )
                        for i, v in enumerate(values)
                        if v is not None
                    ),
                ),
            )
        )
    longest = max(4, int(slot / 6.5))
    body = format_html(
        "{}{}{}{}",
        _y_axis(y_ticks, y, width),
        _x_axis(
            (
                (
                    round(MARGIN_LEFT + i * slot + slot / 2, 1),
                    label if len(label) <= longest else label[: longest - 1] + "…",
                )
                for i, label in enumerate(labels)
            ),
            bottom,
            width,
        ),
        format_html_join("", "{}", ((r,) for r in rects)),
        _legend(list(kept), x=width - MARGIN_RIGHT - 110, y=MARGIN_TOP) if len(kept) > 1 else "",
    )
    return _frame(
        title=title,
        width=width,
        height=height,
        body=body,
        x_label=x_label,
        y_label=y_label,
        css="grouped-bars",
    )


# PSI's usual reading: below 0.1 no shift, 0.1 to 0.2 a moderate one, above 0.2 a significant one.
PSI_BANDS = ((0.1, "#d3f0dc"), (0.2, "#ffe8a3"), (0.5, "#f59f6b"), (math.inf, "#c92a2a"))
NO_VALUE = "#eef0f4"


def _band_labels(bands: Sequence[tuple[float, str]]) -> list[str]:
    labels, low = [], None
    for high, _ in bands:
        if low is None:
            labels.append(f"< {number_label(high)}")
        elif math.isinf(high):
            labels.append(f"≥ {number_label(low)}")
        else:
            labels.append(f"{number_label(low)} to {number_label(high)}")
        low = high
    return labels


def heatmap(
    rows: Sequence[str],
    columns: Sequence[Any],
    values: dict[tuple[str, Any], Any],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    value_label: str = "value",
    bands: Sequence[tuple[float, str]] = PSI_BANDS,
    x_time: bool = True,
    width: int = WIDTH + 160,
) -> SafeString:
    """A grid of cells, `rows` (named on the left) by `columns` (datetimes with `x_time`, else
    labels along the bottom), coloured by `values[(row, column)]` in `bands` (upper bound,
    colour), the last band open-ended; a missing value is a grey cell. Every cell's title names
    its row, column and value; a legend explains the colours."""
    if not rows or not columns:
        return _empty(title, width, HEIGHT)
    longest = max(len(str(r)) for r in rows)
    shown = [r if len(r) <= 24 else r[:23] + "…" for r in map(str, rows)]
    # room for the axis label, then the longest row name (about 6.5 px a character at 11 px)
    left = 30 + min(24, longest) * 6.5 + 8
    legend_width = 110
    right = width - MARGIN_RIGHT - legend_width
    cell_h = 18 if len(rows) <= 30 else 12
    bottom = MARGIN_TOP + cell_h * len(rows)
    height = int(bottom + MARGIN_BOTTOM)
    cell_w = (right - left) / len(columns)
    stamps = [_x_value(c) if x_time else None for c in columns]
    span = (
        max(s for s in stamps if s is not None) - min(s for s in stamps if s is not None)
        if x_time and all(s is not None for s in stamps)
        else 0.0
    )

    def column_label(index: int) -> str:
        stamp = stamps[index]
        if x_time and stamp is not None:
            return _time_label(stamp, span)
        return str(columns[index])

    def colour(value: float | None) -> str:
        if value is None:
            return NO_VALUE
        return next((c for high, c in bands if value < high), bands[-1][1])

    cells = []
    for r, row in enumerate(rows):
        for c, column in enumerate(columns):
            value = _finite(values.get((row, column)))
            full = (
                datetime.fromtimestamp(stamps[c] or 0, tz=UTC).strftime("%Y-%m-%d %H:%M")
                if x_time and stamps[c] is not None
                else str(column)
            )
            cells.append(
                (
                    round(left + c * cell_w, 1),
                    MARGIN_TOP + r * cell_h,
                    round(max(cell_w - 1, 0.5), 1),
                    cell_h - 1,
                    colour(value),
                    "" if value is None else number_label(round(value, 4)),
                    row,
                    full,
                    value_label,
                    "no value" if value is None else number_label(round(value, 4)),
                )
            )
    grid = format_html_join(
        "",
        '<rect class="cell" x="{}" y="{}" width="{}" height="{}" fill="{}" data-value="{}">'
        "<title>{} · {}: {} {}</title></rect>",
        cells,
    )
    row_labels = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="end" font-size="11" fill="{}">{}<title>{}</title></text>',
        (
            (left - 6, MARGIN_TOP + r * cell_h + cell_h / 2 + 4, AXIS, shown[r], row)
            for r, row in enumerate(rows)
        ),
    )
    step = max(1, math.ceil(len(columns) / max(1, int((right - left) / 56))))
    column_ticks = format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>'
        '<text x="{}" y="{}" text-anchor="middle" font-size="11" fill="{}">{}</text>',
        (
            (x, bottom, x, bottom + 4, AXIS, x, bottom + 16, AXIS, column_label(c))
            for c in range(0, len(columns), step)
            for x in (round(left + c * cell_w + cell_w / 2, 1),)
        ),
    )
    legend_x = width - MARGIN_RIGHT - legend_width + 12
    legend = format_html_join(
        "",
        '<g class="legend-item"><rect x="{}" y="{}" width="12" height="12" fill="{}"'
        ' stroke="{}" stroke-width="0.5"/><text x="{}" y="{}" font-size="11" fill="{}">{}</text>'
        "</g>",
        (
            (legend_x, MARGIN_TOP + 18 + 16 * i, fill, AXIS, legend_x + 16,
             MARGIN_TOP + 18 + 16 * i + 10, AXIS, label)
            for i, (fill, label) in enumerate(
                [*zip((c for _, c in bands), _band_labels(bands), strict=True),
                 (NO_VALUE, "no value")]
            )
        ),
    )  # fmt: skip
    return format_html(
        '<svg class="chart heatmap" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg"'
        ' width="100%" viewBox="0 0 {} {}" preserveAspectRatio="xMidYMid meet"'
        ' font-family="sans-serif"><title>{}</title>'
        '<g class="y-axis">{}</g><g class="cells">{}</g>'
        '<g class="x-axis"><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>{}</g>'
        '<text class="x-label" x="{}" y="{}" text-anchor="middle" font-size="12" fill="{}">'
        "{}</text>"
        '<text class="y-label" x="12" y="{}" text-anchor="middle" font-size="12" fill="{}"'
        ' transform="rotate(-90 12 {})">{}</text>'
        '<g class="legend"><text x="{}" y="{}" font-size="11" font-weight="bold" fill="{}">'
        "{}</text>"
        "{}</g></svg>",
        title or "Heatmap",
        width,
        height,
        title or "Heatmap",
        row_labels,
        grid,
        left,
        bottom,
        right,
        bottom,
        AXIS,
        column_ticks,
        left + (right - left) / 2,
        height - 6,
        AXIS,
        x_label,
        MARGIN_TOP + (bottom - MARGIN_TOP) / 2,
        AXIS,
        MARGIN_TOP + (bottom - MARGIN_TOP) / 2,
        y_label,
        legend_x,
        MARGIN_TOP + 8,
        AXIS,
        value_label,
        legend,
    )
