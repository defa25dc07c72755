import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings.local")
django_application = get_wsgi_application()

# Imported once settings are configured.
from django.conf import settings  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

from mlplatform.request_limits import RequestLimits, WSGIApp  # noqa: E402


def build(app: WSGIApp) -> WSGIApp:
    """Django's handler wrapped in the configured layers (MLPLATFORM_WSGI_LAYERS, outermost
    first, named by dotted path so that this bottom layer imports none of the apps), then in the
    request limits: every request body is bounded in size and time before anything reads it."""
    for path in reversed(settings.MLPLATFORM_WSGI_LAYERS):
        app = import_string(path)(app)
    return RequestLimits(app)


application = build(django_application)
