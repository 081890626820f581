"""The intake: everything a new edit request goes through before anything is sent, done once per call.

validate → resolve the inputs → route them to the provider → probe them → quote the cost. The `Intake` it
returns is what the confirmation question, the dry run and the real submit all use, so none of them
checks, probes or quotes again (nor asks the client for its roots again).
"""

from __future__ import annotations

import shutil
import time
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
import httpx2

from aleph_mcp.config import ALL_PROVIDERS, Settings
from aleph_mcp.edits.chains import Parent
from aleph_mcp.edits.preflight import inspect_input
from aleph_mcp.edits.requests import EditArgs, fingerprint, watermark_of
from aleph_mcp.edits.trims import check_cut_route, cut_input, requested_trim
from aleph_mcp.edits.validation import (
    VideoInput,
    check_against,
    check_video_route,
    input_limit,
    resolve_input,
)
from aleph_mcp.edits.windowing import job_quote, job_warnings, plan_whole_clip
from aleph_mcp.errors import InvalidInput, NotConfigured
from aleph_mcp.media.fetch import FetchPolicy
from aleph_mcp.media.formats import check_image_file
from aleph_mcp.media.localfiles import private_copy
from aleph_mcp.models import Edit
from aleph_mcp.pricing.budget import cost_basis, estimate_cost
from aleph_mcp.pricing.catalog import Quote, facts_of
from aleph_mcp.providers.base import Provider

if TYPE_CHECKING:  # PyAV loads only once a video is cut or stitched, never with the server
    from aleph_mcp.media.windows import Window

Progress = Callable[[float, str], Awaitable[None]]


async def _no_progress(fraction: float, message: str) -> None:
    return None


@dataclass(frozen=True)
class Intake:
    """A request that passed every check that sends nothing: validated, its input probed, its cost quoted."""

    args: EditArgs
    name: str
    provider: Provider
    model: str
    video: VideoInput
    reference: VideoInput | None
    warnings: list[str]
    estimate: Quote
    scratch: Path | None = None  # the folder of the inputs' private copies; see `discard`
    parent_id: str | None = None  # a chain's step: the edit whose output is the input (chains.py)
    trim: tuple[float, float] | None = None  # (start, end) seconds of the input edited (trims.py)
    # whole_clip=true on a clip longer than the model's window: the windows it goes out as (windowing.py)
    windows: tuple[Window, ...] = ()

    def discard(self) -> None:
        """Remove the private copies once nothing will read them again (sent, refused or previewed)."""
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.args, self.name, self.model, self.video, self.reference, self.trim)

    def new_edit(self, *, now: float, lease_seconds: float) -> Edit:
        """The stored form of the request, before anything is sent."""
        args, reference = self.args, self.reference
        options = {
            k: v
            for k, v in (
                ("aspect_ratio", args.aspect_ratio),
                ("seed", args.seed),
                ("watermark", watermark_of(args)),
                ("reference_image", reference.display if reference else None),
                # Content hashes, so an idempotency key reused for other bytes at the same name is caught. A
                # parent's output is named by its edit id (in `video`), whichever route it travels.
                ("video_sha256", None if self.video.origin else self.video.content_id),
                ("reference_sha256", reference.content_id if reference else None),
            )
            if v is not None
        }
        return Edit(
            edit_id=f"ed_{uuid.uuid4().hex[:20]}",
            provider=self.name,
            model=self.model,
            prompt=args.prompt,
            video=self.video.display,
            options=options,
            idempotency_key=args.stored_key,
            owner=args.owner,
            created_at=now,
            updated_at=now,
            # If this process dies mid-create, the poller finds it once the lease lapses (see poller).
            next_poll_at=now + lease_seconds,
            warnings=list(self.warnings),
            estimated_cost_usd=self.estimate.usd,
            cost_basis=cost_basis(self.estimate),
            parent_edit_id=self.parent_id,
            trim_start=self.trim[0] if self.trim else None,
            trim_end=self.trim[1] if self.trim else None,
        )


async def take_in(
    args: EditArgs,
    providers: Mapping[str, Provider],
    settings: Settings,
    *,
    http: httpx2.AsyncClient | None,
    fetch: FetchPolicy | None = None,
    progress: Progress = _no_progress,
    roots: Sequence[Path] = (),
    parent: Parent | None = None,
) -> Intake:
    """Validate, resolve, route, probe (a URL only when `http` is given) and quote one request.

    `roots` are directories the MCP client declared; local files inside them are allowed too. `parent`:
    the finished edit (chains.py) whose archived output is the input, instead of `args.video`.
    """
    name, provider, model, video, reference = validate_args(args, providers, settings, roots, parent)
    scratch = settings.data_dir / "inputs" / uuid.uuid4().hex
    policy = fetch or FetchPolicy()
    try:
        allowed = local_dirs(args, settings, roots)
        if parent is None:
            video = await _private(video, allowed, scratch, "video")
        else:
            video = await _parent_input(parent, video, scratch)
        if reference is not None:
            reference = await _private(reference, allowed, scratch, "reference_image")
            if reference.kind == "path":
                await anyio.to_thread.run_sync(check_image_file, Path(reference.value))
        await progress(0.02, "Checking the input video")
        video, trim = await cut_input(args, video, scratch, http, policy)
        if trim is not None:
            check_video_route(video, provider.capabilities, name)
        limit = input_limit(video, provider.capabilities, name)
        # A parent's own URL is not fetched to be checked: its archived copy is the same video.
        checked = await _probed_parent(parent, scratch) if parent and video.kind == "url" else video
        warnings, seconds = await inspect_input(checked, name, model, limit, http, policy)
        warnings += ignored_options(args, name, provider, model)
        estimate = estimate_cost(name, model, seconds, settings.prices)
        windows = await plan_whole_clip(args, name, model, checked, settings)
        if windows:  # windows are cut here, from a file (a parent's archived video, not its URL)
            video = checked
            estimate, warnings = job_quote(name, model, windows, settings), job_warnings(warnings, windows)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    used = scratch if scratch.exists() else None
    parent_id = parent.edit.edit_id if parent else None
    found = (warnings, estimate, used, parent_id, trim, tuple(windows))
    return Intake(args, name, provider, model, video, reference, *found)


