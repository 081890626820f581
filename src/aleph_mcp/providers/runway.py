"""Runway's own API (api.dev.runwayml.com): `aleph2` and the legacy `gen4_aleph` on /v1/video_to_video."""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx2

from aleph_mcp import errors
from aleph_mcp.models import ASPECT_RATIOS, AspectRatio, EditRequest, RemoteStatus
from aleph_mcp.providers._http import ProviderHTTP
from aleph_mcp.providers.base import Capabilities, PreparedCreate, ProgressCallback, StatusTable
from aleph_mcp.redact import scrub

MB = 1024 * 1024
API_VERSION = "2024-11-06"  # required on every call; Runway refuses requests without it
UPLOAD_MAX_BYTES = 200 * MB
CREATE_PATH = "/v1/video_to_video"

STATUS = StatusTable(
    "runway",
    {
        "PENDING": "queued",
        "THROTTLED": "queued",  # stored but waiting for a concurrency slot; starts on its own
        "RUNNING": "running",
        "SUCCEEDED": "succeeded",
        "FAILED": "failed",
        "CANCELLED": "cancelled",
    },
)

# gen4_aleph's (deprecated, since ignored) `ratio` takes pixel sizes; aleph2's targetAspectRatio takes ours.
GEN4_RATIOS: dict[AspectRatio, str] = {
    "16:9": "1280:720",
    "9:16": "720:1280",
    "4:3": "1104:832",
    "3:4": "832:1104",
    "1:1": "960:960",
    "21:9": "1584:672",
}
MAX_PROMPT_UNITS = 1000  # Runway counts UTF-16 code units, not characters

CAPABILITIES = Capabilities(
    models=("aleph2", "gen4_aleph"),  # gen4_aleph is legacy and may answer 403 once retired
    aspect_ratios=frozenset(ASPECT_RATIOS),
    max_prompt_chars=MAX_PROMPT_UNITS,
    seed=True,
    watermark=False,
    reference_image=True,  # gen4_aleph only (`references`); submit refuses it for aleph2
    can_cancel=True,
    can_upload=True,
    data_uri_max_bytes=16 * MB,
    max_input_bytes=32 * MB,  # by URL; files sent through upload() may be up to 200 MB
    typical_render="1-10 minutes",  # Runway states no processing time
)


class RunwayProvider:
    """Adapter for Runway's API: one create, one status read, a guarded cancel, ephemeral uploads."""

    name = "runway"
    capabilities = CAPABILITIES

    def __init__(
        self,
        client: httpx2.AsyncClient,
        *,
        api_key: str,
        base_url: str,
        timeout: float = 30.0,
        **extra: Any,
    ) -> None:
        self._secrets = (api_key,)
        self._http = ProviderHTTP(
            client,
            provider=self.name,
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}", "X-Runway-Version": API_VERSION},
            secrets=self._secrets,
            timeout=timeout,
        )
        # The upload URL is a presigned storage URL on another host: it must not see our key.
        self._bucket = ProviderHTTP(
            client, provider=self.name, base_url="", headers={}, secrets=self._secrets, timeout=timeout
        )

    # -- submit -------------------------------------------------------------------------------------
    def describe_create(self, request: EditRequest) -> PreparedCreate:
        return self._http.prepare("POST", CREATE_PATH, create_body(request))

    async def submit(self, request: EditRequest) -> str:
        create = self.describe_create(request)
        try:
            data = await self._http.send(create)
        except errors.FatalProviderError as exc:
            raise _clearer_refusal(exc, request.model) from None
        task_id = data.get("id") if isinstance(data, Mapping) else None
        if not isinstance(task_id, str) or not task_id:
            raise self._http.malformed("a create answer without a task id")
        return task_id

    # -- poll ---------------------------------------------------------------------------------------
    async def poll(self, task_id: str) -> RemoteStatus:
        task = await self._read(task_id)
        word = str(task["status"])
        status = STATUS(word)
        if status == "succeeded":
            output = _first_url(task.get("output"))
            if output is None:
                raise self._http.malformed("a finished task without an output URL")
            # `previewUrls` is undocumented (seen in Runway's own MCP server); absent is fine.
            thumbnail = _first_url(task.get("previewUrls"))
            return RemoteStatus("succeeded", 1.0, output, thumbnail, vendor_status=word)
        if status == "failed":
            reason = task.get("failure")
            code = task.get("failureCode")
            return RemoteStatus(
                "failed",
                # Vendor text like every other field that reaches a record: scrubbed, short.
                error_code=scrub(str(code), self._secrets)[:80] if code else "provider_failed",
                error_message=scrub(str(reason), self._secrets) if reason else "Runway gave no reason.",
                vendor_status=word,
            )
        return RemoteStatus(status, progress=_progress(task.get("progress")), vendor_status=word)

    async def _read(self, task_id: str) -> Mapping[str, Any]:
        task = await self._http.request("GET", f"/v1/tasks/{quote(task_id, safe='')}")
        if not isinstance(task, Mapping) or not isinstance(task.get("status"), str):
            raise self._http.malformed("a task without a status")
        return task

    # -- cancel -------------------------------------------------------------------------------------
    async def cancel(self, task_id: str) -> None:
        # DELETE on a finished task deletes its output, so look first and only cancel live tasks.
        # (A task finishing between the two calls is a race Runway's API leaves open.)
        word = str((await self._read(task_id))["status"])
        if word.lower() not in STATUS.words or STATUS(word) not in ("queued", "running"):
            raise errors.CannotCancel(
                f"The Runway task has already finished ({word}); there is nothing to cancel. "
                "Runway's cancel call would delete a finished task's output, so it was not sent."
            )
        await self._http.request("DELETE", f"/v1/tasks/{quote(task_id, safe='')}", allow_empty=True)

    # -- upload -------------------------------------------------------------------------------------
    async def upload(self, path: Path, *, on_progress: ProgressCallback | None = None) -> str:
        size = _file_size(path)
        slot = await self._http.request(
            "POST", "/v1/uploads", json_body={"filename": path.name, "type": "ephemeral"}
        )
        upload_url, fields, runway_uri = self._parse_slot(slot)
        if on_progress is not None:
            await on_progress(0, size)
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        with path.open("rb") as stream:  # httpx2 reads it in chunks while sending
            await self._post_to_bucket(upload_url, fields, (path.name, stream, mime))
        if on_progress is not None:
            await on_progress(size, size)
        return runway_uri

    def _parse_slot(self, slot: Any) -> tuple[str, dict[str, str], str]:
        if not isinstance(slot, Mapping):
            raise self._http.malformed("an upload answer that is not an object")
        url, fields, uri = slot.get("uploadUrl"), slot.get("fields"), slot.get("runwayUri")
        if not isinstance(url, str) or not isinstance(uri, str) or not url or not uri:
            raise self._http.malformed("an upload answer without uploadUrl or runwayUri")
        if fields is not None and not isinstance(fields, Mapping):
            raise self._http.malformed("an upload answer whose fields are not an object")
        return url, {str(k): str(v) for k, v in (fields or {}).items()}, uri

    async def _post_to_bucket(
        self, url: str, fields: dict[str, str], file: tuple[str, IO[bytes], str]
    ) -> None:
        # Split the URL so ProviderHTTP's rstrip("/") cannot alter a signed path.
        parsed = httpx2.URL(url)
        origin, path = f"{parsed.scheme}://{parsed.netloc.decode()}", parsed.raw_path.decode()
        # httpx2 writes `data` fields before `files`, the order presigned POST policies require.
        try:
            await self._bucket.request(
                "POST", path, base_url=origin, data=fields, files={"file": file}, allow_empty=True
            )
        except errors.TransientProviderError as exc:
            # Storage answers 2xx with an empty or XML body, never JSON: any 2xx means stored.
            if exc.code != "malformed_response":
                raise


