"""Storage areas: the folders of storage a team's objects may read (feature sources, scheduled
batch inputs), so that nothing a user names reaches another team's files or the platform's own
(artifacts, partitions, job inputs and outputs)."""

import posixpath
from typing import Any

from django.utils.text import slugify


def team_area(root: str, team: Any) -> str:
    """`<root><team>/`: the part of an area that belongs to `team` (None: the whole area)."""
    if team is None:
        return root
    return f"{root}{slugify(team.name) or team.pk}/"


def area_path(path: str, area: str) -> str | None:
    """`path` normalised if it lies inside `area` (a folder ending in '/'), else None.

    Absolute paths, backslashes and `..` are resolved before the comparison, so no spelling of a
    path leaves the area.
    """
    raw = (path or "").strip().replace("\\", "/")
    if raw.startswith("/"):
        return None
    normal = posixpath.normpath(raw)
    if normal.startswith("..") or not (normal + "/").startswith(area):
        return None
    return normal
