"""Settings shared by every environment; everything that varies comes from env vars."""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Everything the platform writes locally (SQLite, media, the embedded broker) lives here.
VAR_DIR = Path(env("MLPLATFORM_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite cannot create its own parent folder

SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-only-insecure-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_celery_results",
    "django_htmx",
    "auditlog",
    "mlplatform",
    "accounts",
    "tenancy",
    "registry",
    "serving",
    "features",
    "jobs",
    "batch",
    "rollout",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The prediction routes stop here: they need none of the layers below (serving/middleware.py).
    "serving.middleware.ServingRoutesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Names the signed-in (or token-authenticated) user on every audit record of the request.
    "mlplatform.audit.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# WSGI layers between the request limits and Django's handler, outermost first (mlplatform/wsgi.py).
# The predict lane answers successful native predictions without Django's handler and hands
# every other request to it (serving/api/predict_lane.py); an empty value turns it off.
MLPLATFORM_WSGI_LAYERS = env.list(
    "MLPLATFORM_WSGI_LAYERS", default=["serving.api.predict_lane.NativePredictLane"]
)

ROOT_URLCONF = "mlplatform.urls"
WSGI_APPLICATION = "mlplatform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and the web write concurrently; without these SQLite says "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=20000; PRAGMA synchronous=NORMAL;"
        ),
    }
# Persistent connections, one per thread: opening one is a TCP and auth round trip on
# PostgreSQL, and a file open plus the pragmas above on SQLite, which cost more than a hot-path
# read (an online feature lookup) itself.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Feature sources of kind sql_table: a separate database the operator fills with data meant for
# features, or else an explicit list of tables in the platform's database (never its own).
if env("MLPLATFORM_SOURCE_DATABASE_URL", default=""):
    DATABASES["sources"] = env.db("MLPLATFORM_SOURCE_DATABASE_URL")
