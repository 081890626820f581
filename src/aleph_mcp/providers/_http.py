"""The one place HTTP outcomes become our errors: timeouts, status codes, vendor envelopes, redaction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx2

from aleph_mcp.errors import (
    TransientProviderError,
)
from aleph_mcp.providers.api_reads import ApiReads
from aleph_mcp.providers.base import PreparedCreate
from aleph_mcp.retry import error_for_status, parse_retry_after

SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie"})


def vendor_message(body: Any) -> str:
    """The human part of a vendor error body, whatever its envelope looks like."""
    if isinstance(body, str):
        return body
    if not isinstance(body, Mapping):
        return ""
    for key in ("error", "message", "msg", "detail", "failure", "errorMessage"):
        value = body.get(key)
        if isinstance(value, Mapping):
            nested = vendor_message(value)
            if nested:
                return nested
        elif isinstance(value, str) and value.strip():
            return value
        elif isinstance(value, list) and value:
            return "; ".join(vendor_message(v) if isinstance(v, Mapping) else str(v) for v in value)
    return ""


class ProviderHTTP:
    """A thin JSON client over an injected `httpx2.AsyncClient` for one provider."""

    def __init__(
        self,
        client: httpx2.AsyncClient,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        secrets: list[str] | tuple[str, ...] = (),
        timeout: float = 30.0,
    ) -> None:
        self.client = client
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.secrets = tuple(secrets)
        self.timeout = timeout

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        base_url: str | None = None,
        allow_empty: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Send one request and return the decoded JSON body; raise a `ProviderError` on any failure."""
        url = (base_url or self.base_url).rstrip("/") + path
        return await self._exchange(
            method,
            url,
            json_body=json_body,
            params=params,
            headers=headers,
            allow_empty=allow_empty,
            **kwargs,
        )

    def prepare(
        self, method: str, path: str, json_body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> PreparedCreate:
        """The request `send` would make, built by httpx2 without sending it; secrets masked."""
        url = self.base_url + path
        built = self.client.build_request(
            method, url, json=json_body, headers={**self.headers, **(headers or {})}
        )
        # Content-Length follows the real body, which may differ (an uploaded file's URL for a placeholder).
        shown = {k: self._mask(k, v) for k, v in built.headers.items() if k.lower() != "content-length"}
        return PreparedCreate(method=method, url=str(built.url), headers=shown, body=json_body)

    async def send(self, prepared: PreparedCreate, headers: Mapping[str, str] | None = None) -> Any:
        """Send a prepared create: the same method, URL and body, with the real (unmasked) headers and the
        create's own `headers` (as given to `prepare`)."""
        return await self._exchange(prepared.method, prepared.url, json_body=prepared.body, headers=headers)

    def _mask(self, name: str, value: str) -> str:
        for secret in self.secrets:
            if secret:
                value = value.replace(secret, "***")
        if name.lower() in SECRET_HEADERS and "***" not in value:
            scheme, _, rest = value.partition(" ")
            value = f"{scheme} ***" if rest else "***"
        return value

    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        allow_empty: bool = False,
        **kwargs: Any,
    ) -> Any:
        # The app's own client reads statuses over aiohttp (api_reads.py); a test's injected one does not.
        # Looked up at each request: the server's client stands in for one made at its first use.
        reads = getattr(self.client, "reads", None)
        try:
            if isinstance(reads, ApiReads) and method == "GET" and json_body is None and not kwargs:
                # A status read: nothing paid, nothing uploaded, so the cheaper client may carry it.
                encoded = str(httpx2.URL(url, params=params))  # as httpx2 would send it
                response = await reads.get(
                    encoded, headers={**self.headers, **(headers or {})}, timeout=self.timeout
                )
            else:
                response = await self.client.request(
                    method,
                    url,
                    json=json_body,
                    params=params,
                    headers={**self.headers, **(headers or {})},
                    timeout=self.timeout,
                    **kwargs,
                )
        except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout) as exc:
            raise TransientProviderError(
                f"Could not connect to {self.provider} ({type(exc).__name__}).", not_created=True
            ) from None
        except httpx2.TimeoutException as exc:
            raise TransientProviderError(
                f"{self.provider} did not answer in time ({type(exc).__name__}).", code="timeout"
            ) from None
        except httpx2.TransportError as exc:
            raise TransientProviderError(
                f"The connection to {self.provider} broke ({type(exc).__name__})."
            ) from None
        return self.decode(response, allow_empty=allow_empty)

    def decode(self, response: httpx2.Response, *, allow_empty: bool = False) -> Any:
        body: Any
        try:
            body = response.json() if response.content else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
            if response.is_success:
                raise TransientProviderError(
                    f"{self.provider} sent a body that is not JSON (HTTP {response.status_code}).",
                    code="malformed_response",
                ) from None
        if not response.is_success:
            message = vendor_message(body) if body is not None else response.text
            raise error_for_status(
                self.provider,
                response.status_code,
                message,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
                secrets=self.secrets,
            )
        if body is None and not allow_empty:
            raise TransientProviderError(
                f"{self.provider} sent an empty body (HTTP {response.status_code}).",
                code="malformed_response",
            )
        return body

    def check_envelope(self, body: Any, *, message_keys: tuple[str, ...] = ("msg", "message")) -> Any:
        """kie and crun answer HTTP 200 with `{code, msg|message, data}`: raise unless code is 200.

        Returns `data`.
        """
        if not isinstance(body, Mapping):
            raise TransientProviderError(
                f"{self.provider} sent an unexpected body.", code="malformed_response"
            )
        code = body.get("code")
        if code is None:
            return body.get("data")
        try:
            status = int(code)
        except (TypeError, ValueError):
            status = 500
        if status != 200:
            message = next((str(body[k]) for k in message_keys if body.get(k)), "")
            raise error_for_status(self.provider, status, message, secrets=self.secrets)
        return body.get("data")

    def malformed(self, what: str) -> TransientProviderError:
        return TransientProviderError(f"{self.provider} sent {what}.", code="malformed_response")
