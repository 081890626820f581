"""Runway's own API (api.dev.runwayml.com): `aleph2` and the legacy `gen4_aleph` on /v1/video_to_video."""

from __future__ import annotations

import math
import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx2

from aleph_mcp import errors
from aleph_mcp.models import ASPECT_RATIOS, EditRequest, RemoteStatus
from aleph_mcp.providers._http import ProviderHTTP
from aleph_mcp.providers.base import Capabilities, ModelFacts, ProgressCallback, StatusTable
from aleph_mcp.providers.hosted import HostedAdapter, file_size, runway_options, text_id
from aleph_mcp.redact import scrub

MB = 1024 * 1024
API_VERSION = "2024-11-06"  # required on every call; Runway refuses requests without it
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

CAPABILITIES = Capabilities(
    models=("aleph2", "gen4_aleph"),  # gen4_aleph is legacy and may answer 403 once retired
    aspect_ratios=frozenset(ASPECT_RATIOS),
    max_prompt_chars=1000,  # Runway counts UTF-16 code units, as edits.validation.prompt_length does
    seed=True,
    watermark=False,
    reference_image=True,  # gen4_aleph only (`references`); MODEL_FACTS say so for aleph2
    can_cancel=True,
    can_upload=True,
    data_uri_max_bytes=5 * MB,  # aleph2, runwayml 5.24; older SDK docstrings said 16 MB
    url_max_bytes=32 * MB,
    upload_max_bytes=200 * MB,
    typical_render="1-10 minutes",  # Runway states no processing time
    ratio_ignored_by=frozenset({"gen4_aleph"}),  # `ratio` is deprecated: the output follows the input
)
MODEL_FACTS = {
    "aleph2": ModelFacts(
        "The whole input is edited: 2-30 s, up to 30 fps (third-party figures); output as long as input.",
        30,
        quote_unknown_length=False,
        reference_image=False,
        min_seconds=2,
    ),
    "gen4_aleph": ModelFacts("Only the first 5 s of the input are processed (resellers, kie).", 5),
}


class RunwayProvider(HostedAdapter):
    """Adapter for Runway's API: one create, one status read, a guarded cancel, ephemeral uploads."""

    name = "runway"
    capabilities = CAPABILITIES
    create_path = CREATE_PATH

    def __init__(
        self, client: httpx2.AsyncClient, *, api_key: str, base_url: str, timeout: float = 30.0
    ) -> None:
        super().__init__(client, api_key=api_key, base_url=base_url, timeout=timeout)
        # The upload URL is a presigned storage URL on another host: it must not see our key.
        self._bucket = ProviderHTTP(
            client, provider=self.name, base_url="", headers={}, secrets=(api_key,), timeout=timeout
        )

    def headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}", "X-Runway-Version": API_VERSION}

    # -- submit -------------------------------------------------------------------------------------
    def create_body(self, request: EditRequest) -> dict[str, Any]:
        """The /v1/video_to_video body for one edit."""
        body: dict[str, Any] = {"model": request.model, "videoUri": request.video}
        body["promptText"] = request.prompt
        if request.model != "aleph2":  # gen4_aleph: pixel `ratio` (deprecated, since ignored), references
            return body | runway_options(request, ratio="ratio", reference="uri")
        if request.seed is not None:
            body["seed"] = request.seed
        if request.aspect_ratio is not None:  # aleph2 takes our ratios as they are, and no references
            body["targetAspectRatio"] = request.aspect_ratio
        return body

    def task_id(self, answer: Any) -> str | None:
        return text_id(answer.get("id")) if isinstance(answer, Mapping) else None

    def explain_refusal(
        self, exc: errors.FatalProviderError, request: EditRequest | None
    ) -> errors.FatalProviderError:
        """Runway answers 403 'Model variant X is not available' for retired or unlicensed models."""
        if request is None or exc.status_code != 403 or "not available" not in exc.message.lower():
            return exc
        model = request.model
        advice = "Use model aleph2 instead."
        if model == "aleph2":
            advice = "Check the account on dev.runwayml.com."
        return errors.FatalProviderError(
            f"{exc.message}. The Runway account cannot use model {model}. {advice}",
            code="model_unavailable",
            status_code=403,
            not_created=True,
        )

    # -- poll ---------------------------------------------------------------------------------------
    async def poll(self, task_id: str) -> RemoteStatus:
        task = await self._read(task_id)
        word = str(task["status"])
        status = STATUS(word)
        credits, final = _cost(task)
        cost: dict[str, Any] = {"cost_credits": credits, "cost_final": final}
        if status == "succeeded":
            output = _first_url(task.get("output"))
            if output is None:
                raise self.http.malformed("a finished task without an output URL")
            # `previewUrls` is undocumented (seen in Runway's own MCP server); absent is fine.
            thumbnail = _first_url(task.get("previewUrls"))
            return RemoteStatus("succeeded", 1.0, output, thumbnail, **cost)
        if status == "failed":
            reason = task.get("failure")
            code = task.get("failureCode")
            return RemoteStatus(
                "failed",
                error_code=str(code) if code else "provider_failed",
                error_message=scrub(str(reason), self.http.secrets) if reason else "Runway gave no reason.",
                **cost,
            )
        return RemoteStatus(status, progress=_progress(task.get("progress")), **cost)

    async def _read(self, task_id: str) -> Mapping[str, Any]:
        task = await self.http.request("GET", f"/v1/tasks/{quote(task_id, safe='')}")
        if not isinstance(task, Mapping) or not isinstance(task.get("status"), str):
            raise self.http.malformed("a task without a status")
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
        await self.http.request("DELETE", f"/v1/tasks/{quote(task_id, safe='')}", allow_empty=True)

    # -- upload -------------------------------------------------------------------------------------
    async def upload(self, path: Path, *, on_progress: ProgressCallback | None = None) -> str:
        size = file_size(path)
        slot = await self.http.request(
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
            raise self.http.malformed("an upload answer that is not an object")
        url, fields, uri = slot.get("uploadUrl"), slot.get("fields"), slot.get("runwayUri")
        if not isinstance(url, str) or not isinstance(uri, str) or not url or not uri:
            raise self.http.malformed("an upload answer without uploadUrl or runwayUri")
        if fields is not None and not isinstance(fields, Mapping):
            raise self.http.malformed("an upload answer whose fields are not an object")
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


def _first_url(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, list) and value and isinstance(value[0], str) and value[0]:
        return value[0]
    return None


def _cost(task: Mapping[str, Any]) -> tuple[float | None, bool]:
    """Runway's own cost in credits, and whether it is final: `cost.credits` once the task ended (0 when
    refunded), else `estimatedCost.credits` while it runs. Numbers only: anything else is ignored."""
    final = _credits(task.get("cost"))
    if final is not None:
        return final, True
    return _credits(task.get("estimatedCost")), False


def _credits(value: Any) -> float | None:
    """A credit count from `{"credits": n}` (or a bare n): finite, not negative, not a bool; else None."""
    if isinstance(value, Mapping):
        value = value.get("credits")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # JSON integers have no size limit
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _progress(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return min(1.0, max(0.0, float(value)))
