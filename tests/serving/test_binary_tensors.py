"""The binary tensor data extension on /v2/models/{name}/infer: the wire format both ways, and
every attack on the decoder's numbers answered with a 400 JSON error (never a 500, never a read
past the body)."""

import json
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.codecs import binary_tensors, open_inference
from serving.codecs.columns import InputError

pytestmark = pytest.mark.django_db

INFER = "/v2/models/iris/infer"
ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
HEADER = "HTTP_INFERENCE_HEADER_CONTENT_LENGTH"


def framed(header: dict[str, Any], *chunks: bytes) -> tuple[bytes, str]:
    """A binary request: (the body, its Inference-Header-Content-Length)."""
    head = json.dumps(header).encode()
    return head + b"".join(chunks), str(len(head))


def strings(*values: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(value)) + value for value in values)


def tensor(name: str, shape: Any, datatype: str, size: Any, **extra: Any) -> dict:
    """A tensor sent in binary (shape and size as given, however wrong)."""
    return {
        "name": name,
        "shape": shape,
        "datatype": datatype,
        "parameters": {"binary_data_size": size},
        **extra,
    }


def post(client: Any, body: bytes, length: str | None, path: str = INFER) -> Any:
    headers = {} if length is None else {HEADER: length}
    return client.post(path, body, content_type="application/octet-stream", **headers)


def test_a_binary_matrix_predicts_as_the_same_json_tensor(api_client, iris):
    # Given the same two rows as binary FP64 and as JSON
    raw = ROWS.astype("<f8").tobytes()
    body, length = framed(
        {
            "inputs": [tensor("x", [2, 4], "FP64", len(raw))],
            "outputs": [{"name": "predict_proba", "parameters": {"binary_data": False}}],
        },
        raw,
    )
    as_json = {
        "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": ROWS.tolist()}],
        "outputs": [{"name": "predict_proba"}],
    }

    # When both are sent
    binary = post(api_client, body, length)
    plain = api_client.post(INFER, as_json, format="json")

    # Then the answers are the same (JSON, since no output was asked in binary)
    assert binary.status_code == 200, binary.content
    assert binary["Content-Type"] == "application/json"
    assert binary.json()["outputs"] == plain.json()["outputs"]


def test_binary_outputs_when_asked_per_output_or_for_the_request(api_client, iris):
    raw = ROWS.astype("<f8").tobytes()
    inputs = [tensor("x", [2, 4], "FP64", len(raw))]
    cases: list[dict[str, Any]] = [
        {"inputs": inputs, "parameters": {"binary_data_output": True}},
        {
            "inputs": inputs,
            "outputs": [
                {"name": "predict", "parameters": {"binary_data": True}},
                {"name": "predict_proba", "parameters": {"binary_data": True}},
            ],
        },
    ]
    for header in cases:
        # When the outputs are asked in binary
        response = post(api_client, *framed(header, raw))

        # Then the body is the JSON header then each output's raw data, in output order
        assert response.status_code == 200, response.content
        assert response["Content-Type"] == "application/octet-stream"
        length = int(response["Inference-Header-Content-Length"])
        head = json.loads(response.content[:length])
        predict, proba = head["outputs"]
        assert "data" not in predict
        assert "data" not in proba
        assert predict["parameters"]["binary_data_size"] == 2 * 4 + len("setosa" + "virginica")
        rest = response.content[length:]
        labels = rest[: predict["parameters"]["binary_data_size"]]
        assert labels == strings(b"setosa", b"virginica")
        values = np.frombuffer(rest[len(labels) :], dtype="<f8").reshape(2, 3)
        assert proba["parameters"]["binary_data_size"] == 6 * 8
        assert values.argmax(axis=1).tolist() == [0, 2]
        assert json.loads(proba["parameters"]["classes"]) == ["setosa", "versicolor", "virginica"]


def test_an_output_may_stay_json_among_binary_ones(api_client, iris):
    raw = ROWS.astype("<f8").tobytes()
    header = {
        "inputs": [tensor("x", [2, 4], "FP64", len(raw))],
        "parameters": {"binary_data_output": True},
        "outputs": [
            {"name": "predict", "parameters": {"binary_data": False}},
            {"name": "predict_proba"},
        ],
    }

    response = post(api_client, *framed(header, raw))

    length = int(response["Inference-Header-Content-Length"])
    predict, proba = json.loads(response.content[:length])["outputs"]
    assert predict["data"] == ["setosa", "virginica"]
    assert len(response.content) - length == proba["parameters"]["binary_data_size"] == 48


def test_binary_columns_of_every_numeric_type_and_strings(api_client, make_version):
    # Given a model with a numeric and a string column, sent as FP32 and BYTES tensors
    make_version("colors")
    x = np.array([0.5, -1.0], dtype="<f4").tobytes()
    colors = strings(b"red", b"blue")
    body, length = framed(
        {
            "inputs": [
                tensor("color", [2], "BYTES", len(colors)),
                tensor("x", [2, 1], "FP32", len(x)),
            ]
        },
        colors,
        x,
    )

    # When it is sent
    response = post(api_client, body, length, path="/v2/models/colors/infer")

    # Then each column reached the model
    assert response.status_code == 200, response.content
    assert response.json()["outputs"][0]["data"] == [1, 0]


