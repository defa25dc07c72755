"""pytest: a file-backed test database that a real worker process can open too."""

from .base import *  # noqa: F403
from .base import DATABASES, VAR_DIR, env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "test-media"

_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    _db["TEST"] = {"NAME": f"test_{_db['NAME']}"}
# The test database is created and dropped under the worker processes: no connection outlives a
# request or a task.
_db["CONN_MAX_AGE"] = 0
# The worker subprocess started by the test suite opens the test database, not the real one.
if env.bool("MLPLATFORM_USE_TEST_DATABASE", default=False):
    _db["NAME"] = _db["TEST"]["NAME"]

MLPLATFORM_LOG_SAMPLE_RATE = env.float("MLPLATFORM_LOG_SAMPLE_RATE", default=0.0)
