"""Completions (`completion/complete`): prompt arguments from built-in word lists, edit ids from the store."""

from __future__ import annotations

from typing import Any

import mcp.types as types
from mcp.server import ServerRequestContext
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer

from aleph_mcp.config import ALL_PROVIDERS
from aleph_mcp.server.auth import owner_of
from aleph_mcp.server.sdk import add_request_handler
from aleph_mcp.server.state import ServerState


def _words(text: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(","))


# Completion suggestions. Every argument also takes free text, except `transition` and `provider`.
VOCABULARY: dict[str, tuple[str, ...]] = {
    "style": _words(
        "watercolor painting, oil painting, pencil sketch, anime, claymation, 3D animated film, film noir, "
        "1980s VHS footage, cyberpunk neon, pixel art, hand-drawn 2D animation, comic book, stained glass, "
        "low-poly 3D, vintage 16mm film"
    ),
    "lighting": _words(
        "golden hour sunlight, blue hour twilight, harsh midday sun, soft overcast light, moonlight, "
        "neon signs, candlelight, studio softbox lighting, dramatic rim light, sunset backlight, "
        "flickering firelight, cold fluorescent light"
    ),
    "camera_move": _words(
        "slow dolly in, dolly out, orbit around the subject, crane up, crane down, pan left, pan right, "
        "tilt up, tilt down, tracking shot, handheld shot, low-angle shot, high-angle shot, "
        "overhead top-down shot, close-up, wide establishing shot, reverse angle"
    ),
    "change": _words(
        "heavy snowfall, light rain, thunderstorm, dense fog, sandstorm, night, sunrise, sunset, "
        "golden hour, autumn, winter, spring bloom, overcast, clear blue sky"
    ),
    "where": _words(
        "in the foreground, in the background, on the left, on the right, in the sky, on the table, "
        "in the subject's hand"
    ),
    "transition": ("from the first frame", "gradually over the shot"),
    "provider": ALL_PROVIDERS,
}
EDIT_TEMPLATES = (
    "aleph://edits/{edit_id}",
    "aleph://edits/{edit_id}/video",
    "aleph://edits/{edit_id}/thumbnail",
    "aleph://edits/{edit_id}/compare",
)
MAX_COMPLETIONS = 100  # the spec's ceiling for one answer


async def _complete(
    ctx: ServerRequestContext[ServerState], params: types.CompleteRequestParams
) -> types.CompleteResult:
    """Complete prompt arguments from their vocabularies and edit ids from the store, by prefix."""
    ref, argument = params.ref, params.argument
    if isinstance(ref, types.PromptReference) and argument.name == "edit_id":  # refine: a finished edit
        values = await _edit_ids(ctx.lifespan_context, EDIT_TEMPLATES[1], argument.value)
    elif isinstance(ref, types.PromptReference):
        values = _matching(VOCABULARY.get(argument.name, ()), argument.value)
    elif ref.uri in EDIT_TEMPLATES and argument.name == "edit_id":
        values = await _edit_ids(ctx.lifespan_context, ref.uri, argument.value)
    else:
        values = []
    return types.CompleteResult(
        completion=types.Completion(
            values=values[:MAX_COMPLETIONS], total=len(values), has_more=len(values) > MAX_COMPLETIONS
        )
    )


def _matching(words: tuple[str, ...], prefix: str) -> list[str]:
    """Words starting with the prefix first, then words containing it; case-insensitive."""
    needle = prefix.strip().lower()
    starts = [w for w in words if w.lower().startswith(needle)]
    return starts + [w for w in words if needle in w.lower() and w not in starts]


async def _edit_ids(state: ServerState, template: str, prefix: str) -> list[str]:
    """Recent edit ids starting with the prefix; only finished edits for the video, thumbnail and sheet."""
    status = None if template == EDIT_TEMPLATES[0] else "succeeded"
    owner = owner_of(get_access_token())  # only the caller's own edits complete
    edits, _ = await state.store.list_edits(status=status, limit=MAX_COMPLETIONS * 2, owner=owner)
    return [e.edit_id for e in edits if e.edit_id.startswith(prefix.strip().lower())]


def install_completions(server: MCPServer[Any]) -> None:
    """MCPServer's own `completion()` hook passes no request context, so edit ids could not be looked up."""
    add_request_handler(server, "completion/complete", types.CompleteRequestParams, _complete)


__all__ = ["VOCABULARY", "install_completions"]
