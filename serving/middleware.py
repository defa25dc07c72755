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
from django.urls import Resolver404, get_resolver

PREFIXES = ("/api/v1/models/", "/mlflow/", "/v2")


class ServingRoutesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.resolver = get_resolver("serving.api.urls")

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        path = request.path_info
        if not path.startswith(PREFIXES):
            return self.get_response(request)
        try:
            match = self.resolver.resolve(path)
        except Resolver404:
            return self.get_response(request)
        request.get_host()  # raises DisallowedHost (a 400) for a host not in ALLOWED_HOSTS
        request.resolver_match = match
        response = match.func(request, *match.args, **match.kwargs)
        if hasattr(response, "render"):  # a DRF Response, rendered as Django's handler would
            response = response.render()
        return response
