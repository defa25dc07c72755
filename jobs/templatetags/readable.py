"""Values people can read: durations in words, numbers with separators, JSON laid out."""

import json
from typing import Any

from django import template

register = template.Library()

_UNITS = (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1))


@register.filter
def duration_words(seconds: Any) -> str:
    """3725 -> "1 hour 2 minutes": the two largest units, rounded down; "" for None."""
    if seconds is None or seconds == "":
        return ""
    try:
        left = int(abs(float(seconds)))
    except (TypeError, ValueError):
        return ""
    if left == 0:
        return "under a second" if float(seconds) else "0 seconds"
    parts = []
    for name, size in _UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
        if len(parts) == 2:
            break
        if parts and not count:
            break
    return " ".join(parts)


@register.filter
def number(value: Any) -> str:
    """1234567 -> "1,234,567"; floats keep up to four significant decimals."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        return str(value)
    if as_float.is_integer() and abs(as_float) < 1e15:
        return f"{int(as_float):,}"
    return f"{as_float:,.4f}".rstrip("0").rstrip(".")


@register.filter
def json_pretty(value: Any) -> str:
    """A JSON value laid out with two-space indentation and sorted keys (for a <pre>)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