def create_body(request: EditRequest) -> dict[str, Any]:
    """The /v1/video_to_video body for one edit; refuses what Runway cannot take before sending."""
    _check_request(request)
    body: dict[str, Any] = {"model": request.model, "videoUri": request.video, "promptText": request.prompt}
    if request.seed is not None:
        body["seed"] = request.seed
    if request.model == "aleph2":
        if request.aspect_ratio is not None:
            body["targetAspectRatio"] = request.aspect_ratio
        return body
    if request.aspect_ratio is not None:
        body["ratio"] = GEN4_RATIOS[request.aspect_ratio]
    if request.reference_image is not None:
        body["references"] = [{"type": "image", "uri": request.reference_image}]
    return body


def _check_request(request: EditRequest) -> None:
    if request.model not in CAPABILITIES.models:
        raise errors.InvalidInput(f"Runway has no model {request.model!r}; use aleph2 or gen4_aleph.")
    if request.reference_image is not None and request.model != "gen4_aleph":
        raise errors.InvalidInput(
            "Runway takes a reference image only with model gen4_aleph; "
            "drop reference_image or pass model='gen4_aleph'."
        )
    if request.watermark:
        raise errors.InvalidInput("Runway adds no watermark; drop the watermark argument.")
    if len(request.prompt.encode("utf-16-le")) // 2 > MAX_PROMPT_UNITS:
        raise errors.InvalidInput(
            f"The prompt is too long for Runway (at most {MAX_PROMPT_UNITS} UTF-16 units; "
            "emoji count twice). Shorten it."
        )


def _clearer_refusal(exc: errors.FatalProviderError, model: str) -> errors.FatalProviderError:
    """Runway answers 403 'Model variant X is not available' for retired or unlicensed models."""
    if exc.status_code != 403 or "not available" not in exc.message.lower():
        return exc
    advice = "Use model aleph2 instead." if model != "aleph2" else "Check the account on dev.runwayml.com."
    return errors.FatalProviderError(
        f"{exc.message}. The Runway account cannot use model {model}. {advice}",
        code="model_unavailable",
        status_code=403,
        not_created=True,
    )


def _first_url(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, list) and value and isinstance(value[0], str) and value[0]:
        return value[0]
    return None


def _progress(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return min(1.0, max(0.0, float(value)))


def _file_size(path: Path) -> int:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise errors.InvalidInput(f"Cannot read {path.name}: {exc.strerror}.") from None
    if size > UPLOAD_MAX_BYTES:
        raise errors.InvalidInput(
            f"{path.name} is {size // MB} MB; Runway uploads take at most {UPLOAD_MAX_BYTES // MB} MB. "
            "Trim or compress the video first."
        )
    return size
