"""Histograms drawn on the server as inline SVG: no JavaScript, no chart library."""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe


def _label(value: float) -> str:
    return f"{value:.4g}"


def histogram_svg(histogram: dict | None, *, width: int = 480, height: int = 160) -> SafeString:
    """An SVG bar chart of {"edges": [...], "counts": [...]}, or an empty string."""
    if not histogram or not histogram.get("counts"):
        return mark_safe("")
    counts = [float(c) for c in histogram["counts"]]
    edges = [float(e) for e in histogram["edges"]]
    top = max(counts) or 1.0
    plot_height = height - 24
    bar_width = width / len(counts)
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="#2f6fde">'
        "<title>[{}, {}): {}</title></rect>",
        (
            (
                f"{index * bar_width + 1:.1f}",
                f"{plot_height - plot_height * count / top:.1f}",
                f"{max(bar_width - 2, 1):.1f}",
                f"{plot_height * count / top:.1f}",
                _label(edges[index]),
                _label(edges[index + 1]),
                int(count),
            )
            for index, count in enumerate(counts)
        ),
    )
    return format_html(
        '<svg class="histogram" role="img" aria-label="Histogram" xmlns="http://www.w3.org/2000/svg"'
        ' width="{}" height="{}" viewBox="0 0 {} {}">{}'
        '<line x1="0" y1="{}" x2="{}" y2="{}" stroke="#5c6577"/>'
        '<text x="0" y="{}" font-size="11" fill="#5c6577">{}</text>'
        '<text x="{}" y="{}" font-size="11" fill="#5c6577" text-anchor="end">{}</text></svg>',
        width,
        height,
        width,
        height,
        bars,
        plot_height,
        width,
        plot_height,
        height - 6,
        _label(edges[0]),
        width,
        height - 6,
        _label(edges[-1]),
    )
