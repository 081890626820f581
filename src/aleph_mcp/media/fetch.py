"""The one fetch policy for everything fetched on a user's behalf: result videos, vendor thumbnails and the
pre-flight probe of input URLs.

A URL a provider answers with is data, never an instruction. It is fetched only over https (plain http only
to an origin the operator configured as a provider base URL), never from another scheme (`file:`, `data:`),
and never from a host that resolves to a private, loopback, link-local or metadata address, unless it is
exactly such a configured origin (test fakes and local proxies on 127.0.0.1). Redirects are followed by hand,
each hop under the same rule, at most `max_redirects`.

The host is resolved here and every address checked; the request then goes to the checked address (the URL
carries the IP, the Host header and TLS server name the original host), so a DNS answer cannot change between
the check and the connect. Configured origins are trusted as named and connect normally.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

import anyio
import httpx2

from aleph_mcp.errors import TransientProviderError, UnsafeURL

logger = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]
Origin = tuple[str, str, int]
DEFAULT_PORTS = {"https": 443, "http": 80}
MAX_REDIRECTS = 3
# Private, loopback, link-local (169.254.169.254), unique-local (fd00:ec2::254), shared, reserved: not global.
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host`."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def origin_of(url: str | httpx2.URL) -> Origin:
    parsed = httpx2.URL(url) if isinstance(url, str) else url
    scheme = parsed.scheme.lower()
    return scheme, parsed.host.lower(), parsed.port or DEFAULT_PORTS.get(scheme, 0)


def is_public(address: IPAddress) -> bool:
    """A globally routable unicast address (an IPv4-mapped IPv6 address is judged as its IPv4 one)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Target:
    """Where one request goes: `url` (the checked IP where pinned) with the headers that name the host."""

    url: httpx2.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FetchPolicy:
    """`origins`: the configured provider base URLs; `allow_private`: the operator's unsafe opt-out."""

    origins: frozenset[Origin] = frozenset()
    resolver: Resolver = system_resolver
    allow_private: bool = False
    max_redirects: int = MAX_REDIRECTS

    @classmethod
    def trusting(cls, base_urls: Iterable[str], **kw: object) -> FetchPolicy:
        return cls(origins=frozenset(origin_of(u) for u in base_urls if u), **kw)  # type: ignore[arg-type]

    def strict(self) -> FetchPolicy:
        """The same policy without the configured-origin exception (for probes of input URLs)."""
        return replace(self, origins=frozenset())

    async def target(self, url: httpx2.URL) -> Target:
        """Check one URL; raises UnsafeURL when it may not be fetched."""
        scheme, host, port = origin = origin_of(url)
        if origin in self.origins:
            return Target(url)
        if scheme != "https":
            raise UnsafeURL(f"Refused to fetch a {scheme or 'scheme-less'}: URL; only https is fetched.")
        if url.userinfo:
            raise UnsafeURL("Refused to fetch a URL with credentials in it.")
        addresses = await self._addresses(host, port)
        refused = [a for a in addresses if not is_public(a)]
        if refused and not self.allow_private:
            logger.warning("fetch refused host=%s address=%s reason=not_global", host, refused[0])
            raise UnsafeURL(
                f"Refused to fetch from {host}: it points at a private, loopback or link-local address "
                f"({refused[0]}), which this server never reaches for a URL it was given."
            )
        pinned = url.copy_with(host=str(addresses[0]))
        netloc = url.netloc.decode("ascii")
        return Target(pinned, {"host": netloc}, {"sni_hostname": host})

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        try:
            found = await self.resolver(host, port)
        except OSError as exc:
            raise TransientProviderError(f"Could not resolve {host} ({exc.strerror or exc}).") from None
        addresses = []
        for item in found:
            try:
                addresses.append(ipaddress.ip_address(item.split("%", 1)[0]))
            except ValueError:
                raise UnsafeURL(f"Refused to fetch from {host}: it resolved to {item!r}.") from None
        if not addresses:
            raise TransientProviderError(f"Could not resolve {host}.")
        return addresses


@asynccontextmanager
async def open_url(
    client: httpx2.AsyncClient,
    url: str,
    policy: FetchPolicy,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> AsyncIterator[httpx2.Response]:
    """A streamed response for `url` under `policy`, redirects followed hop by hop under the same rule.

    Raises UnsafeURL for a URL (or redirect) the policy refuses; httpx2 errors pass through.
    """
    try:
        current = httpx2.URL(url)
    except httpx2.InvalidURL:
        raise UnsafeURL("Refused to fetch a URL that is not well formed.") from None
    wait = httpx2.USE_CLIENT_DEFAULT if timeout is None else timeout
    for _ in range(policy.max_redirects + 1):
        target = await policy.target(current)
        request = client.build_request(
            method,
            target.url,
            headers={**(headers or {}), **target.headers},
            timeout=wait,
            extensions=target.extensions,
        )
        response = await client.send(request, stream=True, follow_redirects=False)
        if not response.is_redirect:
            try:
                yield response
            finally:
                await response.aclose()
            return
        await response.aclose()
        try:
            current = current.join(response.headers["location"])
        except httpx2.InvalidURL:
            raise UnsafeURL("Refused to follow a redirect to a URL that is not well formed.") from None
    raise UnsafeURL(f"Refused to follow more than {policy.max_redirects} redirects.")


async def read_url(
    client: httpx2.AsyncClient,
    url: str,
    policy: FetchPolicy,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    limit: int = 1024 * 1024,
) -> tuple[httpx2.Response, bytes]:
    """The response and at most `limit` bytes of its body (a probe never reads a whole video)."""
    async with open_url(client, url, policy, method=method, headers=headers, timeout=timeout) as response:
        body = bytearray()
        if method != "HEAD":
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= limit:
                    break
        return response, bytes(body[:limit])
