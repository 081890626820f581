"""Asking the person before a costly edit (ALEPH_MCP_CONFIRM_ABOVE_USD), on both protocol eras.

Two resolvers run before edit_video's body (`Annotated[..., Resolve(fn)]`): `take_in_call`, the call's one
intake, and `confirm_spend`, which decides on that intake's quote. When it returns `Elicit`, the SDK asks the
client: mid-call on 2025-era connections, as an input_required round trip on 2026-07-28 ones.

The confirmation is the person's. A client that can be asked always is, whatever `confirm` says;
`confirm=true` counts only on clients that cannot be asked, and not at all under
ALEPH_MCP_CONFIRM_REQUIRES_PERSON. A decline is stored with the request's fingerprint and refuses the same
request, with or without `confirm`, for the duplicate window (10 minutes), in every process on the data dir.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Literal

from mcp.server.mcpserver import Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import AcceptedElicitation, Elicit, ElicitationResult
from mcp.types.version import is_version_at_least
from pydantic import BaseModel, Field

from aleph_mcp.config import ProviderName
from aleph_mcp.edits.intake import Intake
from aleph_mcp.edits.requests import DUPLICATE_WINDOW, EditArgs
from aleph_mcp.errors import AlephError
from aleph_mcp.models import AspectRatio
from aleph_mcp.pricing.budget import asks_first, cost_basis
from aleph_mcp.pricing.catalog import Quote
from aleph_mcp.records import cost_text
from aleph_mcp.server.content import client_roots, looks_local
from aleph_mcp.server.state import Ctx, agent_errors, caller, over_http, progress_of, state_of

MODERN = "2026-07-28"  # from this version elicitation rides the tool call's input_required result
PROMPT_SHOWN = 300  # characters of the prompt quoted in the question


class SpendConfirmation(BaseModel):
    """The form the person answers: accept (with confirm checked) starts the edit; decline sends nothing."""

    confirm: bool = Field(default=True, title="Start this billed edit", description="Uncheck to cancel")


class SpendDecision(BaseModel):
    """The resolver's verdict when it does not ask."""

    verdict: Literal["not_needed", "cannot_ask", "declined"]
    message: str = ""


NOT_NEEDED = SpendDecision(verdict="not_needed")


async def take_in_call(
    ctx: Ctx,
    prompt: str,
    video: str | None,
    from_edit: str | None,
    start_seconds: float | None,
    end_seconds: float | None,
    duration_seconds: float | None,
    provider: ProviderName | None,
    model: str | None,
    aspect_ratio: AspectRatio | None,
    seed: int | None,
    reference_image: str | None,
    watermark: str | None,
    idempotency_key: str | None,
    allow_duplicate: bool,
    whole_clip: bool,
) -> Intake:
    """The edit_video call's intake (resolver): its arguments checked, probed and quoted, once per request.

    The confirmation question, the dry run and the real submit all use what this returns.
    """
    state = state_of(ctx)
    if not video and not from_edit:
        raise ToolError(
            "Pass `video` (a URL, data: URI or local path) or `from_edit` (one of your edit ids)."
        )
    args = EditArgs(
        prompt=prompt,
        video=video or "",
        from_edit=from_edit,
        start_seconds=start_seconds,
        end_seconds=end_seconds,
        duration_seconds=duration_seconds,
        provider=provider,
        model=model,
        aspect_ratio=aspect_ratio,
        seed=seed,
        reference_image=reference_image,
        watermark=watermark,
        idempotency_key=idempotency_key,
        allow_duplicate=allow_duplicate,
        owner=caller(ctx),
        whole_clip=whole_clip,
    )
    local = looks_local(video) or looks_local(reference_image)  # an aleph: video is an edit, not a file
    if over_http(ctx):  # a remote caller's path would name the server's files: only the operator's folders
        if local and not state.settings.http_allowed_dirs:
            raise ToolError(
                "Local file paths cannot be used over HTTP: they would name files on the server. Pass an "
                "https URL or a data: URI."
            )
        args = replace(args, local_dirs=tuple(state.settings.http_allowed_dir_paths))
    roots = await client_roots(ctx) if local and args.local_dirs is None else []
    with agent_errors():
        return await state.service.check(args, progress_of(ctx), roots=roots)


TakenIn = Annotated[Intake, Resolve(take_in_call)]


