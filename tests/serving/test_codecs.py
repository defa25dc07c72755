"""serving.codecs.frame_to_matrix: the contract batch scoring relies on."""

import numpy as np
import pandas as pd
import pytest

from serving.codecs import InputError, frame_to_matrix

NUMERIC = {
    "inputs": [{"name": "a", "dtype": "float64"}, {"name": "b", "dtype": "int64"}],
    "named_columns": False,
}
MIXED = {
    "inputs": [{"name": "x", "dtype": "float64"}, {"name": "color", "dtype": "string"}],
    "named_columns": True,
}


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
