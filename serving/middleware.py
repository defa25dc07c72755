"""Answers the serving protocols' routes straight after SecurityMiddleware and WhiteNoise.

The prediction routes (native, MLflow, Open Inference v2) are token-authenticated JSON APIs:
sessions, CSRF, messages, clickjacking headers and htmx do nothing for them, yet running those
layers and resolving the whole URLconf was a fifth of a one-row prediction's cost. Like
WhiteNoise for static files, this middleware resolves its own routes (`serving.api.urls`) and
calls the view itself; every other path, and any path under its prefixes that is not a serving
route (the registry API under /api/v1/models/, for instance), goes down the full stack.

What these routes keep: SecurityMiddleware's headers and HTTPS redirect (it sits above), the
ALLOWED_HOSTS check (done here, as CommonMiddleware would), Django's exception handling and
request signals, and DRF's authentication, permissions and throttling inside the views.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, ResolverMatch, get_resolver

PREFIXES = ("/api/v1/models/", "/mlflow", "/v1", "/v2")
# Resolved paths remembered per process; clients name any path they like, so the memory is
# bounded (and simply emptied when full, like the other per-process caches of serving).
MAX_REMEMBERED_PATHS = 4096


class ServingRoutesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.resolver = get_resolver("serving.api.urls")
        # path → its match, or None for a path under the prefixes that is not a serving route.
        # Resolving is a pure function of the path, and matching the patterns then building the
        # match was a twentieth of a one-row prediction.
        self.resolved: dict[str, ResolverMatch | None] = {}

    def _resolve(self, path: str) -> ResolverMatch | None:
        try:
            return self.resolved[path]
        except KeyError:
            pass
        try:
            match: ResolverMatch | None = self.resolver.resolve(path)
        except Resolver404:
            match = None
        if len(self.resolved) >= MAX_REMEMBERED_PATHS:
            self.resolved.clear()
        self.resolved[path] = match
        return match

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        path = request.path_info
        if not path.startswith(PREFIXES):
            return self.get_response(request)
        match = self._resolve(path)
        if match is None:
            return self.get_response(request)
        request.get_host()  # raises DisallowedHost (a 400) for a host not in ALLOWED_HOSTS
        request.resolver_match = match
        response = match.func(request, *match.args, **match.kwargs)
        if hasattr(response, "render"):  # a DRF Response, rendered as Django's handler would
            response = response.render()
        return response
