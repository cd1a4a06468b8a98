"""Settings for Tasks API, read from the environment (README lists every variable).

Defaults make a fresh clone run with no configuration (DEBUG on, an SQLite file);
production sets DJANGO_DEBUG=false and must then provide real secrets.
"""

import json
import os
from pathlib import Path

import dj_database_url
from corsheaders.defaults import default_headers
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


DEBUG = env_bool("DJANGO_DEBUG", True)

DEV_SECRET_KEY = "django-insecure-dev-only-key-never-use-in-production"
DEV_BETTER_AUTH_SECRET = "dev-only-better-auth-secret-never-use-in-production"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or DEV_SECRET_KEY
BETTER_AUTH_SECRET = os.environ.get("BETTER_AUTH_SECRET") or (
    DEV_BETTER_AUTH_SECRET if DEBUG else ""
)
if not DEBUG:
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured(
            "DJANGO_DEBUG is false but DJANGO_SECRET_KEY is unset, the development key, "
            "or shorter than 32 characters. Set DJANGO_SECRET_KEY to a long random value."
        )
    if not BETTER_AUTH_SECRET or BETTER_AUTH_SECRET == DEV_BETTER_AUTH_SECRET:
        raise ImproperlyConfigured(
            "DJANGO_DEBUG is false but BETTER_AUTH_SECRET is unset. Set it to the same "
            "secret your Better Auth app uses."
        )
    # Better Auth signs HS256 JWTs (e.g. its email-verification links) with this secret:
    # a short one can be cracked offline from one of them, then mint tokens for anyone.
    if len(BETTER_AUTH_SECRET) < 32:
        raise ImproperlyConfigured(
            "DJANGO_DEBUG is false but BETTER_AUTH_SECRET is shorter than 32 characters. "
            "Generate a long random one (openssl rand -base64 32) for Better Auth and this API."
        )

# Better Auth: its base URL is the expected `iss` and `aud` of its JWTs.
BETTER_AUTH_URL = os.environ.get("BETTER_AUTH_URL", "").rstrip("/")
BETTER_AUTH_ISSUER = os.environ.get("BETTER_AUTH_ISSUER", BETTER_AUTH_URL)
BETTER_AUTH_AUDIENCE = os.environ.get("BETTER_AUTH_AUDIENCE", BETTER_AUTH_URL)
BETTER_AUTH_JWKS_URL = os.environ.get("BETTER_AUTH_JWKS_URL", "")
BETTER_AUTH_TRUSTED_ORIGINS = env_list("BETTER_AUTH_TRUSTED_ORIGINS")
# The app's renamed Better Auth models and fields, as JSON in betterAuth()'s own option
# shape: {"user": {"modelName": "users", "fields": {"emailVerified": "email_verified"}}}.
# accounts/better_auth.py checks it; unset means Better Auth's default names.
try:
    BETTER_AUTH_SCHEMA = json.loads(os.environ.get("BETTER_AUTH_SCHEMA") or "{}")
except ValueError as _error:
    raise ImproperlyConfigured(f"BETTER_AUTH_SCHEMA is not valid JSON: {_error}") from None
# How long each process may keep verifying with a key deleted from jwks (accounts/keys.py).
BETTER_AUTH_KEY_CACHE_SECONDS = env_int("BETTER_AUTH_KEY_CACHE_SECONDS", 30)
# HS256 app tokens: the longest `exp` may lie ahead (the frontend's sessions last 7 days).
APP_TOKEN_MAX_LIFETIME_SECONDS = env_int("APP_TOKEN_MAX_LIFETIME_SECONDS", 7 * 86400)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")

INSTALLED_APPS = [
    # Django
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # Third party
    "corsheaders",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Local
    "accounts",
    "tasks",
    "ratelimit",
    "mcp_server",
]

