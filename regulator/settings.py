"""Project settings, read strictly from the environment (one reader, safe demo defaults).

Every setting that differs between a laptop demo and production comes from an environment
variable; a secret may instead come from a file named by ``<NAME>_FILE``. Unknown or malformed
values stop the process at start-up with a message that names the variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    """Read NAME, or the contents of the file named by NAME_FILE."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
# PRODUCTION switches on every hardening that `check --deploy` asks for.
PRODUCTION = env_bool("PRODUCTION", False)
if PRODUCTION and DEBUG and "DEBUG" in os.environ:
    raise ImproperlyConfigured("DEBUG=1 and PRODUCTION=1 cannot be combined")
if PRODUCTION:
    DEBUG = False

DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) is required when PRODUCTION=1")
    # Demo only: stable per data directory so sessions survive restarts.
    _key_file = DATA_DIR / "demo-secret-key"
    if not _key_file.exists():
        import secrets

        _key_file.write_text(secrets.token_urlsafe(64))
    SECRET_KEY = _key_file.read_text().strip()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "guardian",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "regulator",
    "enterprises",
    "hazards",
    "enforcement",
    "devices",
    "alerts",
]

MIDDLEWARE = [
    "regulator.bodylimit.BodyLimitMiddleware",  # before anything reads the body (Daphne: regulator.asgi)
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "regulator.middleware.SlidingSessionMiddleware",  # SessionMiddleware + idle timeout without a write per request
    "regulator.locale.ChosenLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "regulator.requestlocal.RequestLocalMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "regulator.middleware.SecurityHeadersMiddleware",
    "regulator.middleware.SecurityPolicyMiddleware",
]

ROOT_URLCONF = "regulator.urls"

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
                "regulator.context_processors.navigation",
            ],
        },
    },
]

ASGI_APPLICATION = "regulator.asgi.application"

# --- Database --------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'regulator.sqlite3'}"
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
except Exception as exc:  # dj_database_url raises several types for a bad URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the poller write while the web process reads; a busy timeout instead of errors.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
USING_POSTGRES = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")
# The owner role (owns the schema, runs migrations, flush and the audit prune) when the runtime role of
# DATABASE_URL is not the owner: the owner's credentials for the same database. Only its USER,
# PASSWORD, HOST and PORT are used (the name stays the connection's, so tests reach their test database).
DATABASE_OWNER_URL = env_str("DATABASE_OWNER_URL") or ""
DATABASE_OWNER: dict[str, object] = {}
if DATABASE_OWNER_URL:
    try:
        _owner = dj_database_url.parse(DATABASE_OWNER_URL)
    except Exception as exc:
        raise ImproperlyConfigured(f"DATABASE_OWNER_URL is not a valid database URL: {exc}") from exc
    # SQLite has no roles: an owner URL left in the environment of a SQLite run is ignored.
    if USING_POSTGRES:
        if _owner["ENGINE"] != DATABASES["default"]["ENGINE"]:
            raise ImproperlyConfigured("DATABASE_OWNER_URL must be a PostgreSQL URL like DATABASE_URL")
        DATABASE_OWNER = {key: _owner[key] for key in ("USER", "PASSWORD", "HOST", "PORT")}
# A hung database (frozen host, SIGSTOP) must look like a down one (regulator/dbdeadline.py): libpq
# gives up connecting after DB_CONNECT_TIMEOUT_SECONDS (every process); the daemons' threads (the
# poller's reading writer and DB thread, the alerts writer) cut a call that takes longer than
# DB_CALL_DEADLINE_SECONDS, and their connections get a server-side statement_timeout of
# DB_STATEMENT_TIMEOUT_SECONDS, so a slow but alive server cancels first. The web's reports and
# migrations keep no statement timeout. 0 switches each off.
DB_CONNECT_TIMEOUT_SECONDS = env_int("DB_CONNECT_TIMEOUT_SECONDS", 5)
DB_CALL_DEADLINE_SECONDS = env_int("DB_CALL_DEADLINE_SECONDS", 10)
DB_STATEMENT_TIMEOUT_SECONDS = env_int("DB_STATEMENT_TIMEOUT_SECONDS", 5)
for _name in ("DB_CONNECT_TIMEOUT_SECONDS", "DB_CALL_DEADLINE_SECONDS", "DB_STATEMENT_TIMEOUT_SECONDS"):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} must be 0 or more")
if USING_POSTGRES and DB_CONNECT_TIMEOUT_SECONDS:
    # libpq's minimum is 2 s; an explicit connect_timeout in DATABASE_URL wins.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", max(2, DB_CONNECT_TIMEOUT_SECONDS))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache, Celery broker ------------------------------------------------
