"""The native predict route's successful requests, answered in front of Django's handler.

A one-row prediction is a few tens of microseconds of work (decode, check, run the graph,
encode); Django's request handling, its middleware and DRF's dispatch around it cost more than
the work itself, and a gunicorn thread holds the interpreter lock for all of it. This WSGI layer
(installed by `mlplatform/wsgi.py` from the MLPLATFORM_WSGI_LAYERS setting) answers
`POST /api/v1/models/{name}[/versions/{n}|/aliases/{alias}]/predict` itself, with the functions
the DRF view calls (`NativePredictApi`), and the same response.

It answers only when nothing is unusual; every other request goes to Django unchanged, with the
body it already read. So every error up to the prediction (no or bad token, a scope that does
not cover the model, an unknown model, a body that does not decode, a value that does not fit
the signature, a host not allowed, an HTTPS redirect due, throttling configured, a compressed
body) is Django's own answer, and the view stays the one definition of the route. Only errors
of the prediction itself (a model that rejects the input, a runner that crashed or timed out)
are answered here — a prediction must not run twice — built by the API's exception handler, as
for the view.

What it keeps of Django: the ALLOWED_HOSTS check and SecurityMiddleware's headers (worked out
once per host and scheme, by Django's own code), the body size cap, the end of a request's
database connections (closed, or kept for reuse, by `close_old_connections` as Django's
request_finished does: its other receivers reset the URLconf the lane never sets and close cache
clients the lane never opens, and sending the signal was a fifth of the lane's own time), and
the view's headers.
"""

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http.client import responses
from io import BytesIO
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest
from django.db import close_old_connections
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware
from knox.crypto import hash_token
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer

from mlplatform.api import CachedTokenAuthentication
from mlplatform.errors import ApplicationError
from serving import metrics, rejectionstats, services, shadows, traffic
from serving.api.views import NativePredictApi, traffic_record
from serving.codecs import native
from serving.models import PredictionLog

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Headers = list[tuple[str, str]]

# The native predict routes of serving/api/urls.py (Django's `slug` and `int` converters).
_ROUTE = re.compile(
    r"/api/v1/models/(?P<name>[-a-zA-Z0-9_]+)"
    r"(?:/versions/(?P<version>[0-9]+)|/aliases/(?P<alias>[-a-zA-Z0-9_]+))?/predict\Z"
)
_PROTOCOL = str(PredictionLog.Protocol.NATIVE)
# What decides the security headers and whether Django would refuse or redirect the request.
_HOST_KEYS = (
    "HTTP_HOST",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PROTO",
    "SERVER_NAME",
    "SERVER_PORT",
    "wsgi.url_scheme",
)
_MAX_HOSTS = 1024  # clients choose the Host header: the memory of them is bounded
_RENDERER = JSONRenderer()
_ENCODER = json.JSONEncoder(allow_nan=False)


def _constant(name: str) -> Any:
    raise ValueError(name)


_DECODER = json.JSONDecoder(parse_constant=_constant)


class _Decline(Exception):
    """Not a request the lane answers: Django does."""