MIDDLEWARE = [
    "config.middleware.ReleaseRequestMiddleware",  # first: it runs when all else is done
    "config.middleware.RequestIDMiddleware",  # its id and timing cover everything below
    "config.middleware.JSONErrorsMiddleware",  # any non-JSON error below becomes JSON
    "config.middleware.ContentSecurityPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "config.middleware.ContentLengthRequiredMiddleware",
    "ratelimit.middleware.AuthFailureRateLimitMiddleware",
    # Django's own four, for the admin only: the API's paths skip them (config.middleware).
    "config.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "config.middleware.CsrfViewMiddleware",
    "config.middleware.AuthenticationMiddleware",
    "config.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],  # overrides, e.g. an offline Redoc page
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

# Database: PostgreSQL from DATABASE_URL (shared with Better Auth), else SQLite.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0 if DEBUG else 600),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The same backend, with a health check that costs no query (config/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "config.postgresql"
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options.setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5))
    # TCP keepalives: NAT gateways and load balancers forget idle connections (often
    # after 350 s, under CONN_MAX_AGE); a probe every minute keeps them known, and a
    # peer gone for good makes the socket readable, which the health check notices.
    _options.setdefault("keepalives", 1)
    _options.setdefault("keepalives_idle", 60)
    _options.setdefault("keepalives_interval", 10)
    _options.setdefault("keepalives_count", 3)
    # Server-side limits: a stuck query or an abandoned transaction never holds a worker.
    # Sent as SET LOCAL with each transaction's first statement (config/postgresql/base.py),
    # never as libpq `options`, which PgBouncer and Neon's pooled endpoint refuse: so the
    # same settings work directly, through a transaction pooler, and touch only this
    # service's transactions, never Better Auth's sessions on the same server.
    _session: dict[str, float] = {}
    _statement_timeout_ms = env_int("DATABASE_STATEMENT_TIMEOUT_MS", 5_000)
    if _statement_timeout_ms:
        _session["statement_timeout"] = _statement_timeout_ms
        _session["idle_in_transaction_session_timeout"] = _statement_timeout_ms * 3
    # PostgreSQL's default of 4 prices a random read as a spinning disk's. On SSDs and
    # cached data (1.1 is the usual advice) it lets a user's own index win for small
    # task sets, instead of a trigram bitmap over every user's tasks; a user with very
    # many tasks still gets the trigrams.
    if _random_page_cost := os.environ.get("DATABASE_RANDOM_PAGE_COST", "1.1"):
        _session["random_page_cost"] = float(_random_page_cost)
    if _session:
        _options["session_settings"] = _session
    # Where the server sees this connection at the address and port it was dialed at
    # (no pooler or proxy between), the settings are SET once per connection and the
    # hot statements prepared (config/postgresql/base.py). `transaction` or `session`
    # decide it instead (docs/deployment.md).
    _options["session_settings_scope"] = os.environ.get("DATABASE_SESSION_SETTINGS", "auto")
    if _options["session_settings_scope"] not in ("auto", "transaction", "session"):
        raise ImproperlyConfigured(
            "DATABASE_SESSION_SETTINGS must be `auto`, `transaction` or `session`."
        )
    _pool_size = env_int("DATABASE_POOL_MAX_SIZE", 0)
    if _pool_size:
        # psycopg's pool replaces persistent connections (Django forbids both). Behind
        # PgBouncer or Neon's pooled endpoint leave it unset (docs/deployment.md).
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        _timeout = env_int("DATABASE_REQUEST_TIMEOUT_MS", 5_000) / 1000 or 5
        _options["pool"] = {"min_size": 1, "max_size": _pool_size, "timeout": _timeout}
    # Named cursors (QuerySet.iterator()) would outlive the transaction a pooler lends.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = not env_bool(
        "DATABASE_SERVER_SIDE_CURSORS", False
    )

# The longest a request waits for the database in all (a pooler's queue, connecting,
# queries): past it, a 503 SERVICE_UNAVAILABLE. 0 turns the bound off.
DATABASE_REQUEST_TIMEOUT_MS = env_int("DATABASE_REQUEST_TIMEOUT_MS", 5_000)

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

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Request bodies: the API's largest valid body is a few KB.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BODY_BYTES", 256 * 1024)

# Cross-origin: the Next.js frontend.
CORS_ALLOWED_ORIGINS = env_list(
    "CORS_ALLOWED_ORIGINS", "http://localhost:3000,http://127.0.0.1:3000" if DEBUG else ""
)
CORS_ALLOW_CREDENTIALS = True
CORS_ALLOW_HEADERS = (
    *default_headers, "x-request-id", "idempotency-key", "if-match", "if-none-match"
)  # fmt: skip
CORS_EXPOSE_HEADERS = ["x-request-id", "retry-after", "etag", "idempotent-replayed"]
CSRF_TRUSTED_ORIGINS = CORS_ALLOWED_ORIGINS + BETTER_AUTH_TRUSTED_ORIGINS

