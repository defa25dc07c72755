"""Ingest CSV rows with a missing or an extra field: refused with the line, nothing written."""

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from features.models import Feature, FeatureGroup, OfflinePartition
from tests.features.conftest import ingest, make_group

pytestmark = pytest.mark.django_db

HEADER = "customer_id,event_timestamp,spend,note\n"
GOOD = "1,2025-01-01T00:00:00Z,10.5,first\n2,2025-01-02T00:00:00Z,,second\n"


@pytest.fixture
def notes_group(api_client: Any, customer: dict[str, Any]) -> dict[str, Any]:
    return make_group(
        api_client,
        name="notes",
        features=[{"name": "spend", "dtype": "float64"}, {"name": "note", "dtype": "string"}],
    )


def _stored_files() -> list[Path]:
    """Every file stored for the group since it was created (pending ones included)."""
    created = FeatureGroup.objects.get(name="notes").created_at.timestamp()
    root = Path(settings.MEDIA_ROOT) / "features" / "offline" / "notes"
    return sorted(p for p in root.rglob("*") if p.is_file() and p.stat().st_mtime >= created)


def _state() -> tuple[int, list[Path], list[dict[str, Any]]]:
    group = FeatureGroup.objects.get(name="notes")
    stats = [f.statistics for f in Feature.objects.filter(group=group).order_by("name")]
    return OfflinePartition.objects.filter(group=group).count(), _stored_files(), stats


@pytest.mark.parametrize(
    ("body", "line", "fields"),
    [
        # a short row: the last field missing (it used to be read as a null)
        (HEADER + GOOD + "3,2025-01-03T00:00:00Z,7.5\n", 4, 3),
        # a long row: one field too many (a stray comma)
        (HEADER + "1,2025-01-01T00:00:00Z,10.5,first,oops\n" + GOOD, 2, 5),
        # a quoted value spanning two lines and a blank line come before the bad row: the line
        # is the one an editor shows
        (HEADER + '1,2025-01-01T00:00:00Z,1.0,"two\nlines"\n\n2,2025-01-02T00:00:00Z\n', 5, 2),
    ],
    ids=["short", "long", "multiline-value-before"],
)
def test_a_row_with_the_wrong_number_of_fields_is_400_naming_its_line(
    api_client, notes_group, body, line, fields
):
    # Given a group with data and statistics
    assert ingest(api_client, "notes", HEADER + GOOD).status_code == 201
    before = _state()

    # When a file with one ragged row is ingested
    response = ingest(api_client, "notes", body)

    # Then it is refused, naming the line and its field count, and nothing changed
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert f"line {line} has {fields} fields" in detail
    assert "4 fields" in detail  # the header's
    assert _state() == before


def test_every_ragged_row_is_counted_and_the_first_ones_named(api_client, notes_group):
    rows = "".join(f"{i},2025-01-01T00:00:00Z\n" for i in range(1, 9))

    response = ingest(api_client, "notes", HEADER + rows)

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.count("has 2 fields") == 5
    assert "8 row(s)" in detail
    assert "and 3 more" in detail
    assert not _stored_files()


def test_quoted_values_with_commas_and_newlines_are_one_field(api_client, notes_group):
    body = HEADER + '1,2025-01-01T00:00:00Z,1.5,"a, b\nand c"\n2,2025-01-02T00:00:00Z,,""\n'

    response = ingest(api_client, "notes", body)

    assert response.status_code == 201, response.content
    assert response.json() == {"rows": 2}
    note = Feature.objects.get(group__name="notes", name="note")
    assert note.statistics["count"] == 2
    assert note.statistics["nulls"] == 1  # an empty quoted value is a null, as an empty one is


def test_a_header_only_file_is_400_with_no_rows(api_client, notes_group):
    response = ingest(api_client, "notes", HEADER)

    assert response.status_code == 400
    assert "no rows" in response.json()["detail"]
    assert not _stored_files()


def test_a_repeated_header_column_is_400(api_client, notes_group):
    body = "customer_id,event_timestamp,spend,note,note\n1,2025-01-01T00:00:00Z,1,a,b\n"

    response = ingest(api_client, "notes", body)

    assert response.status_code == 400
    assert "repeats column(s): note" in response.json()["detail"]
