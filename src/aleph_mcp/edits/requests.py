"""Checking and recording a new edit request: everything that happens before a byte is sent."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aleph_mcp.config import ALL_PROVIDERS, Settings
from aleph_mcp.edits.validation import VideoInput, check_against, check_video_route, resolve_input
from aleph_mcp.errors import InvalidInput, NotConfigured
from aleph_mcp.models import AspectRatio, Edit, EditRequest
from aleph_mcp.pricing.catalog import Quote, facts_of
from aleph_mcp.providers.base import Provider


@dataclass(frozen=True)
class EditArgs:
    prompt: str
    video: str
    provider: str | None = None
    model: str | None = None
    aspect_ratio: AspectRatio | None = None
    seed: int | None = None
    reference_image: str | None = None
    watermark: str | None = None
    idempotency_key: str | None = None
    # False: an identical request within DUPLICATE_WINDOW returns the earlier edit, not a new billed one
    allow_duplicate: bool = False


DUPLICATE_WINDOW = 600.0  # seconds within which an identical request is taken for a repeat


@dataclass(frozen=True)
class Checked:
    """A request that passed every check that sends nothing: validated, its input probed, its cost quoted."""

    name: str
    provider: Provider
    model: str
    video: VideoInput
    reference: VideoInput | None
    warnings: list[str]
    estimate: Quote


def validate_args(
    args: EditArgs, providers: Mapping[str, Provider], settings: Settings, roots: Sequence[Path] = ()
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
    caps = provider.capabilities
    model = args.model or caps.default_model
    if not args.prompt.strip():
        raise InvalidInput("The prompt is empty: describe the change you want in the video.")
    check_against(
        caps,
        name,
        prompt=args.prompt,
        model=model,
        aspect_ratio=args.aspect_ratio,
        seed=args.seed,
        watermark=args.watermark,
        reference_image=args.reference_image,
    )
    if args.reference_image is not None and facts_of(name, model).reference_image is False:
        raise InvalidInput(
            f"{name} takes a reference image only with some models, not {model}; drop reference_image"
            + (" or pass model='gen4_aleph'." if name == "runway" else ".")
        )
    allowed = [*settings.allowed_dir_paths, *roots]
    video = resolve_input(args.video, allowed)
    check_video_route(video, caps, name)
    reference = None
    if args.reference_image is not None:
        reference = resolve_input(args.reference_image, allowed, what="reference_image")
        check_video_route(reference, caps, name, what="reference_image")
    return name, provider, model, video, reference


def build_request(args: EditArgs, model: str, video: str, reference_image: str | None) -> EditRequest:
    """The adapter's input for one create; `video` as the provider receives it (URL, upload URI, data URI).
    Real submits and dry runs both build it here, so a preview cannot differ from what is sent."""
    return EditRequest(
        prompt=args.prompt,
        video=video,
        model=model,
        aspect_ratio=args.aspect_ratio,
        seed=args.seed,
        reference_image=reference_image,
        watermark=args.watermark or None,
    )


def new_edit(
    args: EditArgs,
    provider: str,
    model: str,
    video: VideoInput,
    reference: VideoInput | None,
    *,
    now: float,
    lease_seconds: float,
) -> Edit:
    """The stored form of a request, before anything is sent."""
    options = {
        k: v
        for k, v in (
            ("aspect_ratio", args.aspect_ratio),
            ("seed", args.seed),
            ("watermark", args.watermark),
            ("reference_image", reference.display if reference else None),
        )
        if v is not None
    }
    return Edit(
        edit_id=f"ed_{uuid.uuid4().hex[:20]}",
        provider=provider,
        model=model,
        prompt=args.prompt,
        video=video.display,
        options=options,
        idempotency_key=args.idempotency_key,
        created_at=now,
        updated_at=now,
        # If this process dies mid-create, the poller finds it once the lease lapses (see poller).
        next_poll_at=now + lease_seconds,
    )


def same_request(existing: Edit, new: Edit) -> Edit:
    """The earlier edit with this idempotency key, provided it was asked with the same arguments."""
    fields = ("provider", "model", "prompt", "video", "options")
    differ = [f for f in fields if getattr(existing, f) != getattr(new, f)]
    if differ:
        raise InvalidInput(
            f"idempotency_key {new.idempotency_key!r} was already used for edit {existing.edit_id} with "
            f"different arguments ({', '.join(differ)}). Use a new key for a new edit, or resend the "
            "same arguments to get that edit back."
        )
    return existing


def unknown_outcome(edit: Edit, what: str) -> str:
    return (
        f"{what} The create request may have reached {edit.provider}, so it was not sent "
        "again (that could bill twice). Check the provider's dashboard for a recent job before "
        "retrying."
    )


def fingerprint(
    args: EditArgs, provider: str, model: str, video: VideoInput, reference: VideoInput | None
) -> str:
    """sha256 of the canonical request: what makes two calls the same edit (and the same bill)."""
    canonical = {
        "provider": provider,
        "model": model,
        "prompt": args.prompt,
        "video": _identity(video),
        "aspect_ratio": args.aspect_ratio,
        "seed": args.seed,
        "watermark": args.watermark,
        "reference_image": _identity(reference) if reference is not None else None,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _identity(item: VideoInput) -> str:
    """A data URI by the hash of its content (never the data itself); a local file by path, size and
    modification time, so a file rewritten in place is a new request."""
    if item.kind == "data":
        return "data:sha256:" + hashlib.sha256(item.value.encode()).hexdigest()
    if item.kind == "path":
        try:
            info = os.stat(item.value)
        except OSError:
            return f"path:{item.value}"
        return f"path:{item.value}:{info.st_size}:{info.st_mtime_ns}"
    return f"url:{item.value}"
