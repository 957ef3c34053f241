"""Settings for ai-cv-evaluator, all read from the environment.

Every variable is listed with its meaning and default in `.env.example`.
"""

from __future__ import annotations

from pathlib import Path

import environ
from corsheaders.defaults import default_headers as cors_default_headers
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local `.env` is a convenience for development; real deployments use the
# process environment, which always wins.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

_DEV_SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (see .env.example)."
        )
    SECRET_KEY = _DEV_SECRET_KEY

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/v1/.*$"
CORS_ALLOW_HEADERS = (
    *cors_default_headers,
    "idempotency-key",
    "if-none-match",
    "x-request-id",
)
CORS_EXPOSE_HEADERS = ["ETag", "Retry-After", "X-Request-Id"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "django_tasks",
    "queueing",
    "evaluations",
]

MIDDLEWARE = [
    "config.metrics.PrometheusMiddleware",
    "config.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves collected static files (the admin's) from gunicorn in the image.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

DATABASES = {
    "default": env.db(
        "DATABASE_URL",
        default="postgres://cv_evaluator:cv_evaluator@127.0.0.1:5433/cv_evaluator",
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / ".local" / "static")
# WhiteNoise serves STATIC_ROOT (filled by collectstatic, as in the image); in
# development it finds files in the apps as they change, so no collectstatic.
WHITENOISE_AUTOREFRESH = DEBUG
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / ".local" / "media")

# --- Security headers -------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = False
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if env.bool("TRUST_X_FORWARDED_PROTO", default=False)
    else None
)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)

# --- Uploads -----------------------------------------------------------------
MAX_UPLOAD_MB = env.int("MAX_UPLOAD_MB", default=10)
# Django keeps small files in memory and streams bigger ones to disk.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_JSON_BODY_BYTES", default=256 * 1024)

# --- REST framework ---------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "evaluations.authentication.TokenOrBearerAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "evaluations.throttling.TokenRateThrottle",
        "evaluations.throttling.IpRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "token": env.str("THROTTLE_RATE_TOKEN", default="600/min"),
        "ip": env.str("THROTTLE_RATE_IP", default="1200/min"),
    },
    # Proxies in front of the app whose X-Forwarded-For may be trusted for the
    # per-address limit; 0 uses the connection's address.
    "NUM_PROXIES": env.int("TRUSTED_PROXY_COUNT", default=0),
    "EXCEPTION_HANDLER": "evaluations.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "ai-cv-evaluator API",
    "DESCRIPTION": "Upload a CV and a project report, evaluate them against a job "
    "opening, and poll for the result.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The schema and the docs page are public, and a stale token must not
    # lock anyone out of them.
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Swagger UI from the installed drf-spectacular-sidecar, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "EvaluationStatusEnum": "evaluations.models.Evaluation.Status",
        "ErrorCodeEnum": "evaluations.errors.ERROR_CODES",
    },
}

# Rate-limit counters live in the cache, so it must be shared by every web
# process: a file cache on one host, or e.g. `redis://` / `dbcache://` beyond.
CACHES = {
    "default": env.cache(
        "CACHE_URL", default=f"filecache://{BASE_DIR / '.local' / 'cache'}"
    )
}

