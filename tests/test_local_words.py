"""The `local` provider's words do what they say, checked on the pixels of the output; refused or
undrawable requests are not applied."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import ImageFont

from aleph_mcp.errors import InvalidInput
from aleph_mcp.models import EditRequest
from aleph_mcp.providers.local import LocalProvider
from aleph_mcp.providers.local import watermark as local_watermark
from aleph_mcp.providers.local.render import render
from aleph_mcp.providers.local.watermark import Watermark, drawable_text
from aleph_mcp.providers.local.words import FILTERS, parse_prompt

from .media import GRAY, first_frame, make_clip


def frame_after(tmp_path: Path, clip: Path, prompt: str) -> np.ndarray:
    out = tmp_path / f"edit-{len(list(tmp_path.glob('edit-*')))}.mp4"
    render(clip, out, parse_prompt(prompt))
    return first_frame(out).astype(float)


@pytest.fixture
def gray(inputs: Path) -> Path:
    return make_clip(inputs / "gray.mp4", halves=(GRAY, GRAY))


def channels(frame: np.ndarray) -> tuple[float, float, float]:
    red, green, blue = frame[20:, :].reshape(-1, 3).mean(axis=0)  # below the moving white square
    return float(red), float(green), float(blue)


def test_warm_shifts_towards_red_and_cool_towards_blue(tmp_path: Path, gray: Path) -> None:
    """On a gray clip, warm makes red exceed blue and cool makes blue exceed red."""
    red, _, blue = channels(frame_after(tmp_path, gray, ""))
    assert abs(red - blue) < 3
    warm_r, _, warm_b = channels(frame_after(tmp_path, gray, "make it warm"))
    cool_r, _, cool_b = channels(frame_after(tmp_path, gray, "cool tones"))
    assert warm_r - warm_b > 15 and cool_b - cool_r > 15


def test_night_is_darker_and_bluer(tmp_path: Path, gray: Path) -> None:
    """Night lowers the brightness and raises blue relative to red."""
    before = channels(frame_after(tmp_path, gray, ""))
    after = channels(frame_after(tmp_path, gray, "night"))
    assert sum(after) < 0.8 * sum(before)
    assert after[2] / after[0] > 1.3 * before[2] / before[0]


def test_upside_down_moves_the_top_row_to_the_bottom(tmp_path: Path, clip: Path) -> None:
    """The white square near the top-left corner ends up near the bottom-left corner."""
    frame = frame_after(tmp_path, clip, "turn it upside down")
    assert frame[-16:-4, 0:12].min() > 200 and frame[4:16, 0:12].max() < 240


@pytest.mark.parametrize(("label", "pattern", "name", "args"), FILTERS, ids=[f[0] for f in FILTERS])
def test_every_effect_word_changes_the_picture(
    tmp_path: Path, clip: Path, label: str, pattern: str, name: str, args: str
) -> None:
    """Each effect's own word applies its filter and visibly changes the clip."""
    assert parse_prompt(label).filters == [(name, args)]
    difference = np.abs(frame_after(tmp_path, clip, label) - frame_after(tmp_path, clip, "")).mean()
    assert difference > 2


@pytest.mark.parametrize(
    "prompt", ["no blur", "not mirrored", "don't mirror it", "without sepia", "remove the vignette"]
)
def test_a_negated_effect_is_left_out_and_said_so(tmp_path: Path, clip: Path, prompt: str) -> None:
    """A refused effect leaves the pixels as a plain copy and the notes say it was left out."""
    recipe = parse_prompt(prompt)
    assert recipe.filters == [] and "left out on request" in recipe.describe()
    difference = np.abs(frame_after(tmp_path, clip, prompt) - frame_after(tmp_path, clip, "")).max()
    assert difference <= 2


def test_words_match_whole_words_only() -> None:
    """'nightclub' is not night and 'desaturate' is not saturate; a negation ends at 'but'."""
    assert parse_prompt("nightclub lighting").filters == []
    assert parse_prompt("desaturate").filters == [("hue", "s=0.4")]
    recipe = parse_prompt("no blur but mirrored")
    assert recipe.filters == [("hflip", "")] and recipe.declined == ["blur"]


@pytest.mark.parametrize("text", ["你好", "\U0001f600", "café"])
async def test_a_watermark_the_fonts_cannot_draw_is_refused_before_the_job_starts(
    tmp_path: Path, clip: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """With only Pillow's own font, CJK or emoji text is refused by describe_create; submit makes no job."""
    monkeypatch.setattr(local_watermark, "FONT_FILES", ())
    provider = LocalProvider(tmp_path / "jobs")
    request = EditRequest(prompt="invert", video=str(clip), model="ffmpeg", watermark=text)
    with pytest.raises(InvalidInput, match=r"cannot be drawn: .*\(U\+"):
        provider.describe_create(request)
    with pytest.raises(InvalidInput, match="cannot be drawn"):
        await provider.submit(request)
    assert list((tmp_path / "jobs").iterdir()) == []


def test_text_the_built_in_font_lacks_is_drawn_with_a_system_font_that_has_it() -> None:
    """Pillow's own font has no 'é'; 'café' is drawn with DejaVu Sans where it is installed, else refused."""
    try:
        ImageFont.truetype("DejaVuSans.ttf", 12)
    except OSError:  # no DejaVu here: another fallback font draws it, or it is refused; never boxes
        try:
            drawn: tuple[str, str | None] | None = drawable_text("café")
        except InvalidInput:
            drawn = None  # refused, with the message the test above checks
        assert drawn is None or drawn[1] is not None  # never Pillow's own font, which lacks 'é'
        return
    assert drawable_text("café") == ("café", "DejaVuSans.ttf")
    assert Watermark("café", 320, 180).alpha.max() > 0.5