async def _parent_input(parent: Parent, video: VideoInput, scratch: Path) -> VideoInput:
    """A chain's input as what later steps read: the provider's own URL as it is; the archived video as
    a private copy, of the local archive's file (the archive is ours: read there, and only a parent's)
    or fetched from the bucket."""
    if video.kind != "path":
        return video
    if parent.local is not None:
        return await _private(video, [parent.local.parent], scratch, "video")
    return await parent.fetch_copy(scratch / "video")


async def _probed_parent(parent: Parent, scratch: Path) -> VideoInput:
    """What is probed of a parent sent by its URL: the archived file in place, or a copy from the bucket."""
    return parent.as_file() if parent.local is not None else await parent.fetch_copy(scratch / "probe")


def local_dirs(args: EditArgs, settings: Settings, roots: Sequence[Path]) -> list[Path]:
    """Where this request may read local files: the caller's own folders (HTTP), else the server's and
    the client's roots."""
    if args.local_dirs is not None:
        return list(args.local_dirs)
    return [*settings.allowed_dir_paths, *roots]


async def _private(item: VideoInput, allowed: list[Path], scratch: Path, what: str) -> VideoInput:
    """A local file as its private copy (localfiles.py): what every later step reads."""
    if item.kind != "path":
        return item
    copy, digest, size = await anyio.to_thread.run_sync(
        private_copy, Path(item.value), allowed, scratch / what, what
    )
    return VideoInput(
        "path", str(copy), size, shown=item.shown or item.value, digest=digest, origin=item.origin
    )


_INVISIBLE = {0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0x180E, 0x034F, 0x115F, 0x1160, 0x3164}


def visible(text: str) -> str:
    """`text` without whitespace and invisible characters (zero-width spaces, joiners, BOMs, format marks)."""
    return "".join(
        c for c in text if not c.isspace() and ord(c) not in _INVISIBLE and unicodedata.category(c) != "Cf"
    )


def ignored_options(args: EditArgs, name: str, provider: Provider, model: str) -> list[str]:
    """Warnings for arguments the provider accepts and then silently ignores (nothing to refuse)."""
    caps = provider.capabilities
    if args.aspect_ratio is None or model not in caps.ratio_ignored_by:
        return []
    others = [m for m in caps.models if m not in caps.ratio_ignored_by]
    hint = f" Model {others[0]} applies it." if others else ""
    return [
        f"{name} ignores aspect_ratio with model {model}: the output keeps the input video's aspect "
        f"ratio, so {args.aspect_ratio} will not be applied.{hint}"
    ]


def validate_args(
    args: EditArgs,
    providers: Mapping[str, Provider],
    settings: Settings,
    roots: Sequence[Path] = (),
    parent: Parent | None = None,
) -> tuple[str, Provider, str, VideoInput, VideoInput | None]:
    """Everything about a request that can be checked without sending it (InvalidInput, NotConfigured)."""
    name = args.provider or settings.resolved_default_provider
    if name not in ALL_PROVIDERS:
        raise InvalidInput(f"Unknown provider {name!r}; choose one of: {', '.join(ALL_PROVIDERS)}.")
    provider = providers.get(name)
    if provider is None:
        raise NotConfigured(
            f"Provider {name} has no API key here. Set ALEPH_MCP_{name.upper()}_API_KEY in the server's "
            f"environment, or choose one of the configured providers: {', '.join(providers)}."
        )
    if name in settings.bad_keys():
        raise NotConfigured(
            f"The {name} API key holds a character that cannot be sent in an HTTP header (a line break or a "
            f"non-ASCII character, often from copy and paste). Fix ALEPH_MCP_{name.upper()}_API_KEY; nothing "
            "was sent."
        )
    caps = provider.capabilities
    model = args.model or caps.default_model
    if not visible(args.prompt):
        raise InvalidInput("The prompt is empty: describe the change you want in the video.")
    check_against(
        caps,
        name,
        prompt=args.prompt,
        model=model,
        aspect_ratio=args.aspect_ratio,
        seed=args.seed,
        watermark=watermark_of(args),
        reference_image=args.reference_image,
    )
    if args.reference_image is not None and facts_of(name, model).reference_image is False:
        raise InvalidInput(
            f"{name} takes a reference image only with some models, not {model}; drop reference_image"
            + (" or pass model='gen4_aleph'." if name == "runway" else ".")
        )
    allowed = local_dirs(args, settings, roots)
    trim = requested_trim(args)
    if parent is None:
        video = resolve_input(args.video, allowed)
    else:  # a trim is cut here from the archived file; untrimmed, the best route (chains.py)
        video = parent.as_file() if trim else parent.route(name, caps, time.time(), providers)
    if trim is not None:  # what travels is the cut, a local file: its route and size are checked once cut
        check_cut_route(caps, name, providers)
    else:
        check_video_route(video, caps, name)
    reference = None
    if args.reference_image is not None:
        reference = resolve_input(args.reference_image, allowed, what="reference_image")
        check_video_route(reference, caps, name, what="reference_image")
    return name, provider, model, video, reference
