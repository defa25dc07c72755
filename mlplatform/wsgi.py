import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings.local")
django_application = get_wsgi_application()

from mlplatform.request_limits import RequestLimits  # noqa: E402  (needs settings configured)

# Every request body is bounded in size and time before Django reads it.
application = RequestLimits(django_application)
