"""Request bodies the web workers will read: bounded in size and in time, for every route.

A WSGI layer around Django (mlplatform/wsgi.py), so it sees a request before anything reads
its body:

- The declared `Content-Length` is checked against the route's cap first: multipart uploads
  (artifacts, feature files, batch inputs, admin forms) against the largest upload the platform
  accepts, every other body against MLPLATFORM_MAX_BODY_BYTES. Too large → 413 JSON at once,
  nothing read. A body sent without a length (chunked) is cut at the same cap while read.
- A body the view did not read to its end (it answered first: a 401, a 404) closes the
  connection after the response, so the server never reads the rest of it.
- A client that trickles its body cannot hold a worker thread for as long as it likes: each
  read waits at most MLPLATFORM_BODY_IDLE_SECONDS for bytes (a socket timeout), and the whole
  body must arrive within MLPLATFORM_BODY_GRACE_SECONDS plus its length at
  MLPLATFORM_BODY_MIN_BYTES_PER_SECOND. Past either → 408 JSON and the connection is closed.

Whatever the view made of the cut body (a parse error, say), the client gets the 408/413: the
response is replaced when Django hands it over.
"""

import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class BodyRefused(Exception):
    """Raised from a read of the request body; carries the HTTP answer."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _too_large(cap: int, setting: str) -> BodyRefused:
    return BodyRefused(
        "413 Request Entity Too Large", f"The request body is larger than {cap} bytes ({setting})."
    )


def body_cap(content_type: str) -> tuple[int, str]:
    """The largest body a route may receive, and the setting that says so."""
    if content_type.lower().startswith("multipart/"):
        # Room for the form's other fields and the multipart framing around the file.
        largest = max(settings.MLPLATFORM_MAX_UPLOAD_BYTES, settings.MLPLATFORM_MAX_ARTIFACT_BYTES)
        return int(largest) + 1024 * 1024, "MLPLATFORM_MAX_UPLOAD_BYTES"
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE), "MLPLATFORM_MAX_BODY_BYTES"


class GuardedInput:
    """`wsgi.input` that refuses to read past a cap, a deadline, or an idle socket."""

    def __init__(self, stream: Any, *, cap: int, setting: str, deadline: float) -> None:
        self.stream = stream
        self.cap = cap
        self.setting = setting
        self.deadline = deadline
        self.received = 0
        self.ended = False  # a read came back empty: the client sent the whole body
        self.refused: BodyRefused | None = None

    def _guard(self, read: Callable[[], bytes]) -> bytes:
        if self.refused is not None:
            raise self.refused
        if time.monotonic() > self.deadline:
            self.refused = BodyRefused(
                "408 Request Timeout", "The request body arrived too slowly; send it faster."
            )
            raise self.refused
        try:
            data = read()
        except TimeoutError:  # the socket's timeout: no byte within the idle time
            self.refused = BodyRefused(
                "408 Request Timeout", "The client stopped sending the request body."
            )
            raise self.refused from None
        self.received += len(data)
        if not data:
            self.ended = True
        if self.received > self.cap:
            self.refused = _too_large(self.cap, self.setting)
            raise self.refused
        return data

    def read(self, size: int | None = -1) -> bytes:
        return self._guard(lambda: self.stream.read(size))

    def readline(self, size: int | None = -1) -> bytes:
        return self._guard(lambda: self.stream.readline(size))

    def __iter__(self) -> "GuardedInput":
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def _answer(refused: BodyRefused, start_response: StartResponse, sock: Any) -> list[bytes]:
    body = json.dumps({"detail": refused.detail}).encode()
    start_response(
        refused.status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    _close_after_response(start_response, sock)  # the rest of the body is never read
    return [body]


def _close_after_response(start_response: StartResponse, sock: Any) -> None:
    """Ends the connection once this response is sent, unread body and all."""
    force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
    if force_close is not None:  # gunicorn's response: it then says `Connection: close`
        force_close()
    if sock is not None:
        with contextlib.suppress(OSError):  # whatever else the client sends is never read
            sock.shutdown(socket.SHUT_RD)


class RequestLimits:
    """WSGI middleware applying the limits above; see the module docstring."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        declared_text = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not declared_text and not chunked:
            return self.app(environ, start_response)  # no body: nothing to guard
        cap, setting = body_cap(environ.get("CONTENT_TYPE", ""))
        declared = int(declared_text) if declared_text.isdigit() else 0
        sock = environ.get("gunicorn.socket")
        if declared > cap:
            return _answer(_too_large(cap, setting), start_response, sock)

        if sock is not None:
            sock.settimeout(float(settings.MLPLATFORM_BODY_IDLE_SECONDS))
        allowed = float(settings.MLPLATFORM_BODY_GRACE_SECONDS) + (declared or cap) / float(
            settings.MLPLATFORM_BODY_MIN_BYTES_PER_SECOND
        )
        guarded = GuardedInput(
            environ["wsgi.input"], cap=cap, setting=setting, deadline=time.monotonic() + allowed
        )
        environ["wsgi.input"] = guarded

        def guarded_start(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            if guarded.refused is not None:
                return None  # answered below instead
            if not (guarded.ended or (declared and guarded.received >= declared)):
                # The view answered without reading the whole body (a 401, say). Keeping the
                # connection would make the server read and discard the rest, with no limit.
                _close_after_response(start_response, sock)
            return start_response(status, headers, exc_info)

        try:
            result = self.app(environ, guarded_start)
        finally:
            if sock is not None:
                sock.settimeout(None)
        if guarded.refused is not None:
            if hasattr(result, "close"):
                result.close()
            return _answer(guarded.refused, start_response, sock)
        return result
