"""Sign-in for the HTTP transport: the server is an OAuth 2.1 resource server (MCP authorization spec).

Two ways to say who may call, each a `TokenVerifier` the SDK's bearer middleware runs on every request:
- `JwtVerifier`: bearer JWTs from an identity provider, checked against its JWKS (signature, issuer,
  audience, expiry); the SDK then checks the required scopes and answers 401/403 with WWW-Authenticate.
- `StaticTokens`: for a small team without one: `principal=token` pairs (a token may be given as
  `sha256:HEX`), compared in constant time by digest. Tokens are never logged or echoed.

Either way the token's principal (a JWT's `sub`, a static token's name) owns the edits made with it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
from mcp.server.auth.provider import AccessToken

if TYPE_CHECKING:
    import jwt  # PyJWT (and cryptography under it) load with the first JWT verifier: stdio never needs them

from aleph_mcp.models import LOCAL_OWNER

logger = logging.getLogger(__name__)

# Asymmetric only: an HS* token "signed" with a public key, or `none`, is never accepted.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
JWKS_REFRESH_EVERY = 60.0  # an unknown `kid` refetches the JWKS at most this often
LEEWAY = 30  # seconds of clock skew tolerated on exp/nbf/iat


class StaticTokens:
    """Static bearer tokens, each naming its principal; kept only as SHA-256 digests."""

    def __init__(self, digests: Mapping[str, bytes]) -> None:
        self._digests = dict(digests)

    @classmethod
    def parse(cls, text: str) -> StaticTokens:
        """`principal=token` entries separated by commas or newlines; `#` starts a comment line."""
        digests: dict[str, bytes] = {}
        for raw in text.replace(",", "\n").splitlines():
            entry = raw.strip()
            if not entry or entry.startswith("#"):
                continue
            principal, sep, token = (part.strip() for part in entry.partition("="))
            if not sep or not principal or not token:
                raise ValueError("each HTTP token entry must be principal=token (or principal=sha256:HEX)")
            digests[principal] = _digest_of(token)
        if not digests:
            raise ValueError("no HTTP tokens given")
        return cls(digests)

    @classmethod
    def from_file(cls, path: Path) -> StaticTokens:
        return cls.parse(path.read_text(encoding="utf-8"))

    async def verify_token(self, token: str) -> AccessToken | None:
        presented = hashlib.sha256(token.encode()).digest()
        found = None
        for principal, digest in self._digests.items():  # every entry compared: no early exit to time
            if hmac.compare_digest(presented, digest):
                found = principal
        if found is None:
            return None
        # The token itself is not kept: nothing downstream needs it, and a copy could leak.
        return AccessToken(token=f"static:{found}", client_id=found, scopes=[], subject=found)


def _digest_of(token: str) -> bytes:
    if token.lower().startswith("sha256:"):
        try:
            digest = bytes.fromhex(token[7:])
        except ValueError:
            raise ValueError("a sha256: token must be 64 hex digits") from None
        if len(digest) != 32:
            raise ValueError("a sha256: token must be 64 hex digits")
        return digest
    return hashlib.sha256(token.encode()).digest()


class JwtVerifier:
    """Bearer JWTs from `issuer`, signed by a key in `jwks_url`, for `audience`."""

    def __init__(self, *, jwks_url: str, issuer: str, audience: str, http: httpx2.AsyncClient) -> None:
        import jwt as pyjwt  # see the TYPE_CHECKING import

        self.jwt = pyjwt
        self.jwks_url, self.issuer, self.audience, self.http = jwks_url, issuer, audience, http
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -JWKS_REFRESH_EVERY

    async def verify_token(self, token: str) -> AccessToken | None:
        jwt = self.jwt
        try:
            header = jwt.get_unverified_header(token)
            key = await self._key(str(header.get("kid", "")))
            if key is None:
                return None
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            logger.info("bearer jwt refused reason=%s", type(exc).__name__)
            return None
        return _access_token(claims)

    async def _key(self, kid: str) -> jwt.PyJWK | None:
        if kid not in self._keys and time.monotonic() - self._fetched_at >= JWKS_REFRESH_EVERY:
            await self._fetch()
        return self._keys.get(kid)

    async def _fetch(self) -> None:
        jwt = self.jwt
        self._fetched_at = time.monotonic()
        try:
            response = await self.http.get(self.jwks_url)
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json()).keys
        except (httpx2.HTTPError, ValueError, jwt.PyJWTError) as exc:
            logger.warning("jwks fetch failed url=%s reason=%s", self.jwks_url, type(exc).__name__)
            return
        self._keys = {str(k.key_id): k for k in keys if k.key_id}


def _access_token(claims: Mapping[str, Any]) -> AccessToken:
    scope = claims.get("scope", claims.get("scp", ""))
    scopes = scope.split() if isinstance(scope, str) else [str(s) for s in scope]
    audience = claims["aud"]
    subject = str(claims["sub"])
    return AccessToken(
        token="jwt",  # not kept, as for static tokens
        client_id=str(claims.get("azp") or claims.get("client_id") or subject),
        scopes=scopes,
        expires_at=int(claims["exp"]),
        resource=audience if isinstance(audience, str) else None,
        subject=subject,
        claims={"iss": claims["iss"]},
    )


def owner_of(token: AccessToken | None) -> str:
    """Who owns what a request creates: `oauth:<sub>` or `token:<principal>`, or `local` without sign-in
    (stdio). The prefix keeps a principal named "local", or the same name from both kinds, apart."""
    if token is None:
        return LOCAL_OWNER
    kind = "oauth" if token.claims and "iss" in token.claims else "token"
    return f"{kind}:{token.subject or token.client_id}"