MLPLATFORM_SOURCE_TABLES = env.list("MLPLATFORM_SOURCE_TABLES", default=[])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# The team rules (tenancy/rules.py) answer for objects; ModelBackend for model permissions.
AUTHENTICATION_BACKENDS = [
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "accounts:login"

# --- files ----------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MLPLATFORM_MEDIA_ROOT", default=str(VAR_DIR / "media")))
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
STORAGES = {
    "default": (
        {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": AWS_STORAGE_BUCKET_NAME,
                "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None),
                "file_overwrite": False,
            },
        }
        if AWS_STORAGE_BUCKET_NAME
        else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Uploads above this size are spooled to disk instead of memory; the hard caps are per endpoint.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MLPLATFORM_MAX_BODY_BYTES", default=10 * 1024 * 1024)
# A request body must keep coming (each read waits at most IDLE seconds) and arrive whole within
# GRACE seconds plus its length at MIN_BYTES_PER_SECOND; else 408 (mlplatform/request_limits.py).
MLPLATFORM_BODY_IDLE_SECONDS = env.float("MLPLATFORM_BODY_IDLE_SECONDS", default=20.0)
MLPLATFORM_BODY_GRACE_SECONDS = env.float("MLPLATFORM_BODY_GRACE_SECONDS", default=30.0)
MLPLATFORM_BODY_MIN_BYTES_PER_SECOND = env.int(
    "MLPLATFORM_BODY_MIN_BYTES_PER_SECOND", default=64 * 1024
)

# --- audit ----------------------------------------------------------------------------------
# Every write to these models leaves a record: who, what, when, each field from -> to
# (django-auditlog; mlplatform/audit.py). Not the derived, high-volume rows (prediction log,
# chunk leases, online values), nor fields a worker moves on its own (progress, timestamps).
AUDITLOG_INCLUDE_TRACKING_MODELS = (
    {"model": "registry.registeredmodel", "exclude_fields": ["updated_at"]},
    {"model": "registry.modelversion", "exclude_fields": ["updated_at"]},
    {"model": "registry.modelalias", "exclude_fields": ["updated_at"]},
    {"model": "features.entity"},
    {"model": "features.datasource"},
    {
        "model": "features.featuregroup",
        "exclude_fields": ["updated_at", "materialised_at"],
        "m2m_fields": ["transformation_sources"],
    },
    {"model": "features.feature", "exclude_fields": ["statistics"]},
    {"model": "features.featureservice", "m2m_fields": ["features"]},
    {
        "model": "jobs.job",
        "exclude_fields": ["progress_done", "progress_total", "updated_at", "result"],
    },
    {"model": "batch.batchschedule", "exclude_fields": ["last_input", "last_run_at"]},
    {"model": "accounts.apitoken", "exclude_fields": ["digest", "last_used"]},
    {"model": "tenancy.grant"},
    {"model": "auth.user", "exclude_fields": ["password", "last_login"], "m2m_fields": ["groups"]},
    {"model": "auth.group", "m2m_fields": ["permissions"]},
)
# The client's address as the web server saw it; X-Forwarded-For is not trusted for this.
AUDITLOG_DISABLE_REMOTE_ADDR = False

# --- cache ------------------------------------------------------------------------------------
# Holds the per-token request counts of MLPLATFORM_THROTTLE_RATE. The default is per process; with
# several web processes set CACHE_URL (e.g. redis://127.0.0.1:6379/2) so they share one count.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "mlplatform.api.BearerOrTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "mlplatform.api.ContentNegotiation",
    "DEFAULT_PARSER_CLASSES": [
        "mlplatform.api.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "mlplatform.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "mlplatform.schema.AutoSchema",
    "EXCEPTION_HANDLER": "mlplatform.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env("MLPLATFORM_THROTTLE_RATE", default=None)},
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "mlplatform API",
    "DESCRIPTION": "Model registry, real-time and batch serving, and a feature store.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "JobKindEnum": "jobs.models.Job.Kind",
        "DataSourceKindEnum": "features.models.DataSource.Kind",
    },
}

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
BROKER_DIR = VAR_DIR / "broker"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # One folder is both the inbox and the outbox, so every process on this host shares the queue.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": env.float("MLPLATFORM_BROKER_POLL_SECONDS", default=0.2),
    }
    CELERY_BROKER_TRANSPORT = "mlplatform.broker:Transport"  # atomic message files
    for _folder in ("queue", "control"):  # the transport does not create its folders
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A message whose worker died is redelivered after this; batch chunks also have leases.
        "visibility_timeout": env.int("MLPLATFORM_VISIBILITY_TIMEOUT", default=3600),
    }
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_EXPIRES = 7 * 24 * 3600
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = False  # opted into per idempotent task
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("MLPLATFORM_TASK_TIME_LIMIT", default=3600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("MLPLATFORM_TASK_SOFT_TIME_LIMIT", default=3300)
CELERY_TASK_TRACK_STARTED = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# --- the platform -------------------------------------------------------------------------
MLPLATFORM_MAX_ARTIFACT_BYTES = env.int("MLPLATFORM_MAX_ARTIFACT_BYTES", default=512 * 1024 * 1024)
MLPLATFORM_MAX_UPLOAD_BYTES = env.int("MLPLATFORM_MAX_UPLOAD_BYTES", default=2 * 1024**3)
# A compressed joblib or skops artifact may not expand past this while being scanned.
MLPLATFORM_MAX_EXPANDED_BYTES = env.int("MLPLATFORM_MAX_EXPANDED_BYTES", default=4 * 1024**3)
# The scan gives up (and refuses the artifact) past this many pickle opcodes or seconds.
MLPLATFORM_SCAN_MAX_OPCODES = env.int("MLPLATFORM_SCAN_MAX_OPCODES", default=20_000_000)
MLPLATFORM_SCAN_MAX_SECONDS = env.float("MLPLATFORM_SCAN_MAX_SECONDS", default=60.0)
MLPLATFORM_SANDBOX_TIMEOUT_SECONDS = env.int("MLPLATFORM_SANDBOX_TIMEOUT_SECONDS", default=120)
MLPLATFORM_SANDBOX_MEMORY_MB = env.int("MLPLATFORM_SANDBOX_MEMORY_MB", default=4096)
# Without seccomp, untrusted artifacts are refused unless this is set (documented as unsafe).
MLPLATFORM_UNSAFE_SANDBOX = env.bool("MLPLATFORM_UNSAFE_SANDBOX", default=False)
# ONNX graphs must agree with the Python model on probe rows: labels equal, numbers within this
# absolute tolerance (relative for values larger than 1).
MLPLATFORM_ONNX_TOLERANCE = env.float("MLPLATFORM_ONNX_TOLERANCE", default=1e-5)
# Model runners serve versions that do not compile to ONNX, from sandboxed processes.
MLPLATFORM_RUNNER_TIMEOUT_SECONDS = env.float("MLPLATFORM_RUNNER_TIMEOUT_SECONDS", default=5.0)
MLPLATFORM_RUNNER_STARTUP_SECONDS = env.float("MLPLATFORM_RUNNER_STARTUP_SECONDS", default=60.0)
MLPLATFORM_RUNNER_MEMORY_MB = env.int("MLPLATFORM_RUNNER_MEMORY_MB", default=2048)
# A version whose runners crash or time out this many times is quarantined.
MLPLATFORM_RUNNER_MAX_FAILURES = env.int("MLPLATFORM_RUNNER_MAX_FAILURES", default=3)
MLPLATFORM_MAX_BATCH_ROWS = env.int("MLPLATFORM_MAX_BATCH_ROWS", default=10_000)
MLPLATFORM_MODEL_CACHE_SIZE = env.int("MLPLATFORM_MODEL_CACHE_SIZE", default=16)
MLPLATFORM_ALIAS_TTL_SECONDS = env.float("MLPLATFORM_ALIAS_TTL_SECONDS", default=1.0)
# How long the prediction and online-feature routes trust a checked token (per process).
MLPLATFORM_TOKEN_CACHE_SECONDS = env.float("MLPLATFORM_TOKEN_CACHE_SECONDS", default=5.0)
# API tokens (accounts.ApiToken, django-rest-knox): a new token's default and longest lifetime in
# days; "never" lets users create tokens that do not expire (an operator's choice, not a user's).
_ttl_days = env("MLPLATFORM_TOKEN_TTL_DAYS", default="90").strip().lower()
MLPLATFORM_TOKEN_TTL_DAYS = None if _ttl_days == "never" else float(_ttl_days)
KNOX_TOKEN_MODEL = "accounts.ApiToken"  # noqa: S105 - a model's name
# knox's own migrations would create its unused token table (they ignore the swap above), and a
# table nothing knows of that references auth_user breaks every TRUNCATE of it on PostgreSQL.
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {
    "TOKEN_TTL": None if _ttl_days == "never" else timedelta(days=float(_ttl_days)),
    # Lets secret scanners and people recognise a key (knox allows up to 10 characters).
    "TOKEN_PREFIX": "mlp_",
    "AUTH_HEADER_PREFIX": "Token",  # mlplatform.api accepts "Bearer" as well
}
MLPLATFORM_PRELOAD = env.list("MLPLATFORM_PRELOAD", default=[])
# /metrics names every model and version: Prometheus sends this as a Bearer token (staff API
# tokens work too).
MLPLATFORM_METRICS_TOKEN = env("MLPLATFORM_METRICS_TOKEN", default="")
MLPLATFORM_LOG_SAMPLE_RATE = env.float("MLPLATFORM_LOG_SAMPLE_RATE", default=0.01)
MLPLATFORM_LOG_BACKGROUND = env.bool("MLPLATFORM_LOG_BACKGROUND", default=True)
MLPLATFORM_LOG_BATCH_SIZE = env.int("MLPLATFORM_LOG_BATCH_SIZE", default=200)
MLPLATFORM_LOG_FLUSH_SECONDS = env.float("MLPLATFORM_LOG_FLUSH_SECONDS", default=1.0)
# Prediction log (serving/predictionlog.py): database rows for the pages at most this many a
# second per process (every sampled request still goes to Parquet); a Parquet file per version
# once this many rows wait or the oldest waited this long; partitions and rows kept this many days.
MLPLATFORM_LOG_DB_ROWS_PER_SECOND = env.int("MLPLATFORM_LOG_DB_ROWS_PER_SECOND", default=20)
MLPLATFORM_LOG_FILE_ROWS = env.int("MLPLATFORM_LOG_FILE_ROWS", default=100_000)
MLPLATFORM_LOG_FILE_SECONDS = env.float("MLPLATFORM_LOG_FILE_SECONDS", default=60.0)
MLPLATFORM_LOG_RETENTION_DAYS = env.float("MLPLATFORM_LOG_RETENTION_DAYS", default=30.0)
MLPLATFORM_ONLINE_STORE = env("MLPLATFORM_ONLINE_STORE", default="db")
MLPLATFORM_BATCH_CHUNK_ROWS = env.int("MLPLATFORM_BATCH_CHUNK_ROWS", default=100_000)
# Batch scoring: rows per vectorised predict call, a chunk's lease (a chunk not finished within
# it is redone elsewhere), claims per chunk before the job fails, and a chunk's hard time limit.
MLPLATFORM_BATCH_BLOCK_ROWS = env.int("MLPLATFORM_BATCH_BLOCK_ROWS", default=50_000)
MLPLATFORM_BATCH_LEASE_SECONDS = env.int("MLPLATFORM_BATCH_LEASE_SECONDS", default=600)
MLPLATFORM_BATCH_MAX_ATTEMPTS = env.int("MLPLATFORM_BATCH_MAX_ATTEMPTS", default=3)
MLPLATFORM_BATCH_CHUNK_TIME_LIMIT = env.int("MLPLATFORM_BATCH_CHUNK_TIME_LIMIT", default=1800)
MLPLATFORM_INLINE_INGEST_BYTES = env.int("MLPLATFORM_INLINE_INGEST_BYTES", default=20 * 1024**2)
MLPLATFORM_INLINE_TRAINING_SET_ROWS = env.int("MLPLATFORM_INLINE_TRAINING_SET_ROWS", default=50_000)
# Aliases whose moves pass the model's promotion gate (rollout/gate.py).
MLPLATFORM_GATED_ALIASES = env.list("MLPLATFORM_GATED_ALIASES", default=["production"])
# Shadow versions (serving/shadows.py): copies waiting to be scored per process (more are dropped
# and counted), and the share of one core the shadow thread may use.
MLPLATFORM_SHADOW_QUEUE_SIZE = env.int("MLPLATFORM_SHADOW_QUEUE_SIZE", default=1000)
MLPLATFORM_SHADOW_CPU_SHARE = env.float("MLPLATFORM_SHADOW_CPU_SHARE", default=0.1)
MLPLATFORM_DUCKDB_MEMORY_LIMIT = env("MLPLATFORM_DUCKDB_MEMORY_LIMIT", default="400MB")
MLPLATFORM_DUCKDB_THREADS = env.int("MLPLATFORM_DUCKDB_THREADS", default=2)
# What one DuckDB connection may spill to disk, and how long one query of a job may run.
MLPLATFORM_DUCKDB_MAX_TEMP_SIZE = env("MLPLATFORM_DUCKDB_MAX_TEMP_SIZE", default="10GiB")
MLPLATFORM_QUERY_TIMEOUT_SECONDS = env.float("MLPLATFORM_QUERY_TIMEOUT_SECONDS", default=1800.0)
# An ingest runs as a job above any of these: wide or long files would outlast a web request.
MLPLATFORM_INLINE_INGEST_COLUMNS = env.int("MLPLATFORM_INLINE_INGEST_COLUMNS", default=500)
MLPLATFORM_INLINE_INGEST_CELLS = env.int("MLPLATFORM_INLINE_INGEST_CELLS", default=2_000_000)
# Outputs of finished jobs are deleted this many days after they finish (0: kept for ever).
MLPLATFORM_JOB_OUTPUT_RETENTION_DAYS = env.float("MLPLATFORM_JOB_OUTPUT_RETENTION_DAYS", default=30)
MLPLATFORM_MATERIALISE_CHUNK_ROWS = env.int("MLPLATFORM_MATERIALISE_CHUNK_ROWS", default=10_000)
MLPLATFORM_FEATURE_CATALOG_TTL_SECONDS = env.float(
    "MLPLATFORM_FEATURE_CATALOG_TTL_SECONDS", default=5.0
)
# Monitoring (docs/monitoring.md): default alert thresholds a model gets with its first reference
# profile, and a group with a schedule or availability rule (stale: its newest row older than this
# many expected intervals); the fewest rows (labelled rows) a window needs before its drift
# (accuracy) is judged; how far back feedback is joined; sampled requests compared for skew.
MLPLATFORM_ALERT_PSI = env.float("MLPLATFORM_ALERT_PSI", default=0.2)
MLPLATFORM_ALERT_NULL_RATE = env.float("MLPLATFORM_ALERT_NULL_RATE", default=0.05)
MLPLATFORM_ALERT_ACCURACY_DROP = env.float("MLPLATFORM_ALERT_ACCURACY_DROP", default=0.05)
MLPLATFORM_ALERT_STALE_FACTOR = env.float("MLPLATFORM_ALERT_STALE_FACTOR", default=2.0)
MLPLATFORM_MONITORING_MIN_ROWS = env.int("MLPLATFORM_MONITORING_MIN_ROWS", default=100)
MLPLATFORM_MONITORING_MIN_LABELLED = env.int("MLPLATFORM_MONITORING_MIN_LABELLED", default=30)
MLPLATFORM_FEEDBACK_LOOKBACK_DAYS = env.float("MLPLATFORM_FEEDBACK_LOOKBACK_DAYS", default=7.0)
MLPLATFORM_FEEDBACK_MAX_ITEMS = env.int("MLPLATFORM_FEEDBACK_MAX_ITEMS", default=100_000)
MLPLATFORM_SKEW_SAMPLE_ROWS = env.int("MLPLATFORM_SKEW_SAMPLE_ROWS", default=1000)
MLPLATFORM_SKEW_TOLERANCE = env.float("MLPLATFORM_SKEW_TOLERANCE", default=1e-6)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
