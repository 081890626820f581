"""AI/ML API adapter: Runway `gen4_aleph` through the universal `/v2/video/generations` endpoint.

AI/ML API has no cancel and no upload route; `video_url` takes an https URL or a data URI instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aleph_mcp.errors import CannotCancel, FatalProviderError, InvalidInput
from aleph_mcp.models import EditRequest, RemoteStatus
from aleph_mcp.providers.base import Capabilities, ModelFacts, ProgressCallback, StatusTable
from aleph_mcp.providers.hosted import RUNWAY_PIXELS, HostedAdapter, runway_options, text_id
from aleph_mcp.redact import scrub

MB = 1024 * 1024
GENERATIONS = "/v2/video/generations"

# Our model names as AI/ML API's model ids.
VENDOR_MODELS: dict[str, str] = {"gen4_aleph": "runway/gen4_aleph"}

# The current schema says queued/generating/completed/error; older examples used waiting/active,
# and "failed" is accepted to be safe (the mapping is inferred, not documented as a table).
STATUS = StatusTable(
    "aimlapi",
    {
        "queued": "queued",
        "waiting": "queued",
        "generating": "running",
        "active": "running",
        "completed": "succeeded",
        "error": "failed",
        "failed": "failed",
    },
)

CAPABILITIES = Capabilities(
    models=("gen4_aleph",),
    aspect_ratios=frozenset(RUNWAY_PIXELS),  # sent as `frame_size`
    max_prompt_chars=1000,
    seed=True,
    watermark=False,
    reference_image=True,
    can_cancel=False,
    can_upload=False,
    # Inferred: AI/ML API states no data URI limit; Runway's own 5 MB data URI limit applies.
    data_uri_max_bytes=5 * MB,  # local files travel this way too (no upload route)
    typical_render="about 3-4 minutes (AI/ML API's example took 3 min 30 s)",
)
MODEL_FACTS = {
    "gen4_aleph": ModelFacts("The output is 5 s (`duration` takes only 5); first 5 s used (inferred).", 5),
}


class AimlapiProvider(HostedAdapter):
    """Runway Aleph via AI/ML API (https://api.aimlapi.com)."""

    name = "aimlapi"
    capabilities = CAPABILITIES
    create_path = GENERATIONS
    missing_id = "a create answer without a generation id"

    def create_body(self, request: EditRequest) -> dict[str, Any]:
        """The create JSON: required fields always, optional ones only when set."""
        return {
            "model": VENDOR_MODELS.get(request.model, request.model),
            "prompt": request.prompt,
            "video_url": request.video,
            **runway_options(request, ratio="frame_size", reference="url"),
        }

    def task_id(self, answer: Any) -> str | None:
        return text_id(answer.get("id"), numeric=True) if isinstance(answer, Mapping) else None

    def explain_refusal(self, exc: FatalProviderError, request: EditRequest | None) -> FatalProviderError:
        """AI/ML API answers 403 (not 402) when the account is out of credits."""
        if exc.status_code != 403:
            return exc
        return FatalProviderError(
            f"{exc.message}. AI/ML API answers 403 when the account is out of credits: top up the "
            "AI/ML API balance or choose another provider.",
            code="insufficient_credits",
            status_code=403,
            not_created=True,
        )

    async def poll(self, task_id: str) -> RemoteStatus:
        body = await self.explained(self.http.request("GET", GENERATIONS, params={"generation_id": task_id}))
        if not isinstance(body, Mapping) or not isinstance(body.get("status"), str):
            raise self.http.malformed("a status answer without a status")
        word: str = body["status"]
        status = STATUS(word)
        if status == "succeeded":
            url = video_url(body.get("video"))
            if url is None:
                raise self.http.malformed("a finished task without an output URL")
            return RemoteStatus(status=status, output_url=url)
        if status == "failed":
            code, message = failure(body.get("error"))
            return RemoteStatus(
                status=status,
                error_code=scrub(code, self.http.secrets),
                error_message=scrub(message, self.http.secrets),
            )
        return RemoteStatus(status=status)

    async def cancel(self, task_id: str) -> None:
        raise CannotCancel("aimlapi has no cancel API; the edit will run to its end and may be billed.")

    async def upload(self, path: Path, *, on_progress: ProgressCallback | None = None) -> str:
        raise InvalidInput(
            "aimlapi has no upload route for local files; use an https URL, or pass the video as a "
            f"data: URI (AI/ML API accepts data URIs up to {CAPABILITIES.data_uri_max_bytes} bytes)."
        )


def video_url(video: Any) -> str | None:
    """The output URL: `{url}` on the universal endpoint, a list of URLs on the legacy one (accept both)."""
    if isinstance(video, list):
        video = video[0] if video else None
    if isinstance(video, Mapping):
        video = video.get("url")
    return video if isinstance(video, str) and video else None


def failure(error: Any) -> tuple[str, str]:
    """(code, message) from `error`: `{name, message}` in the current schema, a bare string in older ones."""
    default = "AI/ML API reported the edit as failed without giving a reason."
    if isinstance(error, Mapping):
        name = error.get("name")
        message = error.get("message")
        code = name if isinstance(name, str) and name else "generation_failed"
        return code, message if isinstance(message, str) and message else default
    if isinstance(error, str) and error.strip():
        return "generation_failed", error
    return "generation_failed", default
