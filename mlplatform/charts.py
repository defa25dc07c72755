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
