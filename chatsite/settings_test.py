"""Settings for the test suite: the real settings, with test secrets and no real provider."""

import os

# No .env: a developer's keys and settings never reach the tests.
os.environ["ENV_FILE"] = ""
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
# A fixed Fernet key for tests only.
os.environ.setdefault("BYOK_ENCRYPTION_KEYS", "dGVzdC1vbmx5LWZlcm5ldC1rZXktMDAwMDAwMDAwMDA=")
# The test client speaks plain http (tests/chatsite/test_deploy_settings.py checks HTTPS mode).
os.environ.setdefault("HTTPS", "false")
# Tests never use real keys or the providers' public endpoints, nor a developer's collector of
# traces or metrics (the tests that want them set them up themselves).
_KEPT_OUT = ("DEFAULT_MODEL", "METRICS_TOKEN")
for _name in [*os.environ]:
    if (
        _name.endswith(("_API_KEY", "_BASE_URL"))
        or _name.startswith(("OTEL_", "LANGFUSE_", "PROMETHEUS_"))
        or _name in _KEPT_OUT
    ):
        os.environ.pop(_name)

from chatsite.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Static files come straight from the apps in tests (no collectstatic step).
STATIC_ROOT = None  # type: ignore[assignment]
WHITENOISE_USE_FINDERS = True
