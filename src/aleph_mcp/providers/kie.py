"""kie.ai's Runway Aleph endpoint: `{code, msg, data}` envelopes, a `successFlag` status, file uploads."""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO, Self

import anyio
import httpx2

from aleph_mcp.errors import CannotCancel, RemoteNotFound
from aleph_mcp.models import EditRequest, EditStatus, RemoteStatus
from aleph_mcp.providers.base import Capabilities, ModelFacts, ProgressCallback, ProviderConfig, StatusTable
from aleph_mcp.providers.hosted import HostedAdapter, text_id
from aleph_mcp.redact import scrub

CREATE_PATH = "/api/v1/aleph/generate"
STATUS_PATH = "/api/v1/aleph/record-info"
# The generate page's "next steps" names record-detail; the reference pages say record-info (providers.md §1).
FALLBACK_STATUS_PATH = "/api/v1/aleph/record-detail"
UPLOAD_PATH = "/api/file-stream-upload"
UPLOAD_FOLDER = "aleph-mcp"

CAPABILITIES = Capabilities(
    webhooks=True,  # a callback URL in the create (see create_body / create_headers)
    models=("aleph",),
    aspect_ratios=frozenset({"16:9", "9:16", "4:3", "3:4", "1:1", "21:9"}),
    max_prompt_chars=2048,  # inferred from kie's Runway callback errors; no Aleph limit is documented
    seed=True,
    watermark=True,
    reference_image=True,
    can_cancel=False,
    can_upload=True,
    data_uri_max_bytes=None,
    url_max_bytes=10 * 1024 * 1024,
    upload_max_bytes=10 * 1024 * 1024,  # kie states one input limit, for URLs and uploads alike
    typical_render="2-15 minutes",
)
MODEL_FACTS = {
    "aleph": ModelFacts("Only the first 5 s of the input are processed; output ≤ 5 s (kie docs).", 5),
}

# kie reports an int successFlag: 1 done, 0 "failed or in progress" (the error fields decide, in
# `_status_of`), 2/3 failures in kie's other APIs. Any other flag is treated as failed in code.
STATUS = StatusTable("kie", {"0": "running", "1": "succeeded", "2": "failed", "3": "failed"})


