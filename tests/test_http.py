"""Streamable HTTP under uvicorn: sign-in (static tokens, OAuth JWTs), Host checks, body limit, health."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import warnings
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jwt
import mcp.types as types
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import RSAAlgorithm
from mcp.shared.exceptions import MCPDeprecationWarning

from aleph_mcp.errors import InvalidInput
from aleph_mcp.server.http import build_http_app

from .conftest import make_settings
from .http_server import http_client, served_http, served_json

ISSUER = "https://id.example.com"
AUDIENCE = "https://aleph.example.com/mcp"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def oauth_settings(tmp_path: Path, jwks_url: str) -> Any:
    return make_settings(
        tmp_path, oauth_issuer=ISSUER, oauth_jwks_url=jwks_url, oauth_audience=AUDIENCE, oauth_scopes="aleph"
    )


def signer() -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(RSAAlgorithm.to_jwk(key.public_key())) | {"kid": "k1", "alg": "RS256", "use": "sig"}
    return key, {"keys": [public]}


def token(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now + 300, "iat": now, "scope": "aleph"}
    return jwt.encode(body | claims, key, algorithm="RS256", headers={"kid": "k1"})


def hs256_with_public_key(key: rsa.RSAPrivateKey, claims: dict[str, Any]) -> str:
    """The key-confusion attack: an HS256 token whose HMAC secret is the issuer's public key (PEM)."""
    secret = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing = (
        f"{part(json.dumps({'alg': 'HS256', 'kid': 'k1'}).encode())}.{part(json.dumps(claims).encode())}"
    )
    return f"{signing}.{part(hmac.new(secret, signing.encode(), hashlib.sha256).digest())}"


async def post_initialize(base: str, headers: dict[str, str] | None = None) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=10) as http:
        return await http.post(f"{base}/mcp", json=INITIALIZE, headers=MCP_HEADERS | (headers or {}))


async def test_without_a_valid_static_token_the_answer_is_401_and_nothing_else(tmp_path: Path) -> None:
    """No token or a wrong one: 401 with the spec's WWW-Authenticate, and no tool names or edit ids."""
    settings = make_settings(tmp_path, http_tokens="designer=s3cret-one,pipeline=s3cret-two")
    async with served_http(settings) as base:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "Basic s3cret-one"}):
            answer = await post_initialize(base, headers)
            assert answer.status_code == 401, headers
            challenge = answer.headers["www-authenticate"]
            assert challenge.startswith("Bearer") and "resource_metadata=" in challenge
            assert "edit_video" not in answer.text and "ed_" not in answer.text
        assert (await post_initialize(base, {"authorization": "Bearer s3cret-two"})).status_code == 200


async def test_a_static_token_signs_in_and_its_sha256_form_works_too(tmp_path: Path) -> None:
    """A plain token and a token given as sha256:HEX both reach the tools; neither appears in the log."""
    digest = hashlib.sha256(b"hashed-token").hexdigest()
    settings = make_settings(tmp_path, http_tokens=f"designer=plain-token,pipeline=sha256:{digest}")
    async with served_http(settings) as base:
        for secret in ("plain-token", "hashed-token"):
            async with http_client(base, secret) as client:
                names = {t.name for t in (await client.list_tools()).tools}
            assert "edit_video" in names


async def test_the_protected_resource_metadata_names_the_resource_and_its_issuer(tmp_path: Path) -> None:
    """/.well-known/oauth-protected-resource/mcp is served without a token, for the configured issuer."""
    _key, jwks = signer()
    with served_json(jwks) as jwks_url:
        settings = oauth_settings(tmp_path, jwks_url)
        async with served_http(settings) as base, httpx2.AsyncClient() as http:
            answer = await http.get(f"{base}/.well-known/oauth-protected-resource/mcp")
    assert answer.status_code == 200
    document = answer.json()
    assert document["resource"].endswith("/mcp") and document["authorization_servers"] == [ISSUER]
    assert document["scopes_supported"] == ["aleph"]


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({}, 200),
        ({"exp": int(time.time()) - 3600}, 401),
        ({"aud": "https://other.example.com/mcp"}, 401),
        ({"iss": "https://evil.example.com"}, 401),
        ({"scope": "read"}, 403),
    ],
    ids=["valid", "expired", "wrong-audience", "wrong-issuer", "wrong-scope"],
)
async def test_oauth_jwts_are_checked_for_signature_audience_expiry_and_scope(
    tmp_path: Path, claims: dict[str, Any], status: int
) -> None:
    """Only a JWT signed by the issuer's key, for this audience, unexpired and with the scope gets in."""
    key, jwks = signer()
    with served_json(jwks) as jwks_url:
        settings = oauth_settings(tmp_path, jwks_url)
        async with served_http(settings) as base:
            answer = await post_initialize(base, {"authorization": f"Bearer {token(key, **claims)}"})
    assert answer.status_code == status


