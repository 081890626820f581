"""Provider webhooks (kie `callBackUrl`, crun `callback_url`, Krea `X-Webhook-URL`), trusted for nothing.

A create carries `{ALEPH_MCP_PUBLIC_URL}/webhooks/{provider}/{secret}`, a random secret per edit stored only
as a hash. A call there never sets a result: it makes the poller check that edit now, through the
provider's own API, so a forged or replayed webhook can neither fake a success nor a failure. Unknown
secrets get 404; kie's HMAC signature is verified when its key is configured; duplicates and late calls
are harmless and answered at once with 200, as the providers expect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any

from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aleph_mcp.config import Settings
from aleph_mcp.edits.requests import token_hash
from aleph_mcp.models import Edit
from aleph_mcp.server.state import Health, ServerState

logger = logging.getLogger(__name__)
MAX_BODY = 256 * 1024  # a job object is a few KB; nothing larger is read
MAX_SKEW = 300.0  # seconds a signed kie timestamp may be off: older ones are replays


def add_webhook_route(server: MCPServer[ServerState], health: Health, settings: Settings) -> None:
    async def webhook(request: Request) -> Response:
        state = health.state
        if state is None:
            return JSONResponse({"error": "starting"}, status_code=503)
        provider, secret = request.path_params["provider"], request.path_params["token"]
        edit = await state.store.find_by_webhook(token_hash(secret))
        if edit is None or edit.provider != provider:
            return JSONResponse({"error": "unknown webhook"}, status_code=404)
        body = await _body(request)
        if provider == "kie" and settings.kie_webhook_hmac_key is not None:
            key = settings.kie_webhook_hmac_key.get_secret_value()
            if not kie_signature_ok(request.headers, body, edit, key, time.time()):
                logger.warning("webhook refused edit_id=%s reason=bad_signature", edit.edit_id)
                return JSONResponse({"error": "bad signature"}, status_code=401)
        if not edit.is_terminal:
            await state.store.poll_soon(edit.edit_id, time.time())
            state.poller.poke(edit.edit_id)
        logger.info("webhook edit_id=%s provider=%s", edit.edit_id, provider)
        return JSONResponse({"ok": True})

    server.custom_route("/webhooks/{provider}/{token}", methods=["POST"])(webhook)


async def _body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            break
    return body[:MAX_BODY]


def kie_signature_ok(headers: Any, body: bytes, edit: Edit, key: str, now: float) -> bool:
    """kie signs `taskId + "." + X-Webhook-Timestamp` with HMAC-SHA256 (base64 in X-Webhook-Signature).
    The task id must be this edit's, and the timestamp recent."""
    stamp, signature = headers.get("x-webhook-timestamp", ""), headers.get("x-webhook-signature", "")
    task_id = _kie_task_id(body)
    try:
        fresh = abs(now - float(stamp)) <= MAX_SKEW
    except ValueError:
        return False
    if not (fresh and signature and task_id and task_id == edit.provider_task_id):
        return False
    expected = base64.b64encode(
        hmac.new(key.encode(), f"{task_id}.{stamp}".encode(), hashlib.sha256).digest()
    )
    return hmac.compare_digest(expected, signature.encode())


def _kie_task_id(body: bytes) -> str | None:
    """kie's two documented callback shapes: `taskId` at the top, or `data.task_id` / `data.taskId`."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    data = payload.get("data")
    data = data if isinstance(data, dict) else {}
    for value in (payload.get("taskId"), data.get("task_id"), data.get("taskId")):
        if isinstance(value, str) and value:
            return value
    return None