# Production hardening (`manage.py check --deploy` is clean with DJANGO_DEBUG=false).
# Reverse proxies in front of the service (0: clients connect directly). With one or
# more, X-Forwarded-For gives the client's address for per-client rate limits and
# X-Forwarded-Proto says whether it came over https; without, both are client-written
# and ignored.
RATE_LIMIT_NUM_PROXIES = env_int("RATE_LIMIT_NUM_PROXIES", 0)
if RATE_LIMIT_NUM_PROXIES > 0:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Rate limits, "<count>/<second|minute|hour|day>" (empty or 0: off), counted in the
# database so every worker and host shares them (ratelimit app). Over a limit: 429
# RATE_LIMITED with Retry-After. Behind a reverse proxy, RATE_LIMIT_NUM_PROXIES says how
# many X-Forwarded-For hops to trust for the client IP (0: use the socket's address).
RATE_LIMIT_WRITES = os.environ.get("RATE_LIMIT_WRITES", "600/minute")  # per user
RATE_LIMIT_AUTH_FAILURES = os.environ.get("RATE_LIMIT_AUTH_FAILURES", "60/minute")  # per client
# Failed Django admin sign-ins, per client and per account (passwords can be guessed).
RATE_LIMIT_ADMIN_LOGIN_CLIENT = os.environ.get("RATE_LIMIT_ADMIN_LOGIN_CLIENT", "10/hour")
RATE_LIMIT_ADMIN_LOGIN_ACCOUNT = os.environ.get("RATE_LIMIT_ADMIN_LOGIN_ACCOUNT", "30/hour")

# Bounded work per request, the same for REST and MCP (README "Reliability and limits").
SEARCH_MAX_WORDS = env_int("SEARCH_MAX_WORDS", 10)
SEARCH_MAX_WORD_LENGTH = env_int("SEARCH_MAX_WORD_LENGTH", 100)
# Tasks one user may own (0: no limit); a create beyond it is 409 QUOTA_EXCEEDED.
TASK_QUOTA_PER_USER = env_int("TASK_QUOTA_PER_USER", 10_000)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BetterAuthJWTAuthentication",
        "accounts.authentication.BetterAuthSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "tasks.pagination.TaskPagination",
    "DEFAULT_RENDERER_CLASSES": ["config.renderers.FastJSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.renderers.JSONFirstNegotiation",
    "DEFAULT_PARSER_CLASSES": ["config.parsers.BoundedJSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["ratelimit.throttling.WriteRateThrottle"],
    "NUM_PROXIES": RATE_LIMIT_NUM_PROXIES,
    "EXCEPTION_HANDLER": "config.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Tasks API",
    "DESCRIPTION": (
        "Per-user todo tasks for Next.js apps that sign in with Better Auth. "
        "Authenticate with `Authorization: Bearer <token>`: a Better Auth JWT, an HS256 "
        "JWT signed with BETTER_AUTH_SECRET, or a Better Auth session token."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Schema, Swagger UI and Redoc are public: no credentials are read to serve them.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
    "PREPROCESSING_HOOKS": ["config.openapi.strip_trailing_slashes"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.add_error_responses",
        "config.openapi.allow_empty_query_values",
        "config.openapi.add_task_links",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PriorityEnum": "tasks.models.Task.Priority",
        "CategoryEnum": "tasks.models.Task.Category",
    },
}

# Readiness probe (/health/ready): how long the database may take to answer.
HEALTH_DB_TIMEOUT_MS = env_int("HEALTH_DB_TIMEOUT_MS", 1000)

# Logs go to stderr: one JSON object per line in production, plain text in development.
# Every record carries the request id (config.middleware.RequestIDMiddleware).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text" if DEBUG else "json").strip().lower()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "config.logs.RequestIDFilter"},
        "warning_without_traceback": {"()": "config.logs.WarningWithoutTraceback"},
    },
    "formatters": {
        "json": {"()": "config.logs.JSONFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        # Listing "django" drops Django's default handlers: its records reach root once.
        "django": {"level": "INFO"},
        "django.request": {"level": "ERROR"},
        # Anyone can send a bad Host header: a client error, not ours to trace.
        "django.security.DisallowedHost": {"filters": ["warning_without_traceback"]},
        # runserver's access lines repeat ours (tasks_api.requests) with the query string.
        "django.server": {"level": "CRITICAL", "propagate": False},
    },
}