class NativePredictLane:
    """WSGI middleware: successful native predictions without Django's handler (see above)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.authentication = CachedTokenAuthentication()
        self.view_headers: Headers = [("Allow", ", ".join(NativePredictApi().allowed_methods))]
        self.hosts: dict[tuple[Any, ...], Headers | None] = {}
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        route = _ROUTE.match(environ.get("PATH_INFO", ""))
        if route is None or _throttled() or environ.get("HTTP_CONTENT_ENCODING"):
            # (a compressed body is the view's to inflate, within the size cap)
            return self.app(environ, start_response)
        security = self._security_headers(environ)
        body = _body(environ) if security is not None else None
        if security is None or body is None:
            return self.app(environ, start_response)
        try:
            status, headers, content = self._answer(environ, body, route)
        except _Decline:
            # Django reads the body from the start: hand it the bytes already read.
            environ["wsgi.input"] = BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            return self.app(environ, start_response)
        headers.append(("Content-Length", str(len(content))))
        start_response(status, headers + security + self.view_headers)
        return _Answered(content)

    def _answer(
        self, environ: dict[str, Any], body: bytes, route_match: re.Match[str]
    ) -> tuple[str, Headers, bytes]:
        started = time.perf_counter()
        name = route_match["name"]
        self._authenticate(environ, name)
        services.preload_once()
        try:
            route = traffic.route_resolve(
                model_name=name,
                version=int(route_match["version"]) if route_match["version"] else None,
                alias=route_match["alias"],
            )
            decoded = native.request(_DECODER.decode(body.decode("utf-8")))
            target, role = route.primary, traffic.PRIMARY
            if route.canary is not None:  # as NativePredictApi.choose picks
                header = environ.get("HTTP_X_ROUTING_KEY")
                target, role = route.pick(traffic.request_key(route, header, decoded))
            matrix = services.request_to_matrix(version=target, decoded=decoded)
        except (ApplicationError, ValueError, RecursionError):
            raise _Decline from None
        # From here on the request is answered here: a prediction is never run twice.
        served = str(target.version)
        try:
            result = services.prediction_make(
                version=target, matrix=matrix, outputs=decoded.outputs
            )
            request_id = services.request_id_for(environ.get("HTTP_X_REQUEST_ID"))
            logged = services.prediction_log(
                version=target,
                protocol=_PROTOCOL,
                request_id=request_id,
                decoded=decoded,
                result=result,
                started=started,
                role=role,
                matrix=matrix,
            )
            if route.shadows:
                shadows.submit(
                    route=route,
                    decoded=decoded,
                    answer=result,
                    answered_by=target,
                    request_id=request_id,
                    protocol=_PROTOCOL,
                    logged=logged,
                )
        except ApplicationError as exc:
            # As the API's exception handler answers, rendered as DRF renders it for the view.
            code, content = exc.status_code, _RENDERER.render(native.error_body(exc))
            field = exc.extra.get("field")
            if field and 400 <= code < 500:
                rejectionstats.record(
                    model_id=target.model_id, version_id=target.pk, field=str(field)
                )
            headers = [("Content-Type", "application/json"), ("X-Model-Version", served)]
            rows = 0
        else:
            answer = native.response(model=target.model.name, version=target.version, result=result)
            code, content = 200, _ENCODER.encode(answer).encode("ascii")
            headers = [
                ("Content-Type", "application/json"),
                ("X-Request-ID", request_id),
                ("X-Model-Version", served),
            ]
            rows = decoded.n_rows
        seconds = time.perf_counter() - started
        metrics.record_request(
            model=target.model.name,
            version=served,
            protocol=_PROTOCOL,
            status=code,
            seconds=seconds,
            rows=rows,
        )
        if route.alias_id is not None:
            traffic_record(route, target, role, code, seconds, rows)
        return f"{code} {responses[code]}", headers, content

    def _authenticate(self, environ: dict[str, Any], name: str) -> None:
        """Passes when the request's token may predict with `name`; anything else is Django's
        to answer (401/403 with its exact body)."""
        parts = environ.get("HTTP_AUTHORIZATION", "").split()
        if len(parts) != 2 or parts[0].lower() not in ("token", "bearer"):
            raise _Decline
        try:
            grant = self.authentication.grant_for(hash_token(parts[1]))
        except APIException:
            raise _Decline from None
        if grant.expires_at <= time.time():
            raise _Decline
        if grant.predict_models is not None and name not in grant.predict_models:
            raise _Decline

    def _security_headers(self, environ: dict[str, Any]) -> Headers | None:
        """SecurityMiddleware's response headers for this host and scheme, or None when Django
        would refuse the host or redirect to HTTPS. Worked out once per combination, by
        Django's own code on a request with the same host and scheme."""
        key = tuple(environ.get(name) for name in _HOST_KEYS)
        try:
            return self.hosts[key]
        except KeyError:
            pass
        probe = WSGIRequest(
            {
                **{name: environ[name] for name in _HOST_KEYS if name in environ},
                "REQUEST_METHOD": "POST",
                "PATH_INFO": environ.get("PATH_INFO", "/"),
                "wsgi.input": BytesIO(),
            }
        )
        headers: Headers | None
        try:
            probe.get_host()
        except DisallowedHost:
            headers = None
        else:
            if settings.SECURE_SSL_REDIRECT and not probe.is_secure():
                headers = None
            else:
                security = SecurityMiddleware(lambda request: HttpResponse())
                response = security.process_response(probe, HttpResponse())
                headers = [(k, v) for k, v in response.items() if k.lower() != "content-type"]
        with self.lock:
            if len(self.hosts) >= _MAX_HOSTS:
                self.hosts.clear()
            self.hosts[key] = headers
        return headers


def _throttled() -> bool:
    """Whether DRF's per-user rate limit is on (only DRF's dispatch applies it)."""
    rates = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES") or {}
    return isinstance(rates, dict) and bool(rates.get("user"))


def _body(environ: dict[str, Any]) -> bytes | None:
    """The request body when it has a length Django would read, else None (Django answers)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if not 0 < length <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return None
    return bytes(environ["wsgi.input"].read(length))


class _Answered:
    """The response body; the server closing it ends the request as Django's handler does."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    def __iter__(self) -> Iterator[bytes]:
        yield self.content

    def close(self) -> None:
        close_old_connections()