REDIS_URL = env_str("REDIS_URL") or ""
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if REDIS_URL and _XDIST_WORKER.startswith("gw"):
    # Parallel test workers must not share throttle counters, caches or channel groups:
    # worker N uses the database number below the configured one by N.
    from urllib.parse import urlsplit, urlunsplit

    _parts = urlsplit(REDIS_URL)
    _db = int(_parts.path.strip("/") or 0) - int(_XDIST_WORKER[2:])
    if _db < 0:
        raise ImproperlyConfigured("REDIS_URL's database number is too low for this many test workers")
    REDIS_URL = urlunsplit(_parts._replace(path=f"/{_db}"))
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # The pub/sub layer: lower latency, no stale group membership (see MEASURED.md); this
            # subclass lets a socket open while Redis is away (regulator/layerwatch.py).
            "BACKEND": "regulator.layerwatch.RedisPubSubLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {
        "default": {
            # DatabaseCache with an atomic incr (login throttles); culling at Django's 300 entries
            # would let a burst of made-up usernames evict the per-IP counters.
            "BACKEND": "regulator.security.cache.AtomicDatabaseCache",
            "LOCATION": "regulator_cache",
            "OPTIONS": {"MAX_ENTRIES": env_int("CACHE_MAX_ENTRIES", 100_000)},
        }
    }
# Every Daphne process probes its channel layer this often (a round trip through Redis); when a
# probe succeeds after a failure, every socket re-joins its groups and its client is told to catch
# up (``resync``). 0 switches the probe off. See regulator/layerwatch.py.
REALTIME_LAYER_PROBE_MS = env_int("REALTIME_LAYER_PROBE_MS", 2000)

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TIMEZONE = "Asia/Shanghai"
# Task modules outside <app>.tasks, which autodiscovery does not import.
CELERY_IMPORTS = ("enterprises.reports.tasks", "enterprises.indicator_snapshots")
# The beat schedule lives in code; each task is a thin wrapper around a service.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "escalate-overdue-hazards": {"task": "hazards.tasks.escalate_overdue", "schedule": 300.0},
    "escalate-alerts": {"task": "alerts.tasks.escalate_alerts", "schedule": 60.0},
    "score-credit-nightly": {"task": "enforcement.tasks.score_credit", "schedule": crontab(hour=2, minute=0)},
    "prune-readings-nightly": {"task": "devices.tasks.prune_readings", "schedule": crontab(hour=3, minute=0)},
    # Risk: grade daily after the credit scores (02:00); retrain weekly, Monday 01:00, before grading.
    "grade-risk-nightly": {"task": "enterprises.tasks.grade_risk", "schedule": crontab(hour=2, minute=30)},
    "train-risk-model-weekly": {
        "task": "enterprises.tasks.train_risk_model",
        "schedule": crontab(hour=1, minute=0, day_of_week="mon"),
    },
    # Dashboard snapshots: the current month with a live sample every 15 minutes; the last 36 months
    # nightly after credit and risk grading (late closures, alert reviews; a year compared with the
    # year before needs 36).
    "snapshot-indicators-current": {
        "task": "enterprises.snapshot_indicators",
        "schedule": 900.0,
        "kwargs": {"months": 1, "sample": True},
    },
    "snapshot-indicators-nightly": {
        "task": "enterprises.snapshot_indicators",
        "schedule": crontab(hour=3, minute=30),
        "kwargs": {"months": 36, "sample": False},
    },
    "archive-monthly-reports": {
        "task": "enterprises.reports.tasks.archive_monthly_reports",
        "schedule": crontab(day_of_month=1, hour=4, minute=0),
    },
}

