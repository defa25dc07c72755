"""Where feature data may come from: data meant for features, never the platform's own.

A feature group's statistics and training sets publish what its source holds, so a source that
could name the platform's tables (tokens, users, sessions) or any file in storage (other teams'
batch inputs, artifacts) would publish those. So:

- a SQL table is read from the operator's separate sources database
  (`MLPLATFORM_SOURCE_DATABASE_URL`) when one is configured, else from the platform's database
  only if the operator listed it in `MLPLATFORM_SOURCE_TABLES`, and never if it is one of the
  platform's own tables (any installed model's table, Django's, the database's catalogs);
- a storage path must lie under the owning team's sources area (`sources/<team>/`), after
  normalisation.

Checked when a source is created and again when it is read.
"""

import re
from typing import Any

from django.conf import settings
from django.db import connection, connections

from mlplatform.areas import area_path, team_area
from mlplatform.errors import ApplicationError

SOURCES_AREA = "sources/"
SOURCES_ALIAS = "sources"
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
# Catalogs and framework tables that are never feature data, whatever is installed.
_PLATFORM_PREFIXES = ("django_", "auth_", "authtoken_", "sqlite_", "pg_", "information_schema")


def _has_sources_database() -> bool:
    return SOURCES_ALIAS in settings.DATABASES


def _platform_tables() -> set[str]:
    return {
        name.lower() for name in connection.introspection.django_table_names(include_views=True)
    }


def sql_table_check(table: str) -> str:
    """The table name a SQL source may read, or ApplicationError saying why not."""
    table = (table or "").strip()
    if not _TABLE_NAME.match(table):
        raise ApplicationError(f"path: {table!r} is not a table name.", extra={"field": "path"})
    allowed = {name.strip().lower() for name in settings.MLPLATFORM_SOURCE_TABLES if name.strip()}
    bare = table.rsplit(".", 1)[-1].lower()
    if _has_sources_database():
        if allowed and table.lower() not in allowed:
            raise ApplicationError(
                f"path: {table!r} is not one of the tables the operator opened to features "
                "(MLPLATFORM_SOURCE_TABLES).",
                extra={"field": "path"},
            )
        return table
    if bare in _platform_tables() or bare.startswith(_PLATFORM_PREFIXES):
        raise ApplicationError(
            f"path: {table!r} is one of the platform's own tables; feature sources may not read "
            "them.",
            extra={"field": "path"},
        )
    if table.lower() not in allowed:
        raise ApplicationError(
            f"path: {table!r} is not open to features: an operator lists tables in "
            "MLPLATFORM_SOURCE_TABLES or configures a separate MLPLATFORM_SOURCE_DATABASE_URL.",
            extra={"field": "path"},
        )
    return table


def sql_connection() -> Any:
    """The connection SQL sources are read through."""
    return connections[SOURCES_ALIAS] if _has_sources_database() else connection


def storage_path_check(path: str, *, owner: Any) -> str:
    """The normalised storage path a source of `owner` may read: under that team's area.

    Another team's folder, the rest of storage (batch inputs, partitions, artifacts) and a
    source with no team are refused, after normalisation (`..`, backslashes, absolute paths).
    """
    if owner is None:
        raise ApplicationError(
            "path: a storage source belongs to a team and reads that team's sources area; "
            "give it an owner.",
            extra={"field": "path"},
        )
    area = team_area(SOURCES_AREA, owner)
    normal = area_path(path, area)
    if normal is None or normal + "/" == area:
        raise ApplicationError(
            f"path: storage sources of the team {owner.name} must lie under {area!r}; "
            f"{path!r} does not.",
            extra={"field": "path"},
        )
    return normal
