"""`aleph-mcp serve --http`: the SDK's Streamable HTTP app under uvicorn, signed in, bounded, health-checked.

- Sign-in (auth.py): OAuth bearer JWTs or static tokens. Without either, only a loopback bind is allowed,
  with a warning at start.
- Host/Origin are validated against DNS rebinding: automatically on loopback, from
  ALEPH_MCP_HTTP_ALLOWED_HOSTS / _ORIGINS beyond it (a public bind without them is refused).
- Request bodies are capped (ALEPH_MCP_HTTP_MAX_BODY_BYTES).
- `GET /healthz` answers 200 only while the store answers and the poller's loop is alive.
- SIGTERM: uvicorn stops taking requests and lets in-flight ones finish; every edit stays in the store,
  and another start (or replica) picks it up when its lease lapses.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import threading
import time

import anyio
import uvicorn
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aleph_mcp.app import http_client
from aleph_mcp.config import Settings
from aleph_mcp.errors import InvalidInput
from aleph_mcp.server.auth import JwtVerifier, StaticTokens
from aleph_mcp.server.state import Health, ServerState, SignIn
from aleph_mcp.server.webhooks import add_webhook_route
from aleph_mcp.server.wiring import create_server

logger = logging.getLogger(__name__)
MCP_PATH = "/mcp"
SHUTDOWN_GRACE = 10.0  # seconds in-flight requests get after SIGTERM
STALE_POLLER = 30.0  # a poller loop silent this long counts as dead


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def sign_in(settings: Settings, resource_url: str) -> SignIn | None:
    """The configured sign-in, or None when none is configured (InvalidInput when half-configured)."""
    oauth = settings.oauth_issuer or settings.oauth_jwks_url or settings.oauth_audience
    static = settings.http_tokens is not None or settings.http_tokens_file is not None
    if oauth and static:
        raise InvalidInput(
            "Configure OAuth (ALEPH_MCP_OAUTH_*) or static tokens (ALEPH_MCP_HTTP_TOKENS), not both."
        )
    if oauth:
        if not (settings.oauth_issuer and settings.oauth_jwks_url and settings.oauth_audience):
            raise InvalidInput(
                "OAuth needs ALEPH_MCP_OAUTH_ISSUER, ALEPH_MCP_OAUTH_JWKS_URL and ..._AUDIENCE."
            )
        verifier: TokenVerifier = JwtVerifier(
            jwks_url=settings.oauth_jwks_url,
            issuer=settings.oauth_issuer,
            audience=settings.oauth_audience,
            http=http_client(settings),
        )
        issuer = settings.oauth_issuer
    elif static:
        verifier = _static_tokens(settings)
        issuer = resource_url  # no identity provider: the metadata names this server
    else:
        return None
    return SignIn(
        verifier,
        AuthSettings(
            issuer_url=issuer,
            resource_server_url=resource_url,
            required_scopes=settings.required_scopes or None,
            validate_token_resource=False,  # the verifier checks the audience itself
        ),
    )


def _static_tokens(settings: Settings) -> StaticTokens:
    try:
        if settings.http_tokens_file is not None:
            return StaticTokens.from_file(settings.http_tokens_file)
        assert settings.http_tokens is not None
        return StaticTokens.parse(settings.http_tokens.get_secret_value())
    except (OSError, ValueError) as exc:  # the message names the format, never a token
        raise InvalidInput(f"HTTP tokens: {exc}") from None


def transport_security(settings: Settings, host: str) -> TransportSecuritySettings | None:
    """Host/Origin checks: the SDK's loopback defaults (None), or the operator's lists beyond loopback."""
    if is_loopback(host):
        return None
    hosts = [h.strip() for h in settings.http_allowed_hosts.split(",") if h.strip()]
    if not hosts:
        raise InvalidInput(
            f"Serving on {host} needs ALEPH_MCP_HTTP_ALLOWED_HOSTS (the Host values clients use, e.g. "
            "mcp.example.com or mcp.example.com:443), so DNS-rebinding protection stays on."
        )
    origins = [o.strip() for o in settings.http_allowed_origins.split(",") if o.strip()]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def add_health_route(server: MCPServer[ServerState], health: Health) -> None:
    async def healthz(request: Request) -> Response:
        state = health.state
        problem = "starting or stopping" if state is None else await _problem(state)
        if problem:
            return JSONResponse({"status": "unhealthy", "problem": problem}, status_code=503)
        return JSONResponse({"status": "ok"})

    server.custom_route("/healthz", methods=["GET"])(healthz)


async def _problem(state: ServerState) -> str | None:
    try:
        with anyio.fail_after(5):
            await state.store.get("ed_healthcheck")
    except Exception as exc:  # any failure of the store is the answer, whatever its type
        return f"store: {type(exc).__name__}"
    last = state.poller.last_pass
    if last is None or anyio.current_time() - last > STALE_POLLER:
        return "poller not running"
    return None


def build_http_app(settings: Settings, host: str, port: int) -> object:
    """The ASGI app `serve_http` runs (tests run it under their own uvicorn)."""
    resource_url = (settings.public_url or f"http://{host}:{port}").rstrip("/") + MCP_PATH
    security = transport_security(settings, host)
    signing_in = sign_in(settings, resource_url)
    if signing_in is None:
        if not is_loopback(host):
            raise InvalidInput(
                f"Refusing to serve {host} without sign-in: set ALEPH_MCP_HTTP_TOKENS or ALEPH_MCP_OAUTH_*."
            )
        logger.warning(
            "http serving without sign-in host=%s port=%d: anyone on this machine can call", host, port
        )
    health = Health()
    server = create_server(settings, sign_in=signing_in, health=health)
    add_health_route(server, health)
    add_webhook_route(server, health, settings)
    return server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        host=host,
        transport_security=security,
        max_request_body_size=settings.http_max_body_bytes,
    )


def _stopped(signum: int, frame: object) -> None:
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal to the handler it found: this one,
    # so a requested stop ends the process with status 0 instead of "killed by signal".
    raise SystemExit(0)


async def serve_http(settings: Settings, host: str, port: int) -> None:
    app = build_http_app(settings, host, port)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stopped)
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(SHUTDOWN_GRACE),
        server_header=False,
    )
    started = time.monotonic()
    await uvicorn.Server(config).serve()
    logger.info("http server stopped after=%.0fs", time.monotonic() - started)
