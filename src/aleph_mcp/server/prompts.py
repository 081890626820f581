"""MCP prompts for the common Aleph jobs (completions for their arguments are in completions.py).

Each prompt turns a few arguments into an Aleph prompt written the way the provider docs advise: say what
changes (not what is already in the shot), name camera moves, say when and how fast things happen. The
rendered message tells the agent to pass it to edit_video. `refine` writes the follow-up call on an earlier
result (from_edit), for the caller's own succeeded edits only.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

import mcp.types as types
from mcp import MCPError
from pydantic import Field

from aleph_mcp.config import ProviderName
from aleph_mcp.errors import AlephError
from aleph_mcp.server.registration import Registrations
from aleph_mcp.server.state import Ctx, caller, state_of

Transition = Literal["from the first frame", "gradually over the shot"]


Video = Annotated[
    str,
    Field(
        min_length=1,
        max_length=10_000,
        description="The input video: an https URL, or a local path inside the allowed directories",
    ),
]
Provider = Annotated[
    ProviderName | None, Field(description="Which API renders it (see list_providers); default: the server's")
]
Words = Field(min_length=1, max_length=300)
Style = Annotated[str, Words, Field(description="The look, e.g. 'watercolor painting', 'anime', 'film noir'")]
Lighting = Annotated[str, Words, Field(description="The new light, e.g. 'golden hour sunlight', 'moonlight'")]
Direction = Annotated[
    str, Field(max_length=300, description="Where the light comes from, e.g. 'from the left'")
]
Thing = Annotated[str, Words, Field(description="The object, with its look, e.g. 'a small red vintage car'")]
Where = Annotated[str, Words, Field(description="Where it goes, e.g. 'in the background', 'on the table'")]
CameraMove = Annotated[str, Words, Field(description="e.g. 'slow dolly in', 'orbit around the subject'")]
OptionalMove = Annotated[
    str, Field(max_length=300, description="e.g. 'tracking shot'; empty: the model picks")
]
Subject = Annotated[str, Field(max_length=300, description="What the camera frames, e.g. 'the dancer'")]
Change = Annotated[str, Words, Field(description="The new weather or time, e.g. 'heavy snowfall', 'night'")]
NextAction = Annotated[
    str,
    Field(min_length=1, max_length=600, description="What happens next, e.g. 'the car turns into an alley'"),
]
When = Annotated[Transition, Field(description="All at once, or gradually over the shot")]
EditId = Annotated[
    str, Field(min_length=1, max_length=100, description="The finished edit whose result to change further")
]
Wanted = Annotated[
    str,
    Field(
        min_length=1, max_length=600, description="The change wanted on top of it, e.g. 'now make it night'"
    ),
]


def _clean(value: str) -> str:
    return " ".join(value.split()).rstrip(".")


def render(job: str, aleph_prompt: str, video: str, provider: str | None) -> str:
    """The message a prompt returns: the job, the Aleph prompt, and the one call to make."""
    target = f", provider={json.dumps(provider)}" if provider else ""
    return (
        f"Edit this video with Runway Aleph: {job}.\n\n"
        f"Aleph prompt:\n{aleph_prompt}\n\n"
        f"Call edit_video with video={json.dumps(video)}{target} and prompt set to the Aleph prompt above "
        "(adjust it if the user asked for more). The edit is billed and takes minutes: note the edit id "
        "and check back with get_edit_status; list_providers shows prices and limits."
    )


prompts = Registrations()


@prompts.prompt(title="Restyle a video")
async def restyle(
    video: Video,
    style: Style,
    provider: Provider = None,
) -> str:
    """Turn the whole video into another visual style, keeping its motion and timing."""
    style = _clean(style)
    prompt = (
        f"Transform the entire video into {style} style, applied consistently to every frame. "
        "Keep the original motion, framing and timing; the new look holds steady from the first frame "
        "to the last."
    )
    return render(f"restyle as {style}", prompt, video, provider)


@prompts.prompt(title="Relight a scene")
async def relight(
    video: Video,
    lighting: Lighting,
    direction: Direction = "",
    provider: Provider = None,
) -> str:
    """Relight the scene (time of light, colour, direction) without changing what happens in it."""
    lighting = _clean(lighting)
    source = f", coming {_clean(direction)}" if direction.strip() else ""
    prompt = (
        f"Relight the scene with {lighting}{source}. Shadows, highlights, reflections and skin tones "
        "follow the new light consistently in every frame, and the light stays steady for the whole shot."
    )
    return render(f"relight with {lighting}", prompt, video, provider)


@prompts.prompt(title="Add an object")
async def add_object(
    video: Video,
    object: Thing,
    where: Where,
    transition: When = "from the first frame",
    provider: Provider = None,
) -> str:
    """Add something to the scene, matched to its light, perspective and motion."""
    thing, place = _clean(object), _clean(where)
    timing = (
        "It is there from the first frame"
        if transition == "from the first frame"
        else ("It appears gradually over the course of the shot")
    )
    prompt = (
        f"Add {thing} {place}. {timing}, matches the scene's lighting, shadows and perspective, and "
        "moves naturally with the camera."
    )
    return render(f"add {thing} {place}", prompt, video, provider)


@prompts.prompt(title="Remove an object")
async def remove_object(
    video: Video,
    object: Thing,
    provider: Provider = None,
) -> str:
    """Remove something from the scene and fill in what would be behind it."""
    thing = _clean(object)
    prompt = (
        f"Remove {thing} from the entire video. Fill the vacated space with the background that would be "
        "there, consistent in every frame, with no trace, blur or smear left behind."
    )
    return render(f"remove {thing}", prompt, video, provider)


@prompts.prompt(title="Change the camera")
async def change_camera(
    video: Video,
    camera_move: CameraMove,
    subject: Subject = "",
    provider: Provider = None,
) -> str:
    """Show the same action from a new camera angle or with a new camera move."""
    move = _clean(camera_move)
    on = f" on {_clean(subject)}" if subject.strip() else ""
    prompt = (
        f"Show the same action from a new camera: {move}{on}. The camera work is smooth and continuous "
        "for the whole shot while the action, characters and timing stay as they are."
    )
    return render(f"new camera: {move}", prompt, video, provider)


@prompts.prompt(title="Change the weather or time of day")
async def change_weather_or_time(
    video: Video,
    change: Change,
    transition: When = "from the first frame",
    provider: Provider = None,
) -> str:
    """Change the weather, season or time of day of the scene."""
    change = _clean(change)
    if transition == "from the first frame":
        lead = f"Change the scene to {change} from the first frame."
    else:
        lead = f"Gradually transform the scene into {change} over the course of the shot."
    prompt = (
        f"{lead} Sky, light, ground and surfaces all show it, and the people and objects in the shot "
        "react to it naturally while their motion stays the same."
    )
    return render(f"change to {change}", prompt, video, provider)


@prompts.prompt(title="Continue the shot")
async def continue_shot(
    video: Video,
    next_action: NextAction,
    camera_move: OptionalMove = "",
    provider: Provider = None,
) -> str:
    """Generate the next shot of the story, continuing from where the video ends."""
    action = _clean(next_action)
    camera = f" Camera: {_clean(camera_move)}." if camera_move.strip() else ""
    prompt = (
        f"Generate the next shot, continuing directly from the end of this clip: {action}.{camera} Keep "
        "the same characters and visual style, with continuous, natural motion."
    )
    return render("continue the shot", prompt, video, provider)


@prompts.prompt(title="Refine an edit's result")
async def refine(ctx: Ctx, edit_id: EditId, change: Wanted, provider: Provider = None) -> str:
    """Change the result of a finished edit further: one more change on top of it, the rest kept."""
    state = state_of(ctx)
    try:
        edit = await state.service.get(edit_id.strip(), caller(ctx))
    except AlephError as exc:
        raise MCPError(code=types.INVALID_PARAMS, message=exc.message) from None
    if edit.status != "succeeded":
        raise MCPError(
            types.INVALID_PARAMS,
            f"Edit {edit.edit_id} {'is still ' if not edit.is_terminal else ''}{edit.status}; only a "
            "succeeded edit's result can be refined"
            + (" (wait for it with get_edit_status)." if not edit.is_terminal else "."),
        )
    wanted = _clean(change)
    prompt = (
        f"{wanted[:1].upper()}{wanted[1:]}, applied consistently in every frame. Keep everything else as it "
        "is in this video: the subjects, their motion, the framing, the timing and the look it already has."
    )
    # Its own provider can often take the result by its URL, with nothing uploaded (edits/chains.py).
    target = provider or edit.provider
    return (
        f"Refine edit {edit.edit_id} (made with {json.dumps(edit.prompt[:200])}) with Runway Aleph: "
        f"{wanted}.\n\n"
        f"Aleph prompt:\n{prompt}\n\n"
        f"Call edit_video with from_edit={json.dumps(edit.edit_id)}, provider={json.dumps(target)} and "
        "prompt set to the Aleph prompt above (describe only the new change; adjust it if the user "
        "asked for more). To change only part of the clip, add start_seconds and end_seconds. The "
        "edit is billed and takes minutes: note the new edit id and check back with get_edit_status; "
        "its record's lineage shows the chain back to the original video."
    )


__all__ = ["prompts", "render"]