@pytest.mark.parametrize(
    ("datatype", "values"),
    [
        ("INT8", np.array([5, 3, 1, 0], dtype="i1")),
        ("INT16", np.array([5, 3, 1, 0], dtype="<i2")),
        ("INT32", np.array([5, 3, 1, 0], dtype="<i4")),
        ("INT64", np.array([5, 3, 1, 0], dtype="<i8")),
        ("UINT8", np.array([5, 3, 1, 0], dtype="u1")),
        ("UINT16", np.array([5, 3, 1, 0], dtype="<u2")),
        ("UINT32", np.array([5, 3, 1, 0], dtype="<u4")),
        ("UINT64", np.array([5, 3, 1, 0], dtype="<u8")),
        ("FP16", np.array([5.1, 3.5, 1.4, 0.2], dtype="<f2")),
        ("FP32", np.array([5.1, 3.5, 1.4, 0.2], dtype="<f4")),
        ("BOOL", np.array([1, 1, 0, 0], dtype="u1")),
    ],
)
def test_every_fixed_size_datatype_is_read_little_endian(api_client, iris, datatype, values):
    raw = values.tobytes()

    response = post(api_client, *framed({"inputs": [tensor("x", [1, 4], datatype, len(raw))]}, raw))

    assert response.status_code == 200, response.content
    assert response.json()["outputs"][0]["shape"] == [1]


FP64_ROW = ROWS[:1].astype("<f8").tobytes()


@pytest.mark.parametrize(
    ("header", "chunks", "length", "needle"),
    [
        # the header length: beyond the body, not a number, negative
        ({"inputs": [tensor("x", [1, 4], "FP64", 32)]}, [FP64_ROW], "99999", "only"),
        ({"inputs": [tensor("x", [1, 4], "FP64", 32)]}, [FP64_ROW], "abc", "byte count"),
        ({"inputs": [tensor("x", [1, 4], "FP64", 32)]}, [FP64_ROW], "-5", "byte count"),
        ({"inputs": [tensor("x", [1, 4], "FP64", 32)]}, [FP64_ROW], "1" * 40, "byte count"),
        # a header that is not JSON (the length cuts it)
        ({"inputs": [tensor("x", [1, 4], "FP64", 32)]}, [FP64_ROW], "10", "not valid JSON"),
        # sizes that do not add up: bytes left over, a size past the end
        ({"inputs": [tensor("x", [1, 4], "FP64", 32)]}, [FP64_ROW, b"\0" * 8], None, "add up"),
        ({"inputs": [tensor("x", [1, 4], "FP64", 40)]}, [FP64_ROW], None, "past the end"),
        # a size that does not match shape and datatype
        ({"inputs": [tensor("x", [1, 4], "FP64", 24)]}, [FP64_ROW[:24]], None, "needs 32 bytes"),
        ({"inputs": [tensor("x", [1, 4], "FP32", 32)]}, [FP64_ROW], None, "needs 16 bytes"),
        # shapes whose product overflows 64 bits, or whose rows exceed the cap
        (
            {"inputs": [tensor("x", [2**62, 2**62, 4], "FP64", 32)]},
            [FP64_ROW],
            None,
            "rows exceed",
        ),
        ({"inputs": [tensor("x", [1, 2**62, 2**62], "FP64", 32)]}, [FP64_ROW], None, "needs"),
        ({"inputs": [tensor("x", [10**6, 4], "FP64", 32)]}, [FP64_ROW], None, "rows exceed"),
        # negative or non-integer numbers
        ({"inputs": [tensor("x", [1, 4], "FP64", -32)]}, [FP64_ROW], None, "non-negative"),
        ({"inputs": [tensor("x", [1, 4], "FP64", True)]}, [FP64_ROW], None, "non-negative"),
        ({"inputs": [tensor("x", [1, 4], "FP64", 32.0)]}, [FP64_ROW], None, "non-negative"),
        ({"inputs": [tensor("x", [-1, 4], "FP64", 32)]}, [FP64_ROW], None, "array of sizes"),
        ({"inputs": [tensor("x", "1,4", "FP64", 32)]}, [FP64_ROW], None, "array of sizes"),
        # missing binary_data_size: the raw bytes are left over
        (
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64"}]},
            [FP64_ROW],
            None,
            "add up",
        ),
        # both data and a size; an unknown datatype
        (
            {"inputs": [tensor("x", [1, 4], "FP64", 32, data=[1, 2, 3, 4])]},
            [FP64_ROW],
            None,
            "both",
        ),
        ({"inputs": [tensor("x", [1, 4], "FP99", 32)]}, [FP64_ROW], None, "FP99"),
        # BYTES: fewer bytes than lengths, a length past the end, bytes left after the elements
        ({"inputs": [tensor("x", [1, 4], "BYTES", 8)]}, [b"\0" * 8], None, "at least 16"),
        (
            {"inputs": [tensor("x", [1, 1], "BYTES", 7)]},
            [struct.pack("<I", 1000) + b"abc"],
            None,
            "past the end",
        ),
        (
            {"inputs": [tensor("x", [1, 1], "BYTES", 9)]},
            [struct.pack("<I", 2**32 - 1) + b"abcde"],
            None,
            "past the end",
        ),
        ({"inputs": [tensor("x", [1], "BYTES", 8)]}, [strings(b"a") + b"xyz"], None, "left after"),
    ],
)
def test_hostile_binary_requests_are_400s(api_client, iris, header, chunks, length, needle):
    body, measured = framed(header, *chunks)

    response = post(api_client, body, length or measured)

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert needle in response.json()["error"]