async def test_a_jwt_signed_by_another_key_or_unsigned_is_refused(tmp_path: Path) -> None:
    """A forged signature, an `alg: none` token and an HS256 token keyed with the public JWK all get 401."""
    key, jwks = signer()
    other, _ = signer()
    unsigned = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": 2**31}, "", algorithm="none")
    hs = hs256_with_public_key(key, {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": 2**31})
    with served_json(jwks) as jwks_url:
        settings = make_settings(
            tmp_path, oauth_issuer=ISSUER, oauth_jwks_url=jwks_url, oauth_audience=AUDIENCE
        )
        async with served_http(settings) as base:
            for forged in (token(other), unsigned, hs):
                assert (await post_initialize(base, {"authorization": f"Bearer {forged}"})).status_code == 401


async def test_a_foreign_host_header_and_an_oversized_body_are_refused(tmp_path: Path) -> None:
    """DNS-rebinding protection on loopback (421) and the body cap (413) hold before any MCP work."""
    settings = make_settings(tmp_path, http_tokens="me=tok", http_max_body_bytes=64 * 1024)
    async with served_http(settings) as base, httpx2.AsyncClient() as http:
        auth = {"authorization": "Bearer tok"}
        foreign = await http.post(
            f"{base}/mcp", json=INITIALIZE, headers=MCP_HEADERS | auth | {"host": "evil.example"}
        )
        huge = INITIALIZE | {"params": INITIALIZE["params"] | {"pad": "x" * 200_000}}  # type: ignore[operator]
        big = await http.post(f"{base}/mcp", json=huge, headers=MCP_HEADERS | auth)
    assert foreign.status_code == 421
    assert big.status_code == 413


async def test_healthz_answers_200_while_the_store_and_poller_run(tmp_path: Path) -> None:
    """/healthz needs no token and says ok once the lifespan runs."""
    async with (
        served_http(make_settings(tmp_path, http_tokens="me=tok")) as base,
        httpx2.AsyncClient() as http,
    ):
        answer = await http.get(f"{base}/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


def test_a_public_bind_needs_sign_in_and_allowed_hosts(tmp_path: Path) -> None:
    """Beyond loopback: no sign-in, or no allowed Host list, refuses to start, naming the setting."""
    with pytest.raises(InvalidInput, match="ALEPH_MCP_HTTP_ALLOWED_HOSTS"):
        build_http_app(make_settings(tmp_path, http_tokens="me=tok"), "0.0.0.0", 8000)
    with pytest.raises(InvalidInput, match="without sign-in"):
        build_http_app(make_settings(tmp_path, http_allowed_hosts="mcp.example.com"), "0.0.0.0", 8000)
    with pytest.raises(InvalidInput, match="not both"):
        build_http_app(make_settings(tmp_path, http_tokens="me=tok", oauth_issuer=ISSUER), "127.0.0.1", 8000)


def test_a_malformed_token_list_is_refused_without_echoing_it(tmp_path: Path) -> None:
    """A token entry without a principal is a configuration error whose message holds no token."""
    with pytest.raises(InvalidInput) as refused:
        build_http_app(make_settings(tmp_path, http_tokens="just-a-secret-token"), "127.0.0.1", 8000)
    assert "just-a-secret-token" not in refused.value.message


async def test_both_protocol_eras_get_progress_and_notifications_over_http(
    tmp_path: Path, clip: Path
) -> None:
    """Over HTTP, a 2025-era client hears updated and list_changed; a 2026 one listens; both get progress."""
    settings = make_settings(
        tmp_path,
        http_tokens="me=tok",
        http_allowed_dirs=str(clip.parent),
        default_provider="local",
        poll_interval=0.1,
        poll_max_interval=0.2,
    )
    heard: list[Any] = []
    listed = anyio.Event()

    async def on_message(message: Any) -> None:
        heard.append(message)
        if isinstance(message, types.ResourceListChangedNotification):
            listed.set()

    reported: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append(progress)

    async with served_http(settings) as base:
        async with http_client(base, "tok", mode="legacy", message_handler=on_message) as legacy:
            caps = legacy.server_capabilities
            assert caps is not None and caps.resources is not None
            assert caps.resources.subscribe is True and caps.resources.list_changed is True
            call = {"prompt": "black and white", "video": str(clip)}
            started = await legacy.call_tool("edit_video", call, progress_callback=on_progress)
            assert isinstance(started.structured_content, dict)
            uri = f"aleph://edits/{started.structured_content['edit_id']}"
            with warnings.catch_warnings():  # deprecated for 2026-07-28, but 2025-era hosts send it
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await legacy.subscribe_resource(uri)
            with anyio.fail_after(30):
                await listed.wait()
        assert any(
            isinstance(m, types.ResourceUpdatedNotification) and str(m.params.uri) == uri for m in heard
        )
        assert reported, "no progress reached the 2025-era client"
        reported.clear()
        async with http_client(base, "tok") as modern:
            call = {"prompt": "mirrored", "video": str(clip)}
            started = await modern.call_tool("edit_video", call, progress_callback=on_progress)
            record = started.structured_content
            assert isinstance(record, dict)
            uri = f"aleph://edits/{record['edit_id']}"
            async with modern.listen(resource_subscriptions=[uri]) as subscription:
                with anyio.fail_after(30):
                    async for _event in subscription:
                        status = await modern.call_tool("get_edit_status", {"edit_id": record["edit_id"]})
                        assert isinstance(status.structured_content, dict)
                        if status.structured_content["status"] == "succeeded":
                            break
        assert reported, "no progress reached the 2026-07-28 client"
