"""Bounded request bodies, tried against the real web server (gunicorn with the project config).

Finding: two clients sending bodies declared at 3 GiB at a trickle held both web workers for as
long as they liked, and /healthz timed out.
"""

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.servers import gunicorn_server

pytestmark = pytest.mark.django_db(transaction=True)

IDLE_SECONDS = 1.5
# A sign-in form with a CSRF cookie: the CSRF check reads the body to find the form's token.
FORM = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={'a' * 32}"}


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    """One gunicorn worker with the default thread count, as `make run` starts it."""
    with gunicorn_server(
        "request-limits",
        WEB_CONCURRENCY="1",
        MLPLATFORM_MAX_BODY_BYTES="100000",
        MLPLATFORM_BODY_IDLE_SECONDS=str(IDLE_SECONDS),
        MLPLATFORM_BODY_GRACE_SECONDS="2",
        MLPLATFORM_BODY_MIN_BYTES_PER_SECOND="50000",
    ) as started:
        yield started


def _send_head(port: int, path: str, headers: dict[str, str]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def _assert_health_answers(base: str) -> None:
    started = time.monotonic()
    response = requests.get(f"{base}/healthz", timeout=5, headers={"Connection": "close"})
    assert response.status_code == 200
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/models/churn/versions", "multipart/form-data; boundary=xyz"),
        ("/api/v1/features/groups/stats/ingest", "multipart/form-data; boundary=xyz"),
        ("/api/v1/jobs/", "multipart/form-data; boundary=xyz"),
        ("/admin/registry/modelversion/add/", "multipart/form-data; boundary=xyz"),
        ("/api/v1/models/", "application/json"),
        ("/api/v1/models/churn/predict", "application/json"),
        ("/mlflow/models/churn/invocations", "text/csv"),
    ],
)
def test_a_body_declared_too_large_is_413_before_any_byte_is_read(server, path, content_type):
    _, port = server
    sock = _send_head(
        port, path, {"Content-Type": content_type, "Content-Length": str(3 * 1024**3)}
    )
    started = time.monotonic()
    status, headers, body = _read_response(sock)
    sock.close()

    assert status == 413
    assert time.monotonic() - started < 5  # answered from the header, not after a read timeout
    assert headers["content-type"] == "application/json"
    assert "larger than" in json.loads(body)["detail"]


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_body_the_view_does_not_read_is_not_read_by_the_server_either(server, framing):
    """Unauthenticated: the view answers 401 without reading the body, and the connection is
    closed instead of the server draining whatever the client goes on sending."""
    _, port = server
    framing_header = (
        {"Content-Length": "90000"} if framing == "length" else {"Transfer-Encoding": "chunked"}
    )
    sock = _send_head(
        port, "/api/v1/models/", {"Content-Type": "application/json", **framing_header}
    )
    sock.sendall(b"5\r\n[[[[[\r\n" if framing == "chunked" else b"[[[[[")
    status, headers, _ = _read_response(sock)
    assert status == 401
    assert headers.get("connection") == "close"
    sock.settimeout(5)
    assert sock.recv(1) == b""  # closed by the server
    sock.close()


def test_trickling_clients_hold_threads_not_the_server(server):
    base, port = server
    stop = threading.Event()
    statuses: list[int] = []

    def trickle() -> None:
        # A form: CSRF protection reads the body before anything else answers.
        sock = _send_head(
            port,
            "/admin/login/",
            {**FORM, "Content-Length": "90000"},
        )
        while not stop.is_set():
            try:
                sock.sendall(b"x" * 100)  # far below the minimum rate of this server
            except OSError:
                break
            time.sleep(0.2)
        try:
            statuses.append(_read_response(sock)[0])
        except OSError:
            statuses.append(0)
        sock.close()

    clients = [threading.Thread(target=trickle) for _ in range(3)]
    for client in clients:
        client.start()
    try:
        time.sleep(1)
        for _ in range(5):  # the server keeps answering while three bodies trickle in
            _assert_health_answers(base)
            time.sleep(0.2)
    finally:
        time.sleep(3)  # past the 2 s grace: the trickles are cut off
        stop.set()
        for client in clients:
            client.join(timeout=30)
    assert statuses
    assert set(statuses) <= {408, 0}, statuses  # 408, or the connection closed on them


def test_a_client_that_stops_sending_is_cut_off_after_the_idle_timeout(server):
    base, port = server
    sock = _send_head(
        port,
        "/admin/login/",
        {**FORM, "Content-Length": "5000"},
    )
    sock.sendall(b"username=")  # then nothing more
    started = time.monotonic()
    status, headers, body = _read_response(sock)
    waited = time.monotonic() - started
    sock.close()

    assert status == 408
    assert headers.get("connection") == "close"
    assert "stopped sending" in json.loads(body)["detail"]
    assert IDLE_SECONDS - 0.5 < waited < IDLE_SECONDS + 5
    _assert_health_answers(base)


def test_a_slow_body_within_the_limits_is_read_whole(server):
    """A form that keeps coming at a fair rate reaches the view whole: the sign-in form answers
    about the wrong password, which it can only do having read every field."""
    base, port = server
    session = requests.Session()
    page = session.get(f"{base}/admin/login/", timeout=10)
    csrf = session.cookies["csrftoken"]
    marker = 'name="csrfmiddlewaretoken" value="'
    form_token = page.text.split(marker, 1)[1].split('"', 1)[0]
    payload = (
        f"csrfmiddlewaretoken={form_token}&username=nobody&password={'x' * 3000}&next=/admin/"
    ).encode()
    sock = _send_head(
        port,
        "/admin/login/",
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(len(payload)),
            "Cookie": f"csrftoken={csrf}",
            "Referer": f"{base}/admin/login/",
        },
    )
    for start in range(0, len(payload), 500):
        sock.sendall(payload[start : start + 500])
        time.sleep(0.15)
    status, _, body = _read_response(sock)
    sock.close()

    assert status == 200
    assert b"correct username and password" in body
