"""`Content-Encoding: gzip` / `deflate` request bodies on every serving route, inflated within the
body cap: a zip bomb is a 413 without ever holding more than the cap, a corrupt stream a 400, an
unknown encoding a 415."""

import gzip
import json
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from mlplatform.errors import ApplicationError
from serving.api.bodies import decompress

pytestmark = pytest.mark.django_db

ROW = [5.1, 3.5, 1.4, 0.2]
RECORD = dict(zip(["f0", "f1", "f2", "f3"], ROW, strict=True))


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,  # what "deflate" means on the wire: a zlib stream
    "deflate-raw": raw_deflate,  # what some clients send as "deflate"
}

# (path, content type, body): one request per protocol.
ROUTES = [
    ("/api/v1/models/iris/predict", "application/json", json.dumps({"instances": [RECORD]})),
    (
        "/mlflow/models/iris/invocations",
        "application/json",
        json.dumps({"dataframe_split": {"columns": list(RECORD), "data": [ROW]}}),
    ),
    ("/mlflow/models/iris/invocations", "text/csv", "f0,f1,f2,f3\n5.1,3.5,1.4,0.2\n"),
    ("/v1/models/iris:predict", "application/json", json.dumps({"instances": [ROW]})),
    (
        "/v2/models/iris/infer",
        "application/json",
        json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}),
    ),
]


def send(client: Any, path: str, content_type: str, body: bytes, encoding: str) -> Any:
    return client.post(path, body, content_type=content_type, HTTP_CONTENT_ENCODING=encoding)


def setosa(response: Any) -> bool:
    text = response.content.decode()
    return response.status_code == 200 and "setosa" in text


@pytest.mark.parametrize("encoder", list(ENCODERS))
@pytest.mark.parametrize(("path", "content_type", "body"), ROUTES)
def test_every_route_takes_compressed_bodies(api_client, iris, path, content_type, body, encoder):
    compressed = ENCODERS[encoder](body.encode())
    encoding = encoder.removesuffix("-raw")

    response = send(api_client, path, content_type, compressed, encoding)

    assert setosa(response), response.content


def test_several_gzip_members_are_one_body(api_client, iris):
    text = json.dumps({"instances": [RECORD]}).encode()
    body = gzip.compress(text[:10]) + gzip.compress(text[10:])

    response = send(api_client, ROUTES[0][0], "application/json", body, "gzip")

    assert setosa(response), response.content


@pytest.mark.parametrize(("path", "content_type", "body"), ROUTES)
def test_a_zip_bomb_is_413_in_each_protocols_shape(
    api_client, iris, settings, path, content_type, body
):
    # Given a small body cap and 16 MiB of spaces compressed to a few kilobytes
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    bomb = gzip.compress(body.encode() + b" " * (16 << 20), compresslevel=9)
    assert len(bomb) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    # When it is sent
    response = send(api_client, path, content_type, bomb, "gzip")

    # Then it is refused as too large, in JSON
    assert response.status_code == 413
    assert "100000 bytes" in response.content.decode()
    assert response["Content-Type"] == "application/json"


def test_inflating_a_bomb_never_holds_more_than_the_cap():
    # Given 256 MiB of zeros compressed, and a 1 MiB cap
    bomb = zlib.compress(b"\0" * (256 << 20), 9)
    cap = 1 << 20

    # When it is inflated
    tracemalloc.start()
    try:
        with pytest.raises(ApplicationError) as refused:
            decompress(bomb, "deflate", cap=cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Then it stops at the cap: a 413, and the memory held stays within a few caps
    assert refused.value.status_code == 413
    assert peak < 4 * cap


def test_a_body_exactly_at_the_cap_is_inflated():
    data = b"x" * 5000

    assert decompress(gzip.compress(data), "gzip", cap=5000) == data
    with pytest.raises(ApplicationError):
        decompress(gzip.compress(data), "gzip", cap=4999)


@pytest.mark.parametrize(
    ("encoding", "body", "needle"),
    [
        ("gzip", b"not gzip at all", "not valid gzip"),
        ("gzip", gzip.compress(b'{"instances": []}')[:-6], "truncated"),
        ("gzip", b"", "truncated"),
        ("deflate", zlib.compress(b'{"instances": []}')[:-3], "truncated"),
        ("deflate", zlib.compress(b"{}") + b"trailing", "after the stream"),
        ("gzip", gzip.compress(b"{}") + b"\0\0\0", "not valid gzip"),
        ("deflate", b"\xff" * 20, "not valid deflate"),
    ],
)
def test_corrupt_streams_are_400s(api_client, iris, encoding, body, needle):
    response = send(api_client, "/v2/models/iris/infer", "application/json", body, encoding)

    assert response.status_code == 400
    assert needle in response.json()["error"]


@pytest.mark.parametrize(("path", "content_type", "body"), ROUTES)
def test_an_unknown_encoding_is_415(api_client, iris, path, content_type, body):
    response = send(api_client, path, content_type, body.encode(), "br")

    assert response.status_code == 415
    assert "br" in response.content.decode()


def test_identity_is_no_encoding(api_client, iris):
    path, content_type, body = ROUTES[0]

    assert setosa(send(api_client, path, content_type, body.encode(), "identity"))
