"""One exception tree. Whether a failure may be tried again is decided in `retry.py`, from these types.

Every message is written for the agent: it says what went wrong and what to do next, and never holds
a secret (adapters scrub vendor text before building these). Errors are values once raised: nothing
changes one after the fact; a caller that knows more raises a new one.

    AlephError
    ├── InvalidInput                 the arguments cannot work; nothing was sent
    │   ├── BudgetExceeded           over a spending cap, or of unknown price under a USD cap
    │   └── IdempotencyConflict      the idempotency_key belongs to another request
    ├── NotConfigured                the provider has no API key here
    ├── EditNotFound
    ├── ArchiveWriteFailed           the archive could not be written (`permanent`: read-only)
    ├── CannotCancel
    └── ProviderError                a provider call failed (`not_created`: no job can have started)
        ├── TransientProviderError   timeouts, dropped connections, 408/5xx, malformed bodies
        │   └── RateLimited          429
        └── FatalProviderError       refused for good
            ├── AuthFailed
            ├── RemoteNotFound
            ├── OutputExpired        the result URL no longer serves the file
            ├── UnsafeURL            a URL the fetch policy refuses (scheme, private address, redirects)
            └── OutputNotVideo       the result's bytes are not a video
"""

from __future__ import annotations

from typing import Literal

# Every code this server itself gives an error or a failed edit. A provider's own failure code (kie's
# numbers, Runway's failureCode) is data and reaches a record as the vendor gave it.
ErrorCode = Literal[
    "error",
    "invalid_input",
    "budget_exceeded",
    "price_unknown",
    "idempotency_conflict",
    "not_configured",
    "not_found",
    "cannot_cancel",
    "cancelled",
    "provider_error",
    "provider_unavailable",
    "provider_failed",
    "rate_limited",
    "provider_rejected",
    "auth_failed",
    "remote_not_found",
    "output_expired",
    "timeout",
    "malformed_response",
    "generation_failed",
    "feature_disabled",
    "insufficient_credits",
    "model_unavailable",
    "render_failed",
    "submit_outcome_unknown",
    "capacity_timeout",
    "not_sent",
    "url_refused",
    "output_not_video",
    "archive_write_failed",
    "declined",
    "window_failed",
    "stitch_failed",
]


class AlephError(Exception):
    """Base of every error the server raises on purpose."""

    code: ErrorCode = "error"
    retryable = False

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(AlephError):
    """The caller's arguments cannot work; nothing was sent."""

    code: ErrorCode = "invalid_input"


class BudgetExceeded(InvalidInput):
    """The edit would pass a spending cap (or its price is unknown under a USD cap); nothing was sent."""

    code: ErrorCode = "budget_exceeded"


class IdempotencyConflict(InvalidInput):
    """The idempotency_key is already taken: by another request's arguments, or by a concurrent insert."""

    code: ErrorCode = "idempotency_conflict"


class NotConfigured(AlephError):
    """The chosen provider has no API key (or is otherwise unusable here)."""

    code: ErrorCode = "not_configured"


class EditNotFound(AlephError):
    code: ErrorCode = "not_found"


class CannotCancel(AlephError):
    code: ErrorCode = "cannot_cancel"


class ProviderError(AlephError):
    """A provider call failed.

    `not_created` is about create requests: True when the provider cannot have started a job (connection
    refused, a 4xx refusal, 429), so sending the create again cannot bill twice.
    """

    code: ErrorCode = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
        not_created: bool = False,
    ) -> None:
        super().__init__(message, code=code)
        self.status_code = status_code
        self.retry_after = retry_after
        self.not_created = not_created


class TransientProviderError(ProviderError):
    """Timeouts, dropped connections, 408/429/5xx, malformed bodies: worth trying again later."""

    code: ErrorCode = "provider_unavailable"
    retryable = True


class RateLimited(TransientProviderError):
    code: ErrorCode = "rate_limited"


class FatalProviderError(ProviderError):
    """The provider refused for good (bad request, auth, not found, moderation)."""

    code: ErrorCode = "provider_rejected"


class AuthFailed(FatalProviderError):
    code: ErrorCode = "auth_failed"


class RemoteNotFound(FatalProviderError):
    code: ErrorCode = "remote_not_found"


class OutputExpired(FatalProviderError):
    """The result URL no longer serves the file (403/404/410); a fresh status read may re-sign it."""

    code: ErrorCode = "output_expired"


class UnsafeURL(FatalProviderError):
    """A URL the fetch policy refuses: not https, a private or local address, too many redirects."""

    code: ErrorCode = "url_refused"


class OutputNotVideo(FatalProviderError):
    """The provider's result did not open as a video (HTML, an image, a playlist); the bytes were deleted."""

    code: ErrorCode = "output_not_video"


class ArchiveWriteFailed(AlephError):
    """The archive could not be written: full (worth retrying) or read-only (`permanent`)."""

    code: ErrorCode = "archive_write_failed"

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
