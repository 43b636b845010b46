"""One error hierarchy for every provider, each with a contract `code` and a sentence for people.

Adapters translate their SDK's exceptions into these where they arise; nothing else in the app
looks at an SDK exception. `str(error)` is always the person-facing sentence: no JSON, no stack
trace, no key.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator
from typing import ClassVar, Literal, TypeAlias

ErrorCode: TypeAlias = Literal[
    "invalid_request",
    "auth",
    "permission",
    "not_found",
    "rate_limited",
    "overloaded",
    "unavailable",
    "timeout",
    "context_too_long",
    "insufficient_coins",
    "provider_error",
    "stopped",
    "interrupted",
]

ERROR_CODES: frozenset[str] = frozenset(ErrorCode.__args__)  # type: ignore[attr-defined]


class ProviderError(Exception):
    code: ClassVar[ErrorCode] = "provider_error"
    retryable: ClassVar[bool] = False
    default_message: ClassVar[str] = "The model's provider returned an error. Please try again."

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        self.message = message or self.default_message
        self.retry_after = retry_after
        super().__init__(self.message)


class InvalidRequest(ProviderError):
    code = "invalid_request"
    default_message = "The provider could not accept this request."


class AuthError(ProviderError):
    code = "auth"
    default_message = (
        "The site's key for this provider was refused. An administrator has to fix it."
    )


class ByokAuthError(AuthError):
    default_message = (
        "Your own key for this provider was refused. Check it on the keys page, or remove it."
    )


class PermissionDenied(ProviderError):
    code = "permission"
    default_message = "This key is not allowed to use this model."


class ModelNotFound(ProviderError):
    code = "not_found"
    default_message = "That model does not exist or is no longer offered. Pick another model."


class QuotaExceeded(PermissionDenied):
    default_message = (
        "The provider account behind this key has run out of credit. Top it up, or pick "
        "another model."
    )


class RateLimited(ProviderError):
    code = "rate_limited"
    retryable = True
    default_message = "The provider is limiting requests right now. Wait a moment and try again."


class Overloaded(ProviderError):
    code = "overloaded"
    retryable = True
    default_message = "The model is overloaded right now. Try again, or switch to another model."


class Unavailable(ProviderError):
    code = "unavailable"
    retryable = True
    default_message = "The provider could not be reached. Try again in a moment."


class ProviderTimeout(ProviderError):
    code = "timeout"
    retryable = True
    default_message = "The provider took too long to answer. Try again."


class ContextTooLong(ProviderError):
    code = "context_too_long"
    default_message = (
        "This conversation is too long for the model. Start a new conversation to go on."
    )


class ProviderFailure(ProviderError):
    code = "provider_error"
    retryable = True


# What a provider's `error.type` (body or mid-stream event) means, shared by every adapter.
ERROR_TYPES: dict[str, type[ProviderError]] = {
    "invalid_request_error": InvalidRequest,
    "authentication_error": AuthError,
    "permission_error": PermissionDenied,
    "not_found_error": ModelNotFound,
    "request_too_large": InvalidRequest,
    "rate_limit_error": RateLimited,
    "overloaded_error": Overloaded,
    "api_error": ProviderFailure,
    "timeout_error": ProviderTimeout,
    # OpenAI's (and OpenRouter's) names, from `error.type` or the more precise `error.code`.
    "server_error": ProviderFailure,
    "invalid_api_key": AuthError,
    "insufficient_quota": QuotaExceeded,
    "rate_limit_exceeded": RateLimited,
    "model_not_found": ModelNotFound,
    "context_length_exceeded": ContextTooLong,
}

# Types providers and proxies put on any 5xx: there the status (503, 504, 529) says more.
_GENERIC_TYPES = frozenset({"api_error", "server_error"})

_STATUS: dict[int, type[ProviderError]] = {
    400: InvalidRequest,
    401: AuthError,
    402: QuotaExceeded,
    403: PermissionDenied,
    404: ModelNotFound,
    408: ProviderTimeout,
    413: InvalidRequest,
    429: RateLimited,
    500: ProviderFailure,
    502: Unavailable,
    503: Unavailable,
    504: ProviderTimeout,
    529: Overloaded,
}

_CONTEXT_HINTS = ("prompt is too long", "context length", "context_length", "too many tokens")


def error_for(
    *,
    status: int | None,
    error_type: str | None = None,
    detail: str | None = None,
    retry_after: float | None = None,
    byok: bool = False,
) -> ProviderError:
    """Map what a provider said (HTTP status, error type, its own text) to one of our errors.

    The provider's own text is used only to recognise a too-long prompt; it is never shown.
    """
    # A specific error type says more than the status, except the generic ones.
    cls: type[ProviderError] | None = None
    if error_type not in _GENERIC_TYPES or status is None:
        cls = ERROR_TYPES.get(error_type or "")
    if cls is None and status is not None:
        cls = _STATUS.get(status) or (ProviderFailure if status >= 500 else InvalidRequest)
    cls = cls or ProviderFailure
    if cls is InvalidRequest and detail and any(h in detail.lower() for h in _CONTEXT_HINTS):
        cls = ContextTooLong
    if cls is AuthError and byok:
        cls = ByokAuthError
    if cls is InvalidRequest and status == 413:
        return InvalidRequest("This message is too large for the provider. Shorten it.")
    if cls is RateLimited and retry_after:
        wait = max(1, round(retry_after))
        return RateLimited(
            f"The provider is limiting requests right now. Try again in about {wait} s.",
            retry_after=retry_after,
        )
    return cls(retry_after=retry_after)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `retry-after` header (seconds form only; dates are rare for APIs)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 3600 else None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        cause = cause.__cause__ or cause.__context__


_NO_ROUTE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH})


def unreachable(exc: BaseException) -> Unavailable | None:
    """A provider that could not be reached at all, named for why (the SDKs and their
    transports call some of these timeouts, or a lost connection): None if that is not it.
    Each cause looked for happens only while connecting, never to a stream under way."""
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return Unavailable(
                "The provider could not be reached: its address could not be found (DNS). "
                "Try again in a moment; if it goes on, an administrator has to check it."
            )
        if isinstance(cause, ConnectionRefusedError):
            return Unavailable(
                "The provider could not be reached: it refused the connection. "
                "Try again in a moment."
            )
        if isinstance(cause, ssl.SSLCertVerificationError):
            return Unavailable(
                "The provider could not be reached safely: its certificate was not valid."
            )
        if isinstance(cause, OSError) and cause.errno in _NO_ROUTE:
            return Unavailable(
                "The provider could not be reached: there is no route to it from this site. "
                "Try again in a moment."
            )
    return None
