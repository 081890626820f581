"""A new edit request: its arguments, the create it becomes, its stored form and what makes two the same."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from aleph_mcp.edits.validation import VideoInput
from aleph_mcp.errors import IdempotencyConflict
from aleph_mcp.models import LOCAL_OWNER, AspectRatio, Edit, EditRequest


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
    owner: str = LOCAL_OWNER  # who asks: what they make is theirs, and only their own edits repeat theirs
    # Where this caller may read local files; None: the server's ALEPH_MCP_ALLOWED_DIRS (and client roots).
    local_dirs: tuple[Path, ...] | None = None
    from_edit: str | None = None  # a chain: the caller's finished edit whose video is the input (chains.py)
    # A trim: the part of the input to edit, seconds into it (trims.py); end and duration exclude each other
    start_seconds: float | None = None
    end_seconds: float | None = None
    duration_seconds: float | None = None
    # True: a clip longer than the model's window is edited whole, as windows stitched back together
    whole_clip: bool = False

    @property
    def stored_key(self) -> str | None:
        """The idempotency key as stored: each owner's keys are their own (local ones as given)."""
        if not self.idempotency_key or self.owner == LOCAL_OWNER:
            return self.idempotency_key
        return f"{self.owner}{OWNER_SEPARATOR}{self.idempotency_key}"


OWNER_SEPARATOR = "\x1f"  # between owner and key in a stored key; no caller's key can hold it
DUPLICATE_WINDOW = 600.0  # seconds within which an identical request is taken for a repeat


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
        watermark=watermark_of(args),
    )


def watermark_of(args: EditArgs) -> str | None:
    """The watermark to draw: one of only spaces (or nothing visible) counts as none."""
    return args.watermark if args.watermark and args.watermark.strip() else None


def same_request(existing: Edit, new: Edit) -> Edit:
    """The earlier edit with this idempotency key, provided it was asked with the same arguments."""
    fields = ("provider", "model", "prompt", "video")
    differ = [f for f in fields if getattr(existing, f) != getattr(new, f)]
    if _asked(existing.options) != _asked(new.options):
        differ.append("options")
    if differ:
        key = (new.idempotency_key or "").rpartition(OWNER_SEPARATOR)[2]  # as the caller gave it
        raise IdempotencyConflict(
            f"idempotency_key {key!r} was already used for edit {existing.edit_id} with "
            f"different arguments ({', '.join(differ)}). Use a new key for a new edit, or resend the "
            "same arguments to get that edit back."
        )
    return existing


# A whole-clip job's options also record its progress (each window's edit and status, its input copy):
# what was asked is the rest, and the windows' spans.
_PROGRESS = ("whole_clip_source",)
_PLAN = "whole_clip_windows"


def _asked(options: dict[str, object]) -> dict[str, object]:
    asked = {k: v for k, v in options.items() if k not in _PROGRESS and k != _PLAN}
    plan = options.get(_PLAN)
    if isinstance(plan, list):
        asked[_PLAN] = [(w.get("start"), w.get("end")) for w in plan if isinstance(w, dict)]
    return asked


def token_hash(token: str) -> str:
    """How a webhook secret is stored and looked up: never as itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def unknown_outcome(edit: Edit, what: str) -> str:
    return (
        f"{what} The create request may have reached {edit.provider}, so it was not sent "
        "again (that could bill twice). Check the provider's dashboard for a recent job before "
        "retrying."
    )


def stopped_mid_create(edit: Edit) -> str:
    """Why an edit whose submitter died after sending (or maybe sending) its create failed."""
    return (
        f"The server stopped while sending this edit to {edit.provider}, so it is unknown whether the "
        "provider started (and will bill) it. It was not sent again. Check your recent jobs in the "
        "provider's dashboard."
    )


def fingerprint(
    args: EditArgs,
    provider: str,
    model: str,
    video: VideoInput,
    reference: VideoInput | None,
    trim: tuple[float, float] | None = None,
) -> str:
    """sha256 of the canonical request: what makes two calls the same edit (and the same bill)."""
    canonical: dict[str, object] = {
        "provider": provider,
        "model": model,
        "prompt": args.prompt,
        "video": _identity(video),
        "aspect_ratio": args.aspect_ratio,
        "seed": args.seed,
        "watermark": watermark_of(args),
        "reference_image": _identity(reference) if reference is not None else None,
    }
    if args.owner != LOCAL_OWNER:  # local requests keep the fingerprints stored before owners existed
        canonical["owner"] = args.owner
    if trim is not None:  # the part edited is part of the request (untrimmed ones keep their prints)
        canonical["trim"] = [round(trim[0], 3), round(trim[1], 3)]
    if args.whole_clip:  # only when set, so earlier fingerprints stay as they were
        canonical["whole_clip"] = True
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _identity(item: VideoInput) -> str:
    """A data URI or a local file by the hash of its content (never the data itself), so a file rewritten
    in place is a new request; a URL as given."""
    if item.origin is not None:  # a parent edit's output: the same input whichever route it travels
        return item.origin
    if item.kind == "data":
        return f"data:sha256:{item.content_id}"
    if item.kind == "path":
        return f"path:{item.display}:sha256:{item.content_id}"
    return f"url:{item.value}"