# --- Auth ------------------------------------------------------------------------------------
AUTH_USER_MODEL = "regulator.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# PBKDF2-HMAC-SM3 first: new passwords use it; older hashes still verify and are upgraded at login.
PASSWORD_HASHERS = [
    "regulator.security.hashers.PBKDF2SM3PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
PASSWORD_SM3_ITERATIONS = env_int("PASSWORD_SM3_ITERATIONS", 300_000)
# MLPS level 3: >= 8 characters from 3 of 4 classes, no username inside, none of the last 5 reused.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "regulator.security.validators.CharacterClassesValidator", "OPTIONS": {"min_classes": 3}},
    {"NAME": "regulator.security.validators.UsernameNotContainedValidator"},
    {"NAME": "regulator.security.validators.PasswordHistoryValidator", "OPTIONS": {"history": 5}},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row; anonymous sees nothing

# --- i18n ------------------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static and media ------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)


def _package_static(module: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        raise ImproperlyConfigured(f"{module} is not installed: run pip install -r requirements.txt")
    return Path(spec.origin).parent / "static"


# Front-end libraries come from PyPI packages at install time, never copied into the repository.
STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/echarts", _package_static("instaui_echarts"))]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Uploaded files are never served from a public URL: views check permission and stream them.
MEDIA_ROOT = DATA_DIR / "private-media"
MEDIA_URL = None
# Uploads (regulator.uploads, the one validator): bytes per file; pixels, checked from the header
# before decoding (Pillow's own bomb guard is set to the same figure); the longer edge of the stored,
# re-encoded image. A 24 Mpx JPEG costs ~95 MiB to validate; 6000 keeps it from also being resized
# (a resize of 6000x4000 to 4096 needs ~100 MiB more): bench/upload_memory.py.
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 10 * 1024 * 1024)
UPLOAD_MAX_PIXELS = env_int("UPLOAD_MAX_PIXELS", 24_000_000)
UPLOAD_IMAGE_MAX_EDGE = env_int("UPLOAD_IMAGE_MAX_EDGE", 6000)

# --- Crypto (SM4 keys never live in the database) --------------------------------------------
# FIELD_KEYS: "id1:hex32,id2:hex32" (or FIELD_KEYS_FILE); the first key encrypts, all decrypt.
FIELD_KEYS = env_str("FIELD_KEYS") or ""
if not FIELD_KEYS and PRODUCTION:
    raise ImproperlyConfigured("FIELD_KEYS (or FIELD_KEYS_FILE) is required when PRODUCTION=1")
# SM2 signing key for what the public verifies (64 hex digits; demo: generated into DATA_DIR).
SM2_PRIVATE_KEY = env_str("SM2_PRIVATE_KEY") or ""
if not SM2_PRIVATE_KEY and PRODUCTION:
    raise ImproperlyConfigured("SM2_PRIVATE_KEY (or SM2_PRIVATE_KEY_FILE) is required when PRODUCTION=1")
# Public keys (04||x||y hex) of retired signing keys whose signatures must still verify.
SM2_TRUSTED_PUBLIC_KEYS = env_list("SM2_TRUSTED_PUBLIC_KEYS", [])

# --- API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: DRF takes the WWW-Authenticate challenge from the first class, and SessionAuthentication
    # has none, so with it first an anonymous caller got 403 instead of 401 + "WWW-Authenticate: Token".
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "regulator.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "regulator.api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "regulator.security.throttling.PerUserRateThrottle",
        "regulator.security.throttling.PerIPAnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_RATE_USER", "1200/min"),
        "anon": env_str("API_RATE_ANON", "60/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "安全生产信息化监管平台 API",
    "DESCRIPTION": "Work-safety supervision platform: registry, hazards, enforcement, devices, alerts.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Security --------------------------------------------------------------------------------
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", 30 * 60)
# Idle timeout: requests push the expiry forward (regulator.middleware.SlidingSessionMiddleware), writing
# the session row only when the expiry moves by SESSION_REFRESH_SECONDS or more.
SESSION_SAVE_EVERY_REQUEST = False
SESSION_REFRESH_SECONDS = env_int("SESSION_REFRESH_SECONDS", 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
PASSWORD_MAX_AGE_DAYS = env_int("PASSWORD_MAX_AGE_DAYS", 90)
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5)
LOGIN_LOCK_SECONDS = env_int("LOGIN_LOCK_SECONDS", 30 * 60)
# Absolute session lifetime: a session ends this long after login however active it is.
SESSION_ABSOLUTE_SECONDS = env_int("SESSION_ABSOLUTE_SECONDS", 12 * 3600)
# Lockout is per existing account; a source IP is only slowed down (429 + Retry-After), never locked,
# so one client (or everyone behind one NAT/proxy address) cannot lock the others out.
# Attempts per (client IP, username) and per client IP, fixed windows: "<count>/<s|min|hour|day>".
SECURITY_LOGIN_RATE_IP_USERNAME = env_str("SECURITY_LOGIN_RATE_IP_USERNAME", env_str("LOGIN_RATE", "10/min"))
SECURITY_LOGIN_RATE_IP = env_str("SECURITY_LOGIN_RATE_IP", "100/min")
# Reverse proxies (comma-separated IPs or CIDRs) whose X-Forwarded-For / X-Real-IP are believed for the
# client IP (audit, lockout, throttles); default none: the direct peer is the client.
SECURITY_TRUSTED_PROXIES = env_list("SECURITY_TRUSTED_PROXIES", [])
for _name in ("SECURITY_LOGIN_RATE_IP_USERNAME", "SECURITY_LOGIN_RATE_IP"):
    _count, _, _period = globals()[_name].partition("/")
    if not (_count.strip().isdigit() and int(_count) > 0 and _period.strip() in ("s", "min", "hour", "day")):
        raise ImproperlyConfigured(f"{_name} must look like 10/min (count/s|min|hour|day)")
for _proxy in SECURITY_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"SECURITY_TRUSTED_PROXIES: {_proxy!r} is not an IP address or CIDR") from None
# Request bodies (regulator.bodylimit): refused with 413 before they are read, in Daphne on
# Content-Length and on streamed bytes. The default fits every form and JSON call; uploads fit
# HAZARD_PHOTOS_PER_UPLOAD photos of UPLOAD_MAX_BYTES; the readings ingest fits
# DEVICES_INGEST_MAX_ITEMS readings. The first matching path pattern decides.
REQUEST_MAX_BODY_BYTES = env_int("REQUEST_MAX_BODY_BYTES", 1024 * 1024)
REQUEST_MAX_BODY_UPLOAD_BYTES = env_int("REQUEST_MAX_BODY_UPLOAD_BYTES", 100 * 1024 * 1024)
REQUEST_MAX_BODY_INGEST_BYTES = env_int("REQUEST_MAX_BODY_INGEST_BYTES", 4 * 1024 * 1024)
REQUEST_MAX_BODY_PATHS = {
    r"^/api/v1/readings/$": REQUEST_MAX_BODY_INGEST_BYTES,
    r"^/hazards/(report|\d+/photos|\d+/act/[-\w]+|runs/\d+/items/\d+)/$": REQUEST_MAX_BODY_UPLOAD_BYTES,
    r"^/enforcement/inspections/\d+/photos/$": REQUEST_MAX_BODY_UPLOAD_BYTES,
    r"^/api/v1/enforcement/inspections/\d+/photos/$": REQUEST_MAX_BODY_UPLOAD_BYTES,
    r"^/api/v1/hazards/(\d+/(photos|submit-rectification)/)?$": REQUEST_MAX_BODY_UPLOAD_BYTES,
    r"^/api/v1/checklist-runs/\d+/answer/$": REQUEST_MAX_BODY_UPLOAD_BYTES,
    r"^/admin/enforcement/(inspectionphoto|document)/": REQUEST_MAX_BODY_UPLOAD_BYTES,
}
for _name in ("REQUEST_MAX_BODY_BYTES", "REQUEST_MAX_BODY_UPLOAD_BYTES", "REQUEST_MAX_BODY_INGEST_BYTES"):
    if globals()[_name] < 1024:
        raise ImproperlyConfigured(f"{_name} must be at least 1024 bytes")