class KieProvider(HostedAdapter):
    """Runway Aleph through kie.ai (https://docs.kie.ai/runway-api/generate-aleph-video)."""

    name = "kie"
    capabilities = CAPABILITIES
    create_path = CREATE_PATH
    missing_id = "a create answer without a taskId"

    def __init__(
        self,
        client: httpx2.AsyncClient,
        *,
        api_key: str,
        base_url: str,
        upload_base_url: str,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(client, api_key=api_key, base_url=base_url, timeout=timeout)
        self.upload_base_url = upload_base_url.rstrip("/")

    @classmethod
    def from_config(cls, client: httpx2.AsyncClient, config: ProviderConfig) -> Self:
        return cls(
            client,
            api_key=config.api_key,
            base_url=config.base_url,
            upload_base_url=config.urls["kie_upload_base_url"],
            timeout=config.timeout,
        )

    def create_body(self, request: EditRequest) -> dict[str, Any]:
        """kie's camelCase create body; optional fields left out when unset."""
        body: dict[str, Any] = {"prompt": request.prompt, "videoUrl": request.video}
        optional = {
            "aspectRatio": request.aspect_ratio,  # kie takes our six ratios as they are
            "seed": request.seed,
            "referenceImage": request.reference_image,
            "waterMark": request.watermark,
            "callBackUrl": request.callback_url,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return body

    def task_id(self, answer: Any) -> str | None:
        data = self.http.check_envelope(answer)
        return text_id(data.get("taskId")) if isinstance(data, Mapping) else None

    async def poll(self, task_id: str) -> RemoteStatus:
        data = await self._read_status(task_id)
        if not isinstance(data, Mapping):
            raise self.http.malformed("a status answer without data")
        status, word = self._status_of(data)
        if status == "succeeded":
            return self._succeeded(data)
        if status == "failed":
            return self._failed(data, word)
        return RemoteStatus(status=status)

    async def cancel(self, task_id: str) -> None:
        raise CannotCancel("kie has no cancel API; the edit will run to its end and may be billed.")

    async def upload(self, path: Path, *, on_progress: ProgressCallback | None = None) -> str:
        total = (await anyio.Path(path).stat()).st_size
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if on_progress is not None:
            await on_progress(0, total)
        name = await anyio.to_thread.run_sync(unique_name, path)
        fileobj: BinaryIO = await anyio.to_thread.run_sync(path.open, "rb")
        try:
            # httpx2 streams a file object in chunks; the file is never read whole into memory.
            body = await self.http.request(
                "POST",
                UPLOAD_PATH,
                base_url=self.upload_base_url,
                files={"file": (name, fileobj, mime)},
                data={"uploadPath": UPLOAD_FOLDER, "fileName": name},
            )
        finally:
            fileobj.close()
        data = self.http.check_envelope(body)
        url = data.get("downloadUrl") if isinstance(data, Mapping) else None
        if not isinstance(url, str) or not url:
            raise self.http.malformed("an upload answer without a downloadUrl")
        if on_progress is not None:
            await on_progress(total, total)
        return url

    # -- helpers ------------------------------------------------------------------------------------
    async def _read_status(self, task_id: str) -> Any:
        params = {"taskId": task_id}
        try:
            return self.http.check_envelope(await self.http.request("GET", STATUS_PATH, params=params))
        except RemoteNotFound as not_found:
            # A 404 (HTTP or envelope): the route may live at the path the generate page names.
            try:
                body = await self.http.request("GET", FALLBACK_STATUS_PATH, params=params)
                return self.http.check_envelope(body)
            except RemoteNotFound:
                raise not_found from None  # record-info's answer is the authoritative one

    def _status_of(self, data: Mapping[str, Any]) -> tuple[EditStatus, str]:
        flag = data.get("successFlag")
        if flag is None or isinstance(flag, bool):
            raise self.http.malformed("a status answer without a successFlag")
        word = str(flag).strip()
        if word not in STATUS.words:
            return "failed", word  # other kie APIs use 2/3 for failures; any unknown flag is one too
        status = STATUS(word)
        if status == "running" and (_error_code(data) or _error_message(data)):
            status = "failed"  # successFlag 0 covers "failed" too; the error fields tell them apart
        return status, word

    def _succeeded(self, data: Mapping[str, Any]) -> RemoteStatus:
        response = data.get("response")
        response = response if isinstance(response, Mapping) else {}
        video = response.get("resultVideoUrl")
        if not isinstance(video, str) or not video:
            raise self.http.malformed("a finished task without an output URL")
        image = response.get("resultImageUrl")
        return RemoteStatus(
            status="succeeded",
            progress=1.0,
            output_url=video,
            thumbnail_url=image if isinstance(image, str) and image else None,
        )

    def _failed(self, data: Mapping[str, Any], word: str) -> RemoteStatus:
        code = _error_code(data)
        fallback = f"kie reported the edit failed (successFlag {word}, errorCode {code})."
        message = _error_message(data) or fallback
        return RemoteStatus(
            status="failed",
            error_code=f"kie_{code}" if code else "generation_failed",
            error_message=scrub(message, self.http.secrets),
        )


def _error_code(data: Mapping[str, Any]) -> int:
    try:
        return int(data.get("errorCode") or 0)
    except (TypeError, ValueError):
        return -1  # an unreadable code still signals an error


def _error_message(data: Mapping[str, Any]) -> str:
    message = data.get("errorMessage")
    return message.strip() if isinstance(message, str) else ""


def unique_name(path: Path) -> str:
    """`<sha256 prefix>-<name>`: kie keeps uploads by name in one folder, so two different files called
    clip.mp4 must not overwrite (or be served as) each other."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return f"{digest.hexdigest()[:16]}-{path.name}"
