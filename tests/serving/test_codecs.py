"""serving.codecs: frame_to_matrix, the contract batch scoring relies on, and records → matrix."""

import numpy as np
import pandas as pd
import pytest

from registry.types import Column, Signature
from serving.codecs import native
from serving.codecs.columns import InputError, columns_to_matrix, frame_to_matrix

NUMERIC = Signature(inputs=(Column(name="a", dtype="float64"), Column(name="b", dtype="int64")))
MIXED = Signature(
    inputs=(Column(name="x", dtype="float64"), Column(name="color", dtype="string")),
    named_columns=True,
)


def test_numeric_frame_becomes_matrix_in_signature_order_ignoring_id_columns():
    frame = pd.DataFrame({"id": [7, 8], "b": [1, 2], "a": [0.5, 1.5]})

    matrix = frame_to_matrix(frame, NUMERIC)

    assert isinstance(matrix, np.ndarray)
    assert matrix.tolist() == [[0.5, 1.0], [1.5, 2.0]]


def test_named_frame_with_strings_stays_a_frame():
    frame = pd.DataFrame({"color": ["red", "blue"], "x": [1.0, 2.0]})

    matrix = frame_to_matrix(frame, MIXED)

    assert isinstance(matrix, pd.DataFrame)
    assert list(matrix.columns) == ["x", "color"]


@pytest.mark.parametrize(
    ("frame", "field", "row", "needle"),
    [
        (pd.DataFrame({"a": [1.0, 2.0]}), "b", None, "Missing column 'b'"),
        (pd.DataFrame({"a": [1.0, np.nan], "b": [1, 2]}), "a", 101, "NaN and Infinity"),
        (pd.DataFrame({"a": [1.0, np.inf], "b": [1, 2]}), "a", 101, "NaN and Infinity"),
        (pd.DataFrame({"a": [1.0, 2.0], "b": ["1", "x"]}), "b", 100, "numeric strings"),
        (pd.DataFrame({"a": [1.0, 2.0], "b": [1, None]}), "b", 101, None),
    ],
)
def test_bad_frames_name_column_and_row_with_offset(frame, field, row, needle):
    with pytest.raises(InputError) as caught:
        frame_to_matrix(frame, NUMERIC, row_offset=100)

    assert caught.value.field == field
    assert caught.value.row == row
    assert caught.value.status_code == 400
    assert caught.value.extra == {"field": field, "row": row}
    if needle:
        assert needle in caught.value.message


def _native(records):
    decoded = native.request({"instances": records})
    return columns_to_matrix(
        decoded.columns, NUMERIC, n_rows=decoded.n_rows, records=decoded.records
    )


def test_numeric_records_become_the_same_matrix_as_their_columns():
    records = [{"b": 1, "a": 0.5}, {"a": 1.5, "b": 2}]

    matrix = _native(records)
    by_columns = columns_to_matrix({"a": [0.5, 1.5], "b": [1, 2]}, NUMERIC, n_rows=2)

    assert isinstance(matrix, np.ndarray)
    assert isinstance(by_columns, np.ndarray)
    assert matrix.dtype == np.float64
    assert matrix.flags.c_contiguous
    assert matrix.tolist() == by_columns.tolist() == [[0.5, 1.0], [1.5, 2.0]]


@pytest.mark.parametrize(
    ("value", "needle"),
    [(True, "a boolean"), ("2", "numeric strings"), (None, "null"), (1e400, "NaN and Infinity")],
)
def test_a_bad_value_in_records_is_named_by_column_and_row(value, needle):
    with pytest.raises(InputError) as caught:
        _native([{"a": 1.0, "b": 1}, {"a": 2.0, "b": value}])

    assert (caught.value.field, caught.value.row) == ("b", 1)
    assert needle in caught.value.message


def test_records_of_huge_finite_values_are_accepted():
    # Their sum overflows: the quick finiteness check of the records path must not refuse them.
    assert _native([{"a": 1e308, "b": 1}, {"a": 1e308, "b": 2}]).tolist() == [
        [1e308, 1.0],
        [1e308, 2.0],
    ]