# Django's own limits below the caps: form fields and JSON bodies in memory up to the largest non-upload
# cap; files beyond FILE_UPLOAD_MAX_MEMORY_SIZE stream to temporary files instead of memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(REQUEST_MAX_BODY_BYTES, REQUEST_MAX_BODY_INGEST_BYTES)
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("FILE_UPLOAD_MAX_MEMORY_SIZE", 256 * 1024)
TOTP_ISSUER = env_str("TOTP_ISSUER", "安全生产监管平台")
# Audit retention: the prune command refuses anything younger (MLPS: at least 6 months).
AUDIT_RETENTION_DAYS = max(180, env_int("AUDIT_RETENTION_DAYS", 365))
LANGUAGE_COOKIE_HTTPONLY = True  # only the server reads it (regulator.locale)
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = PRODUCTION
# HMAC-SM3 keys of the audit chain, "id1:hex64,id2:hex64" (or AUDIT_CHAIN_KEYS_FILE): the first
# signs new entries, all verify; never in the database. Without it, a key derived from SECRET_KEY.
AUDIT_CHAIN_KEYS = env_str("AUDIT_CHAIN_KEYS") or ""
# Signed checkpoints of the audit chain (count, last id, last hash), outside the database: put this
# directory on other storage (write-once bucket, another host's mount). `verify_audit` checks them.
AUDIT_ANCHOR_DIR = Path(env_str("AUDIT_ANCHOR_DIR") or str(DATA_DIR / "audit-anchors"))
AUDIT_ANCHOR_MINUTES = env_int("AUDIT_ANCHOR_MINUTES", 60)
if not 1 <= AUDIT_ANCHOR_MINUTES <= 24 * 60:
    raise ImproperlyConfigured("AUDIT_ANCHOR_MINUTES must be between 1 and 1440")