async def confirm_spend(
    ctx: Ctx, intake: TakenIn, dry_run: bool, confirm: bool
) -> Elicit[SpendConfirmation] | SpendDecision:
    """Ask before an edit quoted above the threshold or of unknown cost (never for dry runs)."""
    state = state_of(ctx)
    settings = state.settings
    threshold = settings.confirm_above_usd
    if dry_run or threshold is None:
        return NOT_NEEDED
    since = state.service.clock() - DUPLICATE_WINDOW
    if await state.store.declined_since(intake.fingerprint, since) is not None:
        return SpendDecision(verdict="declined", message=DECLINED_BEFORE)
    estimate = intake.estimate
    try:
        # An edit the budget refuses is not worth asking about.
        await state.service.check_budget(estimate, intake.args.owner, max(1, len(intake.windows)))
    except AlephError:
        return NOT_NEEDED  # the tool body refuses it with the same message
    if not asks_first(estimate, threshold):
        return NOT_NEEDED
    if can_ask(ctx):  # the person is there: their answer, not the agent's flag, decides
        if _asks_by_retry(ctx) and not ctx.input_responses:
            intake.discard()  # this round only asks; the call that brings the answer takes the input in anew
        shown = intake.args.video or intake.video.display  # from_edit: the parent's video URI
        return Elicit(question(estimate, threshold, intake.args.prompt, shown), SpendConfirmation)
    if confirm and not settings.confirm_requires_person:
        return NOT_NEEDED
    return SpendDecision(
        verdict="cannot_ask",
        message=cannot_ask_message(estimate, threshold, person_only=settings.confirm_requires_person),
    )


def _asks_by_retry(ctx: Ctx) -> bool:
    version = ctx.protocol_version
    return version is not None and is_version_at_least(version, MODERN)


def can_ask(ctx: Ctx) -> bool:
    """Whether this client can answer a form elicitation on this connection."""
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False  # none declared, or URL mode only
    if _asks_by_retry(ctx):
        return True  # asked through the tool call's own result
    return bool(ctx.session.can_send_request)  # 2025 era: needs a channel for server-to-client requests


def question(estimate: Quote, threshold: float, prompt: str, video: str) -> str:
    # Deterministic text: on 2026-07-28 the answer is matched to the exact question asked.
    shown = prompt if len(prompt) <= PROMPT_SHOWN else prompt[: PROMPT_SHOWN - 1] + "…"
    source = video if video.lower().startswith(("https://", "http://")) else video.rsplit("/", 1)[-1]
    return (
        f"Start a billed video edit? {estimate.provider}/{estimate.model}: {_why(estimate, threshold)}. "
        f"Prompt: {shown!r}. Video: {source[:200]}."
    )


def cannot_ask_message(estimate: Quote, threshold: float, *, person_only: bool = False) -> str:
    start = (
        f"Not started: this {estimate.provider}/{estimate.model} edit needs the person's confirmation "
        f"({_why(estimate, threshold)}), and this client cannot ask them (it does not support MCP "
        "elicitation). "
    )
    if person_only:
        return start + (
            "This server takes that confirmation only from the person (ALEPH_MCP_CONFIRM_REQUIRES_PERSON), "
            "so confirm=true does not help: use a client that supports elicitation. Nothing was sent."
        )
    return start + (
        "Ask the person; if they agree, call edit_video again with the same arguments and confirm=true. "
        "Nothing was sent."
    )


def _why(estimate: Quote, threshold: float) -> str:
    limit = f"${threshold:.2f} (ALEPH_MCP_CONFIRM_ABOVE_USD)"
    if estimate.usd is None:
        return f"its cost is unknown ({cost_basis(estimate)}) and edits above {limit} need confirming"
    return f"estimated {cost_text(estimate.usd, cost_basis(estimate))}, above {limit}"


async def require_approval(ctx: Ctx, intake: Intake, approval: ElicitationResult[BaseModel]) -> None:
    """Raise a ToolError unless the edit may go ahead: not needed, or the person accepted. A decline is
    stored, so the same request is refused for the duplicate window however it is sent again."""
    if isinstance(approval, AcceptedElicitation):
        answer = approval.data
        if isinstance(answer, SpendDecision):
            if answer.verdict != "not_needed":
                raise ToolError(answer.message)
            return
        if isinstance(answer, SpendConfirmation) and answer.confirm:
            return
    state = state_of(ctx)
    await state.store.record_decline(intake.fingerprint, state.service.clock())
    raise ToolError(
        "Not started: the person declined this edit when asked to confirm its cost. Nothing was sent or "
        "stored. Do not retry unless they ask for it."
    )


DECLINED_BEFORE = (
    "Not started: the person declined this same edit within the last 10 minutes. Their answer stands, with "
    "or without confirm=true; nothing was sent. Do not retry unless they ask for it."
)
