"""The Provider seam: what every adapter offers, what it can do, and its vendor-status table."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import Field

from aleph_mcp.models import AspectRatio, EditRequest, EditStatus, Lean, RemoteStatus

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int | None], Awaitable[None]]


@dataclass(frozen=True)
class Capabilities:
    """What a provider accepts. The intake checks every call against this before any request."""

    models: tuple[str, ...]  # the first one is the default
    aspect_ratios: frozenset[AspectRatio] = frozenset()  # empty: the provider takes no ratio
    max_prompt_chars: int = 1000  # in UTF-16 code units (edits.validation.prompt_length)
    seed: bool = False
    watermark: bool = False
    reference_image: bool = False
    can_cancel: bool = False
    can_upload: bool = False
    accepts_urls: bool = True  # https URLs as `video`; data URIs are governed by data_uri_max_bytes
    reads_files_in_place: bool = False  # local files are read where they are, never uploaded
    data_uri_max_bytes: int | None = None  # None: data URIs are not accepted
    url_max_bytes: int | None = None  # a video by https URL; None: not documented
    # A local file, uploaded for you or read in place; it may differ from the URL limit (Runway: 32 MB
    # by URL, 200 MB uploaded). None: no limit documented.
    upload_max_bytes: int | None = None
    needs_key: bool = True
    webhooks: bool = False  # the create can carry a callback URL the provider calls when the job ends
    # (first, longest) poll interval for a command line following one edit, where a poll costs nothing.
    quick_poll: tuple[float, float] | None = None
    renders_in_process: bool = False  # the render runs in whichever process follows the edit
    typical_render: str = "2-15 minutes"
    ratio_ignored_by: frozenset[str] = frozenset()  # models that take an aspect ratio and silently ignore it

    @property
    def default_model(self) -> str:
        return self.models[0]


@dataclass(frozen=True)
class ModelFacts:
    """What a model does with the input's length (not in Capabilities: it differs per model)."""

    duration: str
    max_processed_seconds: float | None = None  # only this much of the input is used (and billed)
    # False where that ceiling is a third-party figure: it caps a known length, never replaces an unknown one
    quote_unknown_length: bool = True
    reference_image: bool | None = None  # None: as the provider's Capabilities say
    min_seconds: float | None = None  # shorter inputs are refused by the provider (figure may be third-party)


@dataclass(frozen=True)
class ProviderConfig:
    """What a factory builds an adapter from: read from the settings by config.py, so adapters never
    see the settings themselves."""

    data_dir: Path
    timeout: float = 30.0
    api_key: str = field(default="", repr=False)  # empty for a provider that needs none; never printed
    base_url: str = ""
    urls: Mapping[str, str] = field(default_factory=dict)  # each URL setting by field name, slash trimmed


class PreparedCreate(Lean):
    """One create request exactly as an adapter sends it, with its secrets masked.

    `submit` sends what `describe_create` returns (same method, URL and body), so a preview cannot drift
    from the real request. Only the masked header values differ from what goes on the wire.
    """

    method: str = Field(description="HTTP method (RENDER for the local provider: nothing is sent)")
    url: str
    headers: dict[str, str] = Field(description="Request headers; secrets shown as ***")
    body: dict[str, Any] = Field(description="The JSON body")


class Provider(Protocol):
    """A hosted (or local) Aleph backend.

    Adapters receive an `httpx2.AsyncClient` and never create or close it. Every method raises only
    `errors.ProviderError` subclasses for provider trouble (see `_http.py`), with vendor text scrubbed.

    - `submit` sends exactly one create request and returns the provider's task id. It never retries:
      whether a failed create may be sent again is the caller's decision (`ProviderError.not_created`).
    - `poll` reads the task once and maps the vendor's status word through the adapter's one `StatusTable`.
    - `cancel` stops a task; adapters whose API has no cancel raise `errors.CannotCancel`.
    - `upload` turns a local file into something `submit` accepts as `video` (a URL or upload URI).
    - `describe_create` is side-effect free: the create `submit` would send for `request`, secrets masked.
      It raises what `submit` raises for a request the adapter refuses before sending.
    """

    name: str
    capabilities: Capabilities

    def describe_create(self, request: EditRequest) -> PreparedCreate: ...

    async def submit(self, request: EditRequest) -> str: ...

    async def poll(self, task_id: str) -> RemoteStatus: ...

    async def cancel(self, task_id: str) -> None: ...

    async def upload(self, path: Path, *, on_progress: ProgressCallback | None = None) -> str: ...


LOCAL_RESULT_SCHEME = "aleph-local:"


def local_result_url(task_id: str) -> str:
    """The output_url of a result rendered on this machine: a name, not a path any provider could give."""
    return f"{LOCAL_RESULT_SCHEME}{task_id}"


@runtime_checkable
class RendersHere(Protocol):
    """A provider whose results are files on this machine (`local`). The poller reads a result from the
    provider's own job folder (`output_file`), never from a path named in an answer, and `discard`s the
    job once its result is archived."""

    def output_file(self, task_id: str) -> Path: ...

    def discard(self, task_id: str) -> None: ...


class StatusTable:
    """Maps a vendor's status words to ours; the single table every code path of an adapter uses.

    An unknown word maps to `running` (logged): failing a paid edit because a vendor added a word would
    be worse than polling it until it resolves or hits the edit deadline.
    """

    def __init__(self, vendor: str, table: Mapping[str, EditStatus]) -> None:
        self.vendor = vendor
        self._table = {word.lower(): status for word, status in table.items()}

    def __call__(self, word: object) -> EditStatus:
        key = str(word).strip().lower()
        status = self._table.get(key)
        if status is None:
            logger.warning("unknown status provider=%s word=%r treated_as=running", self.vendor, word)
            return "running"
        return status

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self._table)