CELERY_BEAT_SCHEDULE["anchor-audit-chain"] = {
    "task": "regulator.tasks.anchor_audit",
    "schedule": 60.0 * AUDIT_ANCHOR_MINUTES,
}
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- E-mail ----------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "noreply@regulator.local")

# --- Logging ---------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Domain defaults -------------------------------------------------------------------------
LICENCE_EXPIRY_WARNING_DAYS = env_int("LICENCE_EXPIRY_WARNING_DAYS", 90)
# Enterprise import (CSV/XLSX): files are streamed; beyond these the whole file is refused, nothing
# written. XLSX is checked before it is opened: the zip members' declared sizes (a 3 MB file can
# expand to over a gigabyte) and sharedStrings.xml, which openpyxl loads whole even in read-only mode.
IMPORT_MAX_FILE_BYTES = env_int("IMPORT_MAX_FILE_BYTES", 100 * 1024 * 1024)
IMPORT_MAX_ROWS = env_int("IMPORT_MAX_ROWS", 200_000)
IMPORT_MAX_COLUMNS = env_int("IMPORT_MAX_COLUMNS", 100)
IMPORT_MAX_CELL_CHARS = env_int("IMPORT_MAX_CELL_CHARS", 2000)
IMPORT_MAX_XLSX_UNCOMPRESSED_BYTES = env_int("IMPORT_MAX_XLSX_UNCOMPRESSED_BYTES", 256 * 1024 * 1024)
IMPORT_MAX_XLSX_SHARED_STRINGS_BYTES = env_int("IMPORT_MAX_XLSX_SHARED_STRINGS_BYTES", 64 * 1024 * 1024)

