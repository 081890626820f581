"""crun.ai's `runway/gen-4-aleph`: a generic CreateTask/TaskInfo job API with `{code, message, data}`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aleph_mcp.errors import CannotCancel, InvalidInput
from aleph_mcp.models import EditRequest, RemoteStatus
from aleph_mcp.providers._http import vendor_message
from aleph_mcp.providers.base import Capabilities, ModelFacts, ProgressCallback, StatusTable
from aleph_mcp.providers.hosted import HostedAdapter, text_id
from aleph_mcp.redact import scrub

CREATE_PATH = "/api/v1/client/job/CreateTask"
STATUS_PATH = "/api/v1/client/job/TaskInfo"
VENDOR_PREFIX = "runway/"

CAPABILITIES = Capabilities(
    webhooks=True,  # a callback URL in the create (see create_body / create_headers)
    models=("gen-4-aleph",),
    # crun's page lost its field names; only prompt and video are sent until the rest are confirmed.
    aspect_ratios=frozenset(),
    max_prompt_chars=1000,  # inferred: Runway's own gen4_aleph limit; crun states none
    seed=False,
    watermark=False,
    reference_image=False,  # the page mentions reference images, but the field name is unknown
    can_cancel=False,
    can_upload=False,
    data_uri_max_bytes=None,
    typical_render="2-15 minutes",
)
MODEL_FACTS = {
    "gen-4-aleph": ModelFacts(
        "crun states no limit; Gen-4 Aleph processes only the first 5 s elsewhere (inferred).", 5
    ),
}

# `running` is in crun's docs; the full set comes from 3rd-party clients (providers.md §3, inferred).
STATUS = StatusTable(
    "crun", {"pending": "queued", "running": "running", "success": "succeeded", "failed": "failed"}
)


class CrunProvider(HostedAdapter):
    """Runway Gen-4 Aleph through crun.ai (https://docs.crun.ai/models/runway/gen-4-aleph)."""

    name = "crun"
    capabilities = CAPABILITIES
    create_path = CREATE_PATH
    missing_id = "a create answer without a task_id"

    def headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key, "Accept": "application/json"}

    def create_body(self, request: EditRequest) -> dict[str, Any]:
        """crun's CreateTask body, with `callback_url` when the edit has a webhook."""
        model = request.model if "/" in request.model else VENDOR_PREFIX + request.model
        # The `input` names are inferred from crun's happyhorse video-edit model; the Aleph page lost them.
        body: dict[str, Any] = {
            "model": model,
            "input": {"prompt": request.prompt, "video_url": request.video},
        }
        if request.callback_url:
            body["callback_url"] = request.callback_url
        return body

    def task_id(self, answer: Any) -> str | None:
        data = self._envelope(answer)
        return text_id(data.get("task_id"), numeric=True) if isinstance(data, Mapping) else None

    async def poll(self, task_id: str) -> RemoteStatus:
        body = await self.http.request("GET", STATUS_PATH, params={"task_id": task_id})
        data = self._envelope(body)
        if not isinstance(data, Mapping) or not isinstance(data.get("status"), str):
            raise self.http.malformed("a task answer without a status")
        word: str = data["status"]
        status = STATUS(word)
        if status == "succeeded":
            url = _first_media_url(data.get("result"))
            if url is None:
                raise self.http.malformed("a finished task without an output URL")
            return RemoteStatus(status="succeeded", progress=1.0, output_url=url)
        if status == "failed":
            return self._failed(data, body)
        return RemoteStatus(status=status)

    async def cancel(self, task_id: str) -> None:
        raise CannotCancel("crun has no cancel API; the edit will run to its end and may be billed.")

    async def upload(self, path: Path, *, on_progress: ProgressCallback | None = None) -> str:
        raise InvalidInput(
            "crun has no upload route for local files; use an https URL the provider can fetch, "
            "or choose a provider that accepts uploads (kie, krea, runway)."
        )

    # -- helpers ------------------------------------------------------------------------------------
    def _envelope(self, body: Any) -> Any:
        # crun's envelope says `message` (kie's says `msg`); codes 401..505 become our errors there.
        return self.http.check_envelope(body, message_keys=("message", "msg"))

    def _failed(self, data: Mapping[str, Any], body: Mapping[str, Any]) -> RemoteStatus:
        result = data.get("result")
        result = result if isinstance(result, Mapping) else {}
        error = vendor_message({"error": data.get("error")})
        candidates = (result.get("message"), error, body.get("message"))
        message = next((str(c) for c in candidates if _is_reason(c)), "crun reported the edit failed.")
        code = str(result.get("code") or "").strip()
        return RemoteStatus(
            status="failed",
            error_code=f"crun_{code}" if code and code != "200" else "generation_failed",
            error_message=scrub(message, self.http.secrets),
        )


def _first_media_url(result: Any) -> str | None:
    """`result.media_urls[0]` (3rd-party shape); a bare string is accepted too, defensively."""
    urls = result.get("media_urls") if isinstance(result, Mapping) else None
    if isinstance(urls, str):
        urls = [urls]
    if isinstance(urls, list):
        return next((u for u in urls if isinstance(u, str) and u), None)
    return None


def _is_reason(value: Any) -> bool:
    """A usable failure reason: text that is not the envelope's routine "success"."""
    return isinstance(value, str) and bool(value.strip()) and value.strip().lower() != "success"