def test_strings_that_are_not_utf8_are_400s(api_client, make_version):
    make_version("colors")
    colors = strings(b"red", b"\xff\xfe")
    x = np.array([0.5, -1.0], dtype="<f8").tobytes()
    header = {
        "inputs": [tensor("color", [2], "BYTES", len(colors)), tensor("x", [2], "FP64", len(x))]
    }

    response = post(api_client, *framed(header, colors, x), path="/v2/models/colors/infer")

    assert response.status_code == 400
    assert response.json() == {
        "error": "Tensor 'color', element 1: not UTF-8 text.",
        "field": "color",
        "row": 1,
    }


def test_a_size_without_the_header_is_refused(api_client, iris):
    body = {"inputs": [tensor("x", [1, 4], "FP64", 32)]}

    response = api_client.post(INFER, body, format="json")

    assert response.status_code == 400
    assert "Inference-Header-Content-Length" in response.json()["error"]


def test_decoded_values_are_views_of_exactly_the_announced_bytes():
    # Given a body whose raw part holds one tensor and nothing else
    raw = np.arange(6, dtype="<i4").tobytes()
    body, length = framed({"inputs": [tensor("x", [2, 3], "INT32", len(raw))]}, raw)

    # When it is decoded
    data = open_inference.body_decode(body, length)

    # Then the tensor's data is its six values, read without a copy of the body
    values = data["inputs"][0]["data"]
    assert values.tolist() == [0, 1, 2, 3, 4, 5]
    assert not values.flags.writeable


def test_outputs_encode_sends_nulls_back_as_nan():
    body = {
        "outputs": [
            {"name": "predict", "datatype": "FP64", "shape": [3], "data": [1.5, None, -2.0]},
        ]
    }

    encoded = binary_tensors.outputs_encode(body, frozenset({"predict"}))

    assert encoded is not None
    content, length = encoded

    assert json.loads(content[:length])["outputs"][0]["parameters"]["binary_data_size"] == 24
    values = np.frombuffer(content[length:], dtype="<f8")
    assert values[0] == 1.5
    assert np.isnan(values[1])
    assert values[2] == -2.0


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=st.fixed_dictionaries(
        {
            "inputs": st.lists(
                st.fixed_dictionaries(
                    {
                        "name": st.sampled_from(["x", "f0", "f1"]),
                        "shape": st.lists(st.integers(-3, 2**64), min_size=0, max_size=3),
                        "datatype": st.sampled_from([*binary_tensors.FIXED, "BYTES", "X"]),
                        "parameters": st.fixed_dictionaries(
                            {"binary_data_size": st.integers(-8, 2**40)}
                        ),
                    }
                ),
                max_size=3,
            )
        }
    ),
    raw=st.binary(max_size=96),
    slack=st.integers(-4, 4),
)
def test_no_binary_body_breaks_the_decoder(iris, header, raw, slack):
    # Given any header with any sizes, any raw bytes, and a header length that may be wrong
    body, length = framed(header, raw)
    claimed = str(max(0, int(length) + slack))

    # When it is decoded against the model's signature
    try:
        data = open_inference.body_decode(body, claimed)
        open_inference.request(data, iris.signature)
    except InputError:
        pass  # Then the only failure is a 400


def test_an_output_its_datatype_cannot_hold_stays_json():
    # Given integer predictions with a null among them (no INT64 value says "missing")
    body = {
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [2], "data": [1, None]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [2], "data": [0.5, 0.25]},
        ]
    }

    # When both are asked in binary
    encoded = binary_tensors.outputs_encode(body, frozenset({"predict", "predict_proba"}))

    # Then the integers stay JSON and the floats go binary
    assert encoded is not None
    content, length = encoded
    predict, proba = json.loads(content[:length])["outputs"]
    assert predict["data"] == [1, None]
    assert proba["parameters"]["binary_data_size"] == 16
    assert np.frombuffer(content[length:], dtype="<f8").tolist() == [0.5, 0.25]
