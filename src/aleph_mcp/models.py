"""Domain types shared by every layer: statuses, requests, provider answers, stored edits, tool outputs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

EditStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
AspectRatio = Literal["16:9", "9:16", "4:3", "3:4", "1:1", "21:9"]
ASPECT_RATIOS: tuple[AspectRatio, ...] = ("16:9", "9:16", "4:3", "3:4", "1:1", "21:9")
SEED_MAX = 4_294_967_295


@dataclass(frozen=True)
class EditRequest:
    """What an adapter turns into one create call. `video` is an https URL, data URI or upload URI."""

    prompt: str
    video: str
    model: str
    aspect_ratio: AspectRatio | None = None
    seed: int | None = None
    reference_image: str | None = None
    watermark: str | None = None


@dataclass(frozen=True)
class RemoteStatus:
    """One status read from a provider, already in our vocabulary."""

    status: EditStatus
    progress: float | None = None
    output_url: str | None = None
    thumbnail_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    vendor_status: str | None = None
    notes: str | None = None  # what the provider did or changed that the agent should know


@dataclass
class Edit:
    """The stored edit. Mutable: the poller and the service update it and save it back."""

    edit_id: str
    provider: str
    model: str
    prompt: str
    video: str  # display form of the input: a URL or a short data-URI summary, never a whole data URI
    options: dict[str, Any] = field(default_factory=dict)
    status: EditStatus = "queued"
    provider_task_id: str | None = None
    progress: float | None = None
    output_url: str | None = None
    thumbnail_url: str | None = None
    local_path: str | None = None
    thumbnail_path: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    notes: str | None = None
    warnings: list[str] = field(default_factory=list)
    idempotency_key: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    next_poll_at: float | None = None
    poll_failures: int = 0
    polls: int = 0
    estimated_cost_usd: float | None = None  # the quote when it was submitted; None: price unknown
    cost_basis: str | None = None  # how that figure was reached, e.g. "5 s × $0.15/s"
    # Set (and stored) just before the create request leaves: None with no task id means nothing was sent.
    create_sent_at: float | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    # -- the lifecycle's end: every code path that ends an edit goes through `finish` -------------------
    def finish(
        self, status: EditStatus, now: float, code: str | None = None, message: str | None = None
    ) -> None:
        """End the edit: succeeded (no error), failed or cancelled (with why). Nothing polls it again."""
        self.status = status
        self.error_code, self.error_message = (None, None) if status == "succeeded" else (code, message)
        self.finished_at = self.updated_at = now
        self.next_poll_at = None

    def fail(self, code: str, message: str, now: float) -> None:
        self.finish("failed", now, code, message)

    def cancel(self, now: float) -> None:
        self.finish("cancelled", now, "cancelled", "Cancelled on request.")


class EditErrorInfo(BaseModel):
    code: str = Field(description="Stable machine-readable reason, e.g. provider_rejected, timeout")
    message: str = Field(description="What went wrong, in the provider's words where it gave any")


class RecordFields(BaseModel):
    """The status record's fields. edit_id, status and the times are null only in edit_video's dry run
    (nothing was created); EditRecord, what every tool and resource returns for an edit, requires them."""

    edit_id: str | None = Field(description="null only in a dry run: no edit was created")
    status: EditStatus | None = Field(description="null only in a dry run")
    provider: str
    model: str
    prompt: str
    provider_task_id: str | None = None
    created_at: str | None = Field(description="ISO 8601, UTC; null only in a dry run")
    updated_at: str | None = Field(description="ISO 8601, UTC; null only in a dry run")
    finished_at: str | None = None
    progress: float | None = Field(default=None, description="0..1 where the provider reports it")
    output_url: str | None = Field(default=None, description="The provider's result URL (it expires)")
    local_path: str | None = Field(default=None, description="The archived copy on this machine")
    video_uri: str | None = Field(default=None, description="MCP resource with the archived video")
    thumbnail_uri: str | None = None
    error: EditErrorInfo | None = None
    notes: str | None = Field(default=None, description="What the provider applied, changed or ignored")
    warnings: list[str] = Field(
        default_factory=list,
        description="What the provider will change silently, or what could not be checked",
    )
    check_again_in_seconds: int | None = Field(
        default=None, description="When checking again is worthwhile; null once the edit has ended"
    )
    duplicate_of_request: bool = Field(
        default=False, description="True when this call matched an earlier identical request"
    )
    estimated_cost_usd: float | None = Field(
        default=None,
        description="What the edit was quoted at when submitted (USD); null when the price is unknown",
    )
    cost_basis: str | None = Field(default=None, description="How the estimate was reached, or why none")


class EditRecord(RecordFields):
    """The status record every tool and the edit resource return."""

    edit_id: str
    status: EditStatus
    created_at: str = Field(description="ISO 8601, UTC")
    updated_at: str


class EditList(BaseModel):
    edits: list[EditRecord]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next, older page")
