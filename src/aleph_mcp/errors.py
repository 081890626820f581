"""One exception tree. Whether a failure is worth retrying is decided here, nowhere else.

Every message is written for the agent: it says what went wrong and what to do next, and never holds
a secret (adapters scrub vendor text before building these).
"""

from __future__ import annotations


class AlephError(Exception):
    """Base of every error the server raises on purpose."""

    code = "error"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(AlephError):
    """The caller's arguments cannot work; nothing was sent."""

    code = "invalid_input"


class BudgetExceeded(InvalidInput):
    """The edit would pass a spending cap (or its price is unknown under a USD cap); nothing was sent."""

    code = "budget_exceeded"


class NotConfigured(AlephError):
    """The chosen provider has no API key (or is otherwise unusable here)."""

    code = "not_configured"


class EditNotFound(AlephError):
    code = "not_found"


class CannotCancel(AlephError):
    code = "cannot_cancel"


class ProviderError(AlephError):
    """A provider call failed.

    `not_created` is about create requests: True when the provider cannot have started a job (connection
    refused, a 4xx refusal, 429), so sending the create again cannot bill twice.
    """

    code = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
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

    code = "provider_unavailable"
    retryable = True


class RateLimited(TransientProviderError):
    code = "rate_limited"


class FatalProviderError(ProviderError):
    """The provider refused for good (bad request, auth, not found, moderation)."""

    code = "provider_rejected"


class AuthFailed(FatalProviderError):
    code = "auth_failed"


class RemoteNotFound(FatalProviderError):
    code = "remote_not_found"


class OutputExpired(FatalProviderError):
    """The result URL no longer serves the file (403/404/410); a fresh status read may re-sign it."""

    code = "output_expired"