# --- Task layer (Kafka) -------------------------------------------------------
KAFKA_BROKERS = env.list("KAFKA_BROKERS", default=["127.0.0.1:9092"])
KAFKA_JOB_TOPIC = env.str("KAFKA_JOB_TOPIC", default="evaluate-jobs")
KAFKA_RETRY_TOPIC = env.str("KAFKA_RETRY_TOPIC", default="evaluate-jobs-retry")
KAFKA_DEAD_LETTER_TOPIC = env.str(
    "KAFKA_DEAD_LETTER_TOPIC", default="evaluate-jobs-dlq"
)
KAFKA_TOPIC_PARTITIONS = env.int("KAFKA_TOPIC_PARTITIONS", default=6)
KAFKA_REPLICATION_FACTOR = env.int("KAFKA_REPLICATION_FACTOR", default=1)
KAFKA_CONSUMER_GROUP = env.str(
    "KAFKA_CONSUMER_GROUP", default="ai-cv-evaluator-workers"
)
KAFKA_TRANSACTIONAL_ID_PREFIX = env.str(
    "KAFKA_TRANSACTIONAL_ID_PREFIX", default="ai-cv-evaluator"
)
KAFKA_CLIENT_CONFIG: dict[str, object] = {}
KAFKA_SESSION_TIMEOUT_MS = env.int("KAFKA_SESSION_TIMEOUT_MS", default=10000)
KAFKA_MAX_POLL_INTERVAL_MS = env.int("KAFKA_MAX_POLL_INTERVAL_MS", default=300000)
QUEUE_MAX_ATTEMPTS = env.int("QUEUE_MAX_ATTEMPTS", default=5)
QUEUE_RETRY_BACKOFF_SECONDS = env.float("QUEUE_RETRY_BACKOFF_SECONDS", default=2.0)
QUEUE_RETRY_BACKOFF_MAX_SECONDS = env.float(
    "QUEUE_RETRY_BACKOFF_MAX_SECONDS", default=300.0
)
QUEUE_RECONCILE_AFTER_SECONDS = env.int("QUEUE_RECONCILE_AFTER_SECONDS", default=60)
QUEUE_RECONCILE_INTERVAL_SECONDS = env.int(
    "QUEUE_RECONCILE_INTERVAL_SECONDS", default=30
)
QUEUE_RECONCILERS = env.list(
    "QUEUE_RECONCILERS", default=["evaluations.services.evaluation_republish_stale"]
)
QUEUE_LOCK_DIR = env.str("QUEUE_LOCK_DIR", default="")
WORKER_CONCURRENCY = env.int("WORKER_CONCURRENCY", default=8)
WORKER_SHUTDOWN_GRACE_SECONDS = env.int("WORKER_SHUTDOWN_GRACE_SECONDS", default=30)
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
WORKER_METRICS_ADDR = env.str("WORKER_METRICS_ADDR", default="127.0.0.1")

TASKS = {
    "default": {
        "BACKEND": env.str("TASK_BACKEND", default="queueing.backend.KafkaTaskBackend"),
    }
}

# --- Evaluation pipeline ------------------------------------------------------
LLM_BASE_URL = env.str("LLM_BASE_URL", default="https://api.openai.com/v1")
LLM_API_KEY = env.str("LLM_API_KEY", default="")
LLM_MODELS = env.list("LLM_MODELS", default=["gpt-4o-mini"])
LLM_TIMEOUT_SECONDS = env.float("LLM_TIMEOUT_SECONDS", default=30.0)
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=3)
LLM_JSON_MODE = env.bool("LLM_JSON_MODE", default=True)
RETRIEVAL_BACKEND = env.str("RETRIEVAL_BACKEND", default="postgres_fts")
EMBEDDINGS_MODEL = env.str("EMBEDDINGS_MODEL", default="text-embedding-3-small")
RETENTION_DAYS = env.int("RETENTION_DAYS", default=0)
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=500)

# --- Metrics -------------------------------------------------------------------
# Set for multi-process servers (gunicorn): prometheus-client keeps each
# process's metrics in files there and /metrics adds them up.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")

# --- Logging -------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "config.logging.ContextFilter"},
        "redact": {"()": "config.logging.RedactingFilter"},
    },
    "formatters": {
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s "
            "[request=%(request_id)s job=%(job_id)s] %(message)s",
        },
        "json": {"()": "config.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT if LOG_FORMAT in ("text", "json") else "text",
            "filters": ["context", "redact"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # No handler of its own: Django's default one prints plain text under
        # DEBUG, next to the root handler's line.
        "django": {"handlers": [], "level": LOG_LEVEL},
    },
}
