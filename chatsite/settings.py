"""Settings, read from the environment with django-environ (see .env.example)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

# Plain data (each provider's name and endpoint): the settings below are read for each one.
from providers import registry as provider_registry

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# The process environment wins over the file. ENV_FILE names another file; empty, none is read
# (the tests read none: a developer's keys must never reach them).
ENV_FILE = env.str("ENV_FILE", default=str(BASE_DIR / ".env"))
if ENV_FILE and Path(ENV_FILE).exists():
    environ.Env.read_env(ENV_FILE, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-" + hashlib.sha256(str(BASE_DIR).encode()).hexdigest()

_HOSTS = [h for h in env.list("ALLOWED_HOSTS", default=[]) if h]
ALLOWED_HOSTS = _HOSTS or ["127.0.0.1", "localhost"]
if "*" in ALLOWED_HOSTS:
    # The websocket origin check trusts exactly these hosts: a wildcard would let any page in.
    raise ImproperlyConfigured("ALLOWED_HOSTS must name the site's hosts; '*' is refused.")
CSRF_TRUSTED_ORIGINS = [o for o in env.list("CSRF_TRUSTED_ORIGINS", default=[]) if o]

# Served over HTTPS (the default when DEBUG is off): secure cookies, HSTS, redirect to HTTPS.
# HTTPS=false only for a local production-like run over http (the end-to-end tests).
HTTPS = env.bool("HTTPS", default=not DEBUG)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Joining the browsers' HSTS preload list is hard to undo: an operator's choice, so the deploy
# check's reminder about it (W021) is silenced unless they made it.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
if env.bool("BEHIND_TLS_PROXY", default=False):
    # Only behind a proxy that always sets this header itself (and strips a client's).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Only behind a proxy that rewrites Host and names the browser's in X-Forwarded-Host: pages and
# the websocket origin check (chatsite/origins.py) then read that header instead.
USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=False)
SESSION_COOKIE_HTTPONLY = True
# Error reports mask anything shaped like a provider key (chatsite/error_reports.py).
DEFAULT_EXCEPTION_REPORTER_FILTER = "chatsite.error_reports.KeyScrubbingFilter"
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "providers",
    "billing",
    "chat",
    "tools",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "chatsite.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out log-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# --- Log-in throttling (django-axes) -----------------------------------------------------------
# Failed log-ins are counted per account and per address (either reaching the limit locks the
# log-in out for the cool-off time), in the database, so every worker counts together. The
# admin lists them under "Axes" (access attempts); deleting one lifts its lockout.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "chatsite.accounts.locked_out"
# The address the server saw (behind the README's proxy, daphne and uvicorn take it from
# X-Forwarded-For with --proxy-headers); no header a client could set is read here.
AXES_CLIENT_IP_CALLABLE = "chatsite.accounts.client_address"
# Failures only: successful log-ins are not kept.
AXES_DISABLE_ACCESS_LOG = True

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"

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
                "billing.context_processors.coins",
                "chatsite.accounts.account_pages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads (the ASGI server's and the runner's checkpoints) write: wait, don't fail.
    # In WAL mode `synchronous=NORMAL` cannot corrupt the database; a power cut may lose the
    # last commits. It halves the time of a reply's first transaction (no fsync per commit),
    # which is on the way to its first token (bench/ttft.py).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Keep the connection of the thread that does websocket and reply work: closed after every
    # trip there, each trip paid for a new connection (schema read, pragmas) and, as the last
    # connection closed, a WAL checkpoint. HTTP requests still close theirs at their end
    # (chatsite/connections.py), as Django advises under ASGI.
    DATABASES["default"]["CONN_MAX_AGE"] = None
DATABASE_POOL_SIZE = env.int("DATABASE_POOL_SIZE", default=8)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_POOL_SIZE > 0:
    # Every trip to the database thread (`database_sync_to_async`) ends by closing its
    # connection (CONN_MAX_AGE=0, as Django advises under ASGI); with psycopg's pool the close
    # hands the connection back instead of ending a PostgreSQL session, so a trip costs no new
    # connection. 0 turns the pool off (behind an external pooler such as PgBouncer).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "pool",
        {
            "min_size": min(2, DATABASE_POOL_SIZE),
            "max_size": DATABASE_POOL_SIZE,
            # A trip that cannot get a connection in this time fails (PoolTimeout), not hangs.
            "timeout": 10,
        },
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
# redis-py's asyncio pool raises MaxConnectionsError past its size (100 by default) instead of
# waiting; the hub keeps its concurrent layer calls to half of this, so the pool always fits.
REDIS_MAX_CONNECTIONS = env.int("REDIS_MAX_CONNECTIONS", default=200)
LAYER_CONCURRENCY = max(1, REDIS_MAX_CONNECTIONS // 2) if REDIS_URL else 1000
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": REDIS_MAX_CONNECTIONS,
                        # redis-py 8 reads with a 5 s timeout by default, the same 5 s that
                        # channels-redis blocks in BZPOPMIN: idle receives would time out.
                        "socket_timeout": 30,
                        "socket_connect_timeout": 5,
                    }
                ],
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/chat/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- Mail --------------------------------------------------------------------------------------
# EMAIL_URL configures outgoing mail (django-environ's form: smtp+tls://user:password@host:587,
# consolemail://). Without it, mail is printed to the console when DEBUG is on, and otherwise
# there is none: the password-reset pages are then not offered (they could not send).
if env.str("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))
    PASSWORD_RESET_ENABLED = True
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    PASSWORD_RESET_ENABLED = DEBUG
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="webmaster@localhost")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
WHITENOISE_USE_FINDERS = DEBUG

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
if LOG_LEVEL not in logging.getLevelNamesMapping():
    raise ImproperlyConfigured(f"LOG_LEVEL {LOG_LEVEL!r} is not a logging level.")
# `plain` for people reading a terminal; `json` (one object a line, for a log shipper) with
# the same fields and, on a reply's lines, its message_id and conversation_id (chatsite/logs.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
# GET /metrics answers a bearer of this token (chatsite/metrics.py); unset: /metrics is a 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "chatsite.logs.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(message_id)s "
            "%(conversation_id)s %(trace_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # The SDKs and their HTTP stack log whole request options (prompts) at DEBUG: never below
    # INFO, whatever LOG_LEVEL says, so no log line holds a person's prompt; above it (their
    # line per request at INFO) only as LOG_LEVEL says.
    "loggers": {
        name: {"level": logging.getLevelName(max(logging.INFO, logging.getLevelName(LOG_LEVEL)))}
        for name in ("anthropic", "openai", "httpx2", "httpcore2", "httpcore", "httpx")
    },
}

# --- Providers -------------------------------------------------------------------------------
# Each registered provider's key and endpoint (providers/registry.py), shaped like DATABASES:
# `<NAME>_API_KEY` (unset: the provider serves only people who bring their own key) and
# `<NAME>_BASE_URL` (unset: the provider's public endpoint).
PROVIDERS = {
    name: {
        "API_KEY": env.str(f"{name.upper()}_API_KEY", default=""),
        "BASE_URL": env.str(f"{name.upper()}_BASE_URL", default=record.base_url),
    }
    for name, record in provider_registry.PROVIDERS.items()
    if record.needs_key
}
DEFAULT_MODEL = env.str("DEFAULT_MODEL", default="") or (
    "claude-sonnet-5-5" if PROVIDERS["anthropic"]["API_KEY"] else "demo"
)
# Longest silence allowed between two bytes of a streaming reply before it ends as `timeout`.
PROVIDER_CONNECT_TIMEOUT = env.float("PROVIDER_CONNECT_TIMEOUT", default=10.0)
PROVIDER_IDLE_TIMEOUT = env.float("PROVIDER_IDLE_TIMEOUT", default=90.0)
# Longest a reply may run, retries included (a provider that drips a token now and then for ever
# never trips the idle timeout): then it ends as `timeout`, its text kept and billed.
REPLY_MAX_SECONDS = env.float("REPLY_MAX_SECONDS", default=1800.0)
# How OpenRouter shows this site in its activity and rankings (`X-OpenRouter-Title`,
# `HTTP-Referer`); attribution only, not authentication.
SITE_NAME = env.str("SITE_NAME", default="Chatsite")
SITE_URL = env.str("SITE_URL", default="")
# Thinking budget for models that take one ("budget" in providers/catalogue.py); models with
# adaptive thinking decide for themselves.
THINKING_BUDGET_TOKENS = env.int("THINKING_BUDGET_TOKENS", default=4_096)
# Name each conversation after its first reply with one short call to the same model (billed
# like a reply, recorded as a `title` LlmUsage row).
AUTO_TITLES = env.bool("AUTO_TITLES", default=True)
# A tool call that takes longer is stopped and reported to the model as an error; a longer
# result is cut to this many characters (tools/registry.py).
TOOL_TIMEOUT_SECONDS = env.float("TOOL_TIMEOUT_SECONDS", default=30.0)
TOOL_RESULT_MAX_CHARS = env.int("TOOL_RESULT_MAX_CHARS", default=20_000)
# A reply calls the model at most this many times in its tool loop (chat/tool_loop.py); calls
# asked for in the last round are not run, and the reply says so. At most this many calls
# run in one round (the rest are answered as errors).
TOOL_ROUNDS_MAX = env.int("TOOL_ROUNDS_MAX", default=8)
TOOL_CALLS_PER_ROUND_MAX = env.int("TOOL_CALLS_PER_ROUND_MAX", default=16)
# Private networks the URL fetcher may read after all (an intranet), as CIDRs; by default it
# reads public addresses only (tools/fetch.py).
TOOL_FETCH_ALLOWED_NETWORKS = env.list("TOOL_FETCH_ALLOWED_NETWORKS", default=[])
# How often each process reloads the figures `sync_models` stored (seconds).
MODEL_SYNC_RELOAD = env.float("MODEL_SYNC_RELOAD", default=60.0)
# Pace of the offline demo model.
DEMO_TOKENS_PER_SECOND = env.float("DEMO_TOKENS_PER_SECOND", default=40.0)

# --- Coins and keys ----------------------------------------------------------------------------
SIGNUP_COINS = env.int("SIGNUP_COINS", default=1000)
COINS_PER_USD = env.int("COINS_PER_USD", default=1000)
BYOK_ENCRYPTION_KEYS = [k for k in env.list("BYOK_ENCRYPTION_KEYS", default=[]) if k.strip()]
if not BYOK_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("BYOK_ENCRYPTION_KEYS must be set when DEBUG is off.")
    _digest = hashlib.sha256(("byok:" + SECRET_KEY).encode()).digest()
    BYOK_ENCRYPTION_KEYS = [base64.urlsafe_b64encode(_digest).decode()]

# --- Reply delivery ----------------------------------------------------------------------------
# Sockets in the runner's own process get a reply's text as soon as its provider stream pauses
# (what one read brought is one frame); above 0, at most one frame per this interval per reply,
# for less CPU per event at up to this much more latency.
REPLY_FRAME_INTERVAL = env.float("REPLY_FRAME_INTERVAL", default=0.0)
# Each worker sends each other worker whose sockets watch its replies one message this often
# (through the channel layer), with what all those replies streamed meanwhile. A relayed event
# waits up to this long; each message costs both workers CPU (docs/benchmarks.md).
REPLY_REMOTE_INTERVAL = env.float("REPLY_REMOTE_INTERVAL", default=0.02)
# The runner saves partial text this often (and at the end), never per delta.
REPLY_CHECKPOINT_INTERVAL = env.float("REPLY_CHECKPOINT_INTERVAL", default=1.0)
# A streaming reply whose heartbeat is older than this lost its process: it is ended as
# `interrupted` and settled (checkpoints touch the heartbeat at least every 10 s).
REPLY_STALE_AFTER = env.float("REPLY_STALE_AFTER", default=60.0)
# Every worker looks for such replies this often.
REPLY_SWEEP_INTERVAL = env.float("REPLY_SWEEP_INTERVAL", default=30.0)
# On SIGTERM a worker ends its live replies (saved, settled, Retry offered) before it stops,
# waiting at most this long (chat/shutdown.py); keep it below the process manager's stop timeout.
SHUTDOWN_GRACE = env.float("SHUTDOWN_GRACE", default=10.0)
# Per-person limits, shared by every worker (the database): sends and retries per minute
# (over it: `rate_limited` with the wait), and open sockets (tabs) at once.
SENDS_PER_MINUTE = env.int("SENDS_PER_MINUTE", default=20)
SOCKETS_PER_PERSON = env.int("SOCKETS_PER_PERSON", default=12)
# Conversations a person may have, and start a minute ("New chat" reuses an empty one).
CONVERSATIONS_PER_PERSON = env.int("CONVERSATIONS_PER_PERSON", default=5_000)
NEW_CONVERSATIONS_PER_MINUTE = env.int("NEW_CONVERSATIONS_PER_MINUTE", default=10)
# Frames one socket may send: this many a second on average, in bursts of up to
# SOCKET_FRAME_BURST (a page sends a few a minute). Beyond that the socket is flooding its
# worker and is closed (Close.TOO_MANY_FRAMES).
SOCKET_FRAMES_PER_SECOND = env.float("SOCKET_FRAMES_PER_SECOND", default=5.0)
SOCKET_FRAME_BURST = env.int("SOCKET_FRAME_BURST", default=30)
# Longest message a person can send, in characters.
MESSAGE_MAX_CHARS = env.int("MESSAGE_MAX_CHARS", default=32_000)
# Below this many tokens a reply is not worth starting: refuse with `insufficient_coins`.
MIN_REPLY_TOKENS = env.int("MIN_REPLY_TOKENS", default=256)
# The page warns when a balance falls below this.
LOW_BALANCE_COINS = env.int("LOW_BALANCE_COINS", default=50)
