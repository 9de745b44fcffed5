"""Settings shared by every environment. Each knob comes from env.py's typed readers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from eduplatform.settings.env import (
    env_bool,
    env_date,
    env_float,
    env_int,
    env_list,
    env_str,
    parse_database_url,
    parse_replica_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent

SECRET_KEY = env_str("SECRET_KEY", "dev-insecure-key-change-me-0123456789-abcdefghijklmnop")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "csp",
    "axes",
    "captcha",
    "eduplatform.registry",
    "analytics",
    "churn",
    "recommender",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions, before common (i18n URL handling) and the views: the language of the
    # request from the language cookie (set by the header's switch) or Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After a write, this browser's next pages read the primary (no-op without a replica).
    "eduplatform.core.db_router.ReadYourWritesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "eduplatform.core.middleware.CSPMiddleware",
    # Last, as django-axes requires: it turns lockouts raised by the backend into responses.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "eduplatform.urls"
WSGI_APPLICATION = "eduplatform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite is the zero-config default; DATABASE_URL switches to PostgreSQL.
DATABASES = {
    "default": parse_database_url(
        "DATABASE_URL", env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    )
}
# A streaming read replica of that PostgreSQL (docs/architecture.md, "Read replica"): the
# dashboard pages read there (eduplatform/core/db_router.py); everything else, and every
# read after a write or inside a transaction, stays on the primary. Unset: no replica.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL", "")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = parse_replica_url(
        "DATABASE_REPLICA_URL", DATABASE_REPLICA_URL, DATABASES["default"]
    )
    DATABASE_ROUTERS = ["eduplatform.core.db_router.ReplicaRouter"]
# With a replica configured, `replica_reads()` scopes read there; the test settings turn
# this off so that only the replica's own tests read behind the replication lag.
DATABASE_REPLICA_READS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# REDIS_URL switches Celery to a real broker and the cache to Redis; without it
# tasks run in-process and the cache is per-process memory.
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "TIMEOUT": 300,
            # An unreachable Redis (no refusal, packets dropped) must not hold a
            # request: every cache user falls back to the process or the database.
            "OPTIONS": {
                "socket_connect_timeout": env_float("REDIS_SOCKET_TIMEOUT", 1.0),
                "socket_timeout": env_float("REDIS_SOCKET_TIMEOUT", 1.0),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
# Chords (a training's features fanned out over chunks of course runs) count their
# parts in a result backend: the broker's Redis (results are small and expire in a day).
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
# Long trainings must finish (or be killed by their hard limit) before Redis
# hands the unacknowledged message to another worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
# English and Simplified Chinese; the header's switch posts to Django's set_language.
# Catalogues: locale/zh_Hans/LC_MESSAGES/django.po, compiled to django.mo and committed.
LANGUAGES = [("en-gb", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "var" / "static")))

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Bodies are bounded (DATA_UPLOAD_MAX_MEMORY_SIZE: 413; JSON nesting: 400) before parsing.
    "DEFAULT_PARSER_CLASSES": [
        "eduplatform.core.inputs.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "eduplatform.core.inputs.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["eduplatform.core.throttles.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "token": env_str("API_RATE_LIMIT", "1200/min"),
        "ingest": env_str("INGEST_RATE_LIMIT", "600/min"),
        "prediction_budget": env_str("PREDICTION_QUERY_BUDGET", "2000/hour"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "eduplatform API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc (/api/v1/docs/, /api/v1/redoc/) from drf-spectacular-sidecar's
    # static files: the CSP allows scripts and styles from our own origin only.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every operation lists the errors it can answer (400, 401/403, 404, 413, 429).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "eduplatform.core.api_docs.document_errors",
    ],
}

# Personal data. FIELD_ENCRYPTION_KEYS: comma-separated Fernet keys, newest
# first; older keys still decrypt, so rotation is "prepend, re-encrypt, drop".
# PSEUDONYM_KEY keys the HMAC that names learners everywhere outside the
# encrypted columns. Dev/test derive both from SECRET_KEY; production requires them.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS", [])
PSEUDONYM_KEY = env_str("PSEUDONYM_KEY", "")

# Where model artifacts are written (temporary file, fsync, atomic rename).
ARTIFACT_DIR = Path(env_str("ARTIFACT_DIR", str(BASE_DIR / "var" / "artifacts")))

# Ingestion limits.
EVENTS_MAX_BATCH = env_int("EVENTS_MAX_BATCH", 5000)
# Plausible event times: none before this date, none more than this far ahead of now.
EVENT_EARLIEST_DATE = env_date("EVENT_EARLIEST_DATE", dt.date(1990, 1, 1))
EVENT_MAX_FUTURE_SECONDS = env_int("EVENT_MAX_FUTURE_SECONDS", 300)
# Raw events kept: the current month and this many before it (PostgreSQL drops whole
# monthly partitions, analytics.partitions; the daily rollup stays). 0: keep everything.
EVENT_RETENTION_MONTHS = env_int("EVENT_RETENTION_MONTHS", 0)
# Browser origins allowed to call the xAPI routes (CORS), e.g.
# "https://moodle.example.edu,https://lms.example.org"; none by default.
XAPI_CORS_ORIGINS = env_list("XAPI_CORS_ORIGINS", [])
# Sort memory of the index builds in a bulk import (PostgreSQL size, e.g. "512MB";
# one import at a time, only inside its transaction).
IMPORT_MAINTENANCE_WORK_MEM = env_str("IMPORT_MAINTENANCE_WORK_MEM", "1GB")

# Model gate and compression tolerances.
CHURN_GATE_TOLERANCE_AUC = env_float("CHURN_GATE_TOLERANCE_AUC", 0.01)
RECOMMENDER_GATE_TOLERANCE_NDCG = env_float("RECOMMENDER_GATE_TOLERANCE_NDCG", 0.02)
# Every retrain builds the compressed variants and serves the smallest and fastest
# one within these quality losses against its own fp32 network (docs/compression.md):
# absolute AUC for churn, relative NDCG@10 for the recommender.
MODEL_COMPRESSION = env_bool("MODEL_COMPRESSION", True)
CHURN_COMPRESSION_TOLERANCE_AUC = env_float("CHURN_COMPRESSION_TOLERANCE_AUC", 0.005)
RECOMMENDER_COMPRESSION_TOLERANCE_NDCG = env_float("RECOMMENDER_COMPRESSION_TOLERANCE_NDCG", 0.02)
# Wall seconds per batch size (1 and 256) for timing all variants of one retrain.
COMPRESSION_TIMING_SECONDS = env_float("COMPRESSION_TIMING_SECONDS", 4.0)
# Web processes look for a promotion (one cache GET) at most this often.
SERVING_RECHECK_SECONDS = env_float("SERVING_RECHECK_SECONDS", 1.0)
# Longest a prediction-API process trusts a remembered token or enrolment
# (eduplatform/core/authcache.py); changes through the ORM revoke them at once.
# 0 turns the memory off.
AUTH_CACHE_SECONDS = env_float("AUTH_CACHE_SECONDS", 60.0)

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "kv": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "kv"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# Identity home of learner ids sent to the events API: an API learner_id "42"
# is the same learner as an xAPI actor with account {homePage: this, name: "42"}.
PLATFORM_ACCOUNT_HOMEPAGE = env_str("PLATFORM_ACCOUNT_HOMEPAGE", "https://eduplatform.local")

# Training runs: time limits stay below the broker's visibility timeout so a
# message is never handed to a second worker while the first still works on it.
TRAINING_SOFT_TIME_LIMIT = env_int("TRAINING_SOFT_TIME_LIMIT", 1500)
TRAINING_HARD_TIME_LIMIT = env_int("TRAINING_HARD_TIME_LIMIT", 1800)
SCORING_HARD_TIME_LIMIT = env_int("SCORING_HARD_TIME_LIMIT", 600)
# A training run stamps its heartbeat this often; one whose heartbeat is older than
# the timeout lost its worker (killed, machine gone) and is reclaimed as failed by the
# next retrain request or the periodic "reclaim lost trainings" task.
TRAINING_HEARTBEAT_SECONDS = env_float("TRAINING_HEARTBEAT_SECONDS", 10.0)
TRAINING_HEARTBEAT_TIMEOUT = env_float("TRAINING_HEARTBEAT_TIMEOUT", 120.0)
if TRAINING_HEARTBEAT_TIMEOUT <= 2 * TRAINING_HEARTBEAT_SECONDS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "TRAINING_HEARTBEAT_TIMEOUT must exceed twice TRAINING_HEARTBEAT_SECONDS"
    )
if CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] <= TRAINING_HARD_TIME_LIMIT:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("TRAINING_HARD_TIME_LIMIT must be below CELERY_VISIBILITY_TIMEOUT")

# Content Security Policy everywhere (not only in production) so that a page
# that would break under it fails in development and in the browser tests.
# Scripts and styles come from our own static files only; page data travels in
# <script type="application/json"> blocks, which CSP does not execute.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
# Sessions live in the database only (one primary-key read per page view): the
# site and the login keep working while Redis is down. cached_db raised on every
# page then (Django only guards its cache writes, not the reads or the existence
# check of a new key), and a session must be as available as the database itself.
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# Login hardening. django-axes locks a username *from one IP* after repeated
# failures (so nobody behind a shared NAT can lock out colleagues, and a
# password-spraying IP still gets stopped per account); a captcha appears
# from the CAPTCHA_AFTER_FAILURES-th failure for that username or IP.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_COOLOFF_TIME = env_float("LOGIN_COOLOFF_HOURS", 1.0)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env_int("PROXY_COUNT", 0)
CAPTCHA_AFTER_FAILURES = env_int("CAPTCHA_AFTER_FAILURES", 2)
CAPTCHA_IMAGE_SIZE = (120, 40)
# Tests may fill the captcha with this value; never enable it elsewhere.
CAPTCHA_TEST_MODE = False
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)

# Treat this date (YYYY-MM-DD) as today, e.g. 2014-03-15 to browse imported
# OULAD runs as if they were live. Empty: the real date.
AS_OF_DATE = env_str("AS_OF_DATE", "")
CHURN_CUTOFFS = [int(c) for c in env_list("CHURN_CUTOFFS", ["30", "60", "90", "150"])]
CHURN_INACTIVITY_DAYS = env_int("CHURN_INACTIVITY_DAYS", 28)
# Per-process cache lifetime of a course run's serving features.
SERVING_FEATURES_TTL = env_int("SERVING_FEATURES_TTL", 600)

# Intra-op threads of PyTorch in web and worker processes (trainings set their own).
TORCH_THREADS = env_int("TORCH_THREADS", 1)