# --- hazards ---
# Days overdue at which an overdue hazard escalates: the enterprise principal, the park, the county.
HAZARD_ESCALATION_PRINCIPAL_DAYS = env_int("HAZARD_ESCALATION_PRINCIPAL_DAYS", 1)
HAZARD_ESCALATION_PARK_DAYS = env_int("HAZARD_ESCALATION_PARK_DAYS", 7)
HAZARD_ESCALATION_COUNTY_DAYS = env_int("HAZARD_ESCALATION_COUNTY_DAYS", 15)
# Hazard photos (validated by regulator.uploads, see UPLOAD_*): thumbnail edge, photos per upload.
HAZARD_PHOTO_THUMB_EDGE = env_int("HAZARD_PHOTO_THUMB_EDGE", 320)
HAZARD_PHOTOS_PER_UPLOAD = env_int("HAZARD_PHOTOS_PER_UPLOAD", 9)

# --- alerts ---
# Minutes to acknowledge / to record the required response, per level (1 red .. 4 blue).
ALERT_ACK_MINUTES = {
    1: env_int("ALERT_ACK_MINUTES_L1", 3),
    2: env_int("ALERT_ACK_MINUTES_L2", 10),
    3: env_int("ALERT_ACK_MINUTES_L3", 30),
    4: env_int("ALERT_ACK_MINUTES_L4", 240),
}
ALERT_RESPONSE_MINUTES = {
    1: env_int("ALERT_RESPONSE_MINUTES_L1", 10),
    2: env_int("ALERT_RESPONSE_MINUTES_L2", 30),
    3: env_int("ALERT_RESPONSE_MINUTES_L3", 120),
    4: env_int("ALERT_RESPONSE_MINUTES_L4", 1440),
}
ALERT_FLOOD_COUNT = env_int("ALERT_FLOOD_COUNT", 10)
ALERT_FLOOD_WINDOW_MINUTES = env_int("ALERT_FLOOD_WINDOW_MINUTES", 10)
ALERT_SHELVE_MAX_HOURS = env_int("ALERT_SHELVE_MAX_HOURS", 72)
ALERT_RULE_REFRESH_SECONDS = env_int("ALERT_RULE_REFRESH_SECONDS", 10)
ALERT_WS_HEARTBEAT_SECONDS = env_int("ALERT_WS_HEARTBEAT_SECONDS", 25)
# A socket whose session cannot be checked (database errors) keeps receiving alarms (a logout needs
# the same database, and is honoured at the first check that works) for at most this long; then it
# is closed with 4503 so that the client reconnects through a full session check.
ALERT_WS_SESSION_GRACE_SECONDS = env_int("ALERT_WS_SESSION_GRACE_SECONDS", 900)
# WebSocket handshakes over plain ws:// (no TLS to us, no X-Forwarded-Proto: https from the proxy) are
# accepted only in DEBUG; the Origin must match scheme, host and port (regulator.consumers.origin_allowed).
WS_ALLOW_INSECURE = DEBUG
ALERT_SMS_BACKEND = env_str("ALERT_SMS_BACKEND", "alerts.sms.LoggingSmsBackend")
# Evaluate readings arriving on an event loop (the async poller) in a background writer thread.
ALERT_RUNTIME_BACKGROUND = env_bool("ALERT_RUNTIME_BACKGROUND", True)
ALERT_LINKAGE_WATCH_SECONDS = env_int("ALERT_LINKAGE_WATCH_SECONDS", 120)  # poll a linkage write's confirmation
# Every alert change is queued on local disk before it is written (alerts/outbox.py): one SQLite file
# per process name (the poller's --name; ALERT_OUTBOX_NAME in web processes) in this directory.
ALERT_OUTBOX_DIR = Path(env_str("ALERT_OUTBOX_DIR", str(DATA_DIR / "outbox")))
ALERT_OUTBOX_NAME = env_str("ALERT_OUTBOX_NAME", "web")
ALERT_OUTBOX_MAX_CHANGES = env_int("ALERT_OUTBOX_MAX_CHANGES", 100_000)  # on disk; as many again wait in memory
# The last configuration each poller loaded (its device specs, the alert runtime's rules), kept here so
# that a poller (re)started while the database is down polls and alarms on it (devices/poller/snapshot.py).
CONFIG_SNAPSHOT_DIR = Path(env_str("CONFIG_SNAPSHOT_DIR", str(DATA_DIR / "snapshot")))

