"""Retry classification, in one place: which failures are worth another try, and when.

- `error_for_status` turns a failed HTTP answer (or a vendor envelope code) into the error tree; the class
  says whether it is transient, and `not_created` whether a create that got it can have started a job.
- `create_retry_delay` decides whether a create may be sent again: only when the answer proves no job was
  started, never on a timeout or a dropped connection (that could bill twice).
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

from aleph_mcp.errors import (
    AuthFailed,
    FatalProviderError,
    ProviderError,
    RateLimited,
    RemoteNotFound,
    TransientProviderError,
)
from aleph_mcp.redact import scrub

CREATE_ATTEMPTS = 3  # only for answers proving the job was not created (connection refused, 429)
MAX_CREATE_WAIT = 5.0  # a tool call must stay well under a minute; a longer Retry-After fails the submit


def create_retry_delay(exc: ProviderError, attempt: int) -> float | None:
    """Seconds to wait before sending a failed create again, or None when it must not be resent."""
    if not (exc.not_created and exc.retryable and attempt < CREATE_ATTEMPTS):
        return None
    wait = exc.retry_after if exc.retry_after is not None else float(attempt)
    return wait if wait <= MAX_CREATE_WAIT else None  # never sooner than the provider asked


def waits_for_capacity(exc: ProviderError) -> bool:
    """A create refused for lack of room (429: rate or concurrent-job limit): no job was made, so the edit
    waits, unsent, and is sent again when the provider has room instead of failing."""
    return isinstance(exc, RateLimited) and exc.not_created


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def error_for_status(
    provider: str,
    status: int,
    message: str,
    *,
    retry_after: float | None = None,
    secrets: list[str] | tuple[str, ...] = (),
) -> ProviderError:
    """Classify one failed answer (an HTTP status or a vendor envelope code) into our error tree."""
    text = scrub(message, secrets) or f"HTTP {status}"
    where = f"{provider} answered {status}: {text}"
    if status == 429:
        return RateLimited(
            f"{where}. The provider is rate limiting.",
            status_code=status,
            retry_after=retry_after,
            not_created=True,
        )
    if status == 501:  # kie/crun: "generation failed", a verdict rather than an outage
        return FatalProviderError(where, code="generation_failed", status_code=status)
    if status == 505:  # kie/crun: "feature disabled" for this account
        return FatalProviderError(where, code="feature_disabled", status_code=status, not_created=True)
    if status == 408 or status >= 500:
        return TransientProviderError(where, status_code=status, retry_after=retry_after)
    if status == 455:  # kie/crun: maintenance
        return TransientProviderError(
            f"{where} (service under maintenance)",
            status_code=status,
            retry_after=retry_after,
            not_created=True,
        )
    if status == 401:
        return AuthFailed(
            f"{where}. Check the {provider} API key in the server's configuration.",
            status_code=status,
            not_created=True,
        )
    if status == 402:
        return FatalProviderError(
            f"{where}. The {provider} account is out of credits.",
            code="insufficient_credits",
            status_code=status,
            not_created=True,
        )
    if status == 404:
        return RemoteNotFound(where, status_code=status, not_created=True)
    return FatalProviderError(where, status_code=status, not_created=True)
