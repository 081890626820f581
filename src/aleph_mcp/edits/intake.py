"""The intake: everything a new edit request goes through before anything is sent, done once per call.

validate → resolve the inputs → route them to the provider → probe them → quote the cost. The `Intake` it
returns is what the confirmation question, the dry run and the real submit all use, so none of them
checks, probes or quotes again (nor asks the client for its roots again).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx2

from aleph_mcp.config import ALL_PROVIDERS, Settings
from aleph_mcp.edits.preflight import inspect_input
from aleph_mcp.edits.requests import EditArgs, fingerprint
from aleph_mcp.edits.validation import (
    VideoInput,
    check_against,
    check_video_route,
    input_limit,
    resolve_input,
)
from aleph_mcp.errors import InvalidInput, NotConfigured
from aleph_mcp.models import Edit
from aleph_mcp.pricing.budget import cost_basis, estimate_cost
from aleph_mcp.pricing.catalog import Quote, facts_of
from aleph_mcp.providers.base import Provider

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

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.args, self.name, self.model, self.video, self.reference)

    def new_edit(self, *, now: float, lease_seconds: float) -> Edit:
        """The stored form of the request, before anything is sent."""
        args, reference = self.args, self.reference
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
        )


async def take_in(
    args: EditArgs,
    providers: Mapping[str, Provider],
    settings: Settings,
    *,
    http: httpx2.AsyncClient | None,
    progress: Progress = _no_progress,
    roots: Sequence[Path] = (),
) -> Intake:
    """Validate, resolve, route, probe (a URL only when `http` is given) and quote one request.

    `roots` are directories the MCP client declared; local files inside them are allowed too.
    """
    name, provider, model, video, reference = validate_args(args, providers, settings, roots)
    await progress(0.02, "Checking the input video")
    limit = input_limit(video, provider.capabilities, name)
    warnings, seconds = await inspect_input(video, name, model, limit, http)
    warnings += ignored_options(args, name, provider, model)
    estimate = estimate_cost(name, model, seconds, settings.prices)
    return Intake(args, name, provider, model, video, reference, warnings, estimate)


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
    allowed = list(args.local_dirs) if args.local_dirs is not None else [*settings.allowed_dir_paths, *roots]
    video = resolve_input(args.video, allowed)
    check_video_route(video, caps, name)
    reference = None
    if args.reference_image is not None:
        reference = resolve_input(args.reference_image, allowed, what="reference_image")
        check_video_route(reference, caps, name, what="reference_image")
    return name, provider, model, video, reference