# --- devices ---
# Polling daemon (manage.py poll_devices) and the readings store; see devices/poller/.
DEVICES_RELOAD_SECONDS = env_int("DEVICES_RELOAD_SECONDS", 5)  # pick up device/channel edits
DEVICES_DEMOTE_AFTER = env_int("DEVICES_DEMOTE_AFTER", 3)  # consecutive failures before a unit leaves scan
DEVICES_PROBE_SECONDS = env_int("DEVICES_PROBE_SECONDS", 10)  # how often a demoted unit is probed
DEVICES_BACKOFF_BASE_MS = env_int("DEVICES_BACKOFF_BASE_MS", 500)
DEVICES_BACKOFF_CAP_SECONDS = env_int("DEVICES_BACKOFF_CAP_SECONDS", 30)
DEVICES_STATS_SECONDS = env_int("DEVICES_STATS_SECONDS", 5)
DEVICES_COMMAND_POLL_MS = env_int("DEVICES_COMMAND_POLL_MS", 300)
DEVICES_COIL_WRITE_TIMEOUT_SECONDS = env_int("DEVICES_COIL_WRITE_TIMEOUT_SECONDS", 30)
DEVICES_LIVE_PUSH_MS = env_int("DEVICES_LIVE_PUSH_MS", 1000)  # 0 = no live values to browsers
DEVICES_MAX_REGISTER_GAP = env_int("DEVICES_MAX_REGISTER_GAP", 8)
# Silence on an RTU bus after a timeout, before the next request (libmodbus slaves need their 500 ms)
DEVICES_RTU_RECOVERY_MS = env_int("DEVICES_RTU_RECOVERY_MS", 500)
DEVICES_FLUSH_MS = env_int("DEVICES_FLUSH_MS", 500)  # storage batching delay
DEVICES_BATCH_MS = env_int("DEVICES_BATCH_MS", 10)  # good reads decoded and folded together (alerts wait as long)
DEVICES_SPOOL_MAX_MB = env_int("DEVICES_SPOOL_MAX_MB", 256)  # store-and-forward buffer when the DB is down
DEVICES_RAW_RETENTION_DAYS = env_int("DEVICES_RAW_RETENTION_DAYS", 30)
DEVICES_AGGREGATE_RETENTION_DAYS = env_int("DEVICES_AGGREGATE_RETENTION_DAYS", 3650)
DEVICES_INGEST_MAX_ITEMS = env_int("DEVICES_INGEST_MAX_ITEMS", 5000)
# Requests per ingest token per window (N/s, N/min, N/hour, N/day); over it the answer is 429 with
# Retry-After. A DCS pushing once a second uses 60/min.
DEVICES_INGEST_RATE = env_str("DEVICES_INGEST_RATE", "300/min")
if not re.fullmatch(r"[1-9]\d*/(s|sec|m|min|h|hour|d|day)", DEVICES_INGEST_RATE or ""):
    raise ImproperlyConfigured(f"DEVICES_INGEST_RATE must look like 300/min, not {DEVICES_INGEST_RATE!r}")
# A pushed reading whose time is further than this from the receive time (either way) is stored at the
# receive time with quality clock_skew and its own time in device_time (the old name still works).
DEVICES_INGEST_MAX_CLOCK_SKEW_SECONDS = env_int(
    "DEVICES_INGEST_MAX_CLOCK_SKEW_SECONDS", env_int("DEVICES_INGEST_MAX_FUTURE_SECONDS", 300)
)
# Serial (RTU) bus budget: what a device needs between the end of a request and the start of its reply.
DEVICES_RTU_TURNAROUND_MS = env_int("DEVICES_RTU_TURNAROUND_MS", 5)
DEVICES_RTU_WARN_PERCENT = env_int("DEVICES_RTU_WARN_PERCENT", 80)  # above this the device page warns
# Rate-of-change alerts compare a reading with the one this many seconds earlier (noise-proof).
ALERT_RATE_WINDOW_SECONDS = float(env_int("ALERT_RATE_WINDOW_SECONDS", 10))
