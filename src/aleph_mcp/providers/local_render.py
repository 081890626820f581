"""The `local` provider's engine: prompt words -> an FFmpeg filter chain, rendered with PyAV.

It is not generative AI: it applies real, documented filters and says which words it did not understand.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

MAX_SECONDS = 5.0  # the same cap the hosted providers apply

# (words that ask for it, filter name, filter args). Order in the prompt is the order applied.
FILTERS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("black and white", "black-and-white", "grayscale", "greyscale", "monochrome", "b&w"), "hue", "s=0"),
    (("sepia",), "colorchannelmixer", ".393:.769:.189:0:.349:.686:.168:0:.272:.534:.131"),
    (("vintage", "old film", "retro"), "curves", "preset=vintage"),
    (("invert", "negative"), "negate", ""),
    (("mirror", "flip horizontally", "horizontal flip"), "hflip", ""),
    (("upside down", "flip vertically", "vertical flip"), "vflip", ""),
    (("blur", "blurry", "soft focus"), "gblur", "sigma=6"),
    (("brighten", "brighter", "lighter"), "hue", "b=2"),
    (("darken", "darker"), "hue", "b=-2"),
    (("night", "nighttime", "night time"), "colortemperature", "temperature=3000"),
    (("contrast",), "curves", "preset=increase_contrast"),
    (("desaturate", "muted", "washed out"), "hue", "s=0.4"),
    (("saturate", "vivid", "more colorful", "more colourful"), "hue", "s=1.8"),
    (("warm", "golden hour", "sunset"), "colortemperature", "temperature=9000"),
    (("cool", "cold", "winter"), "colortemperature", "temperature=4500"),
    (("vignette",), "vignette", ""),
)
SPEED: tuple[tuple[tuple[str, ...], float], ...] = (
    (("slow motion", "slow-motion", "slow down", "slower"), 0.5),
    (("speed up", "faster", "fast forward", "timelapse", "time-lapse"), 2.0),
)
_CLAUSES = re.compile(r"\s*(?:[,;.]|\band then\b|\bthen\b|\band\b)\s*", re.I)
RATIOS = {"16:9": (16, 9), "9:16": (9, 16), "4:3": (4, 3), "3:4": (3, 4), "1:1": (1, 1), "21:9": (21, 9)}


@dataclass
class Recipe:
    filters: list[tuple[str, str]] = field(default_factory=list)
    speed: float = 1.0
    applied: list[str] = field(default_factory=list)
    not_understood: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = [f"applied: {', '.join(self.applied) or 'nothing (copied the clip)'}"]
        if self.not_understood:
            parts.append(f"not understood (ignored): {'; '.join(self.not_understood)}")
        return "; ".join(parts)


def _is_negated(text: str, start: int) -> bool:
    # "desaturate" must not also trigger "saturate"; "not blurry" should not blur.
    return (start > 0 and text[start - 1].isalpha()) or text[max(0, start - 4) : start] == "not "


def _find(text: str, words: tuple[str, ...]) -> tuple[int, int] | None:
    """The first un-negated occurrence of any of `words` in `text`, as a (start, end) span."""
    hits = [
        (m.start(), m.end())
        for word in words
        for m in re.finditer(re.escape(word), text)
        if not _is_negated(text, m.start())
    ]
    return min(hits) if hits else None


def parse_prompt(prompt: str) -> Recipe:
    """Find every known phrase in the whole prompt (so "black and white" stays one phrase), apply them in
    the order they appear, and report the clauses that matched nothing."""
    text = prompt.lower()
    found: list[tuple[tuple[int, int], str, tuple[str, str] | float]] = []
    for words, name, args in FILTERS:
        if (span := _find(text, words)) is not None:
            found.append((span, f"{words[0]} ({name}{'=' + args if args else ''})", (name, args)))
    for words, factor in SPEED:
        if (span := _find(text, words)) is not None:
            found.append((span, f"{words[0]} (x{factor:g} speed)", factor))
    recipe = Recipe()
    for _, label, action in sorted(found, key=lambda item: item[0]):
        if isinstance(action, float):
            recipe.speed = action
        elif action not in recipe.filters:
            recipe.filters.append(action)
        recipe.applied.append(label)
    spans = [span for span, _, _ in found]
    position = 0
    for clause in _CLAUSES.split(text):
        start = text.find(clause, position) if clause else position
        position = start + len(clause)
        if clause.strip() and not any(a < position and start < b for a, b in spans):
            recipe.not_understood.append(clause.strip())
    return recipe


def crop_for(width: int, height: int, ratio: str | None) -> tuple[int, int] | None:
    """Centre-crop size (even numbers) that gives `ratio`; None when no crop is needed."""
    if ratio is None:
        return None
    rw, rh = RATIOS[ratio]
    target = Fraction(rw, rh)
    if Fraction(width, height) > target:
        new_w, new_h = int(height * target), height
    else:
        new_w, new_h = width, int(width / target)
    new_w, new_h = new_w - new_w % 2, new_h - new_h % 2
    return None if (new_w, new_h) == (width, height) else (new_w, new_h)


def render(
    source: Path,
    dest: Path,
    recipe: Recipe,
    *,
    aspect_ratio: str | None = None,
    watermark: str | None = None,
    on_progress: Callable[[float], None] = lambda _: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> None:
    """Decode `source`, run the filter chain on its first MAX_SECONDS, encode H.264 MP4 into `dest`.

    `watermark` text is drawn bottom-right, semi-transparent, after the filters (so it is never mirrored).
    """
    with av.open(str(source)) as inp:
        if not inp.streams.video:
            raise ValueError("the input has no video stream")
        stream = inp.streams.video[0]
        rate = stream.average_rate or Fraction(24)
        graph, size = _graph(stream, recipe, aspect_ratio)
        stamp = Watermark(watermark, *size) if watermark and watermark.strip() else None
        with av.open(str(dest), "w", format="mp4") as out:
            encoder = out.add_stream("libx264", rate=rate)
            encoder.width, encoder.height, encoder.pix_fmt = size[0], size[1], "yuv420p"
            encoder.options = {"preset": "veryfast", "crf": "23"}
            for frames_in, frame in enumerate(inp.decode(stream), start=1):
                if cancelled():
                    raise InterruptedError("cancelled")
                if frame.time is not None and frame.time >= MAX_SECONDS:
                    break
                graph.push(frame)
                for filtered in _drain(graph):
                    marked = stamp.apply(filtered) if stamp is not None else filtered
                    for copy in _retime(marked, frames_in, recipe.speed):
                        out.mux(encoder.encode(copy))
                if frame.time is not None:
                    on_progress(min(0.99, frame.time / MAX_SECONDS))
            out.mux(encoder.encode(None))


def _graph(
    stream: av.video.stream.VideoStream, recipe: Recipe, ratio: str | None
) -> tuple[av.filter.Graph, tuple[int, int]]:
    graph = av.filter.Graph()
    nodes = [graph.add_buffer(template=stream)]
    width, height = stream.codec_context.width, stream.codec_context.height
    crop = crop_for(width, height, ratio)
    steps = list(recipe.filters)
    if crop is not None:
        steps.insert(0, ("crop", f"{crop[0]}:{crop[1]}"))
        width, height = crop
    steps.append(("format", "yuv420p"))
    for name, args in steps:
        nodes.append(graph.add(name, args) if args else graph.add(name))
    nodes.append(graph.add("buffersink"))
    for left, right in itertools.pairwise(nodes):
        left.link_to(right)
    graph.configure()
    return graph, (width - width % 2, height - height % 2)


def _drain(graph: av.filter.Graph) -> list[av.VideoFrame]:
    frames: list[av.VideoFrame] = []
    while True:
        try:
            frame = graph.pull()
            assert isinstance(frame, av.VideoFrame)  # the graph only carries video
            frames.append(frame)
        except (av.BlockingIOError, av.EOFError):
            return frames


class Watermark:
    """Text drawn with Pillow (PyAV has no drawtext filter): a mask made once, blended into every frame.

    The blend works on the yuv420p planes in place, so every pixel outside the text stays byte for byte.
    """

    OPACITY = 0.6
    WHITE_Y, NEUTRAL_UV = 235.0, 128.0

    def __init__(self, text: str, width: int, height: int) -> None:
        margin = max(2, height // 40)
        font, (left, top, right, bottom) = _fitting_font(
            text.strip(), width - 2 * margin, max(8, height // 12)
        )
        mask = Image.new("L", (right - left + 2, bottom - top + 2))  # +1 pixel for the shadow
        ImageDraw.Draw(mask).text((-left, -top), text.strip(), fill=255, font=font)
        alpha = np.asarray(mask, dtype=np.float64) / 255 * self.OPACITY
        h, w = min(alpha.shape[0], height) // 2 * 2, min(alpha.shape[1], width) // 2 * 2  # whole chroma cells
        self.alpha = alpha[:h, :w]
        # A dark halo one pixel down-right keeps white text readable on light footage.
        self.shadow = np.zeros_like(self.alpha)
        self.shadow[1:, 1:] = self.alpha[:-1, :-1] * 0.5
        self.chroma = self.alpha.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        self.x = max(0, width - margin - w) // 2 * 2
        self.y = max(0, height - margin - h) // 2 * 2

    def apply(self, frame: av.VideoFrame) -> av.VideoFrame:
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        width, height = frame.width, frame.height
        planes = frame.to_ndarray()  # Y rows, then U and V with two chroma rows per line
        luma = planes[:height]
        u = planes[height : height + height // 4].reshape(height // 2, width // 2)
        v = planes[height + height // 4 :].reshape(height // 2, width // 2)
        h, w = self.alpha.shape
        y0, x0 = self.y, self.x
        region = luma[y0 : y0 + h, x0 : x0 + w] * (1 - self.shadow)
        luma[y0 : y0 + h, x0 : x0 + w] = (region * (1 - self.alpha) + self.WHITE_Y * self.alpha).round()
        for plane in (u, v):
            cell = plane[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2]
            plane[y0 // 2 : (y0 + h) // 2, x0 // 2 : (x0 + w) // 2] = (
                cell * (1 - self.chroma) + self.NEUTRAL_UV * self.chroma
            ).round()
        return av.VideoFrame.from_ndarray(planes, format="yuv420p")


def _fitting_font(
    text: str, max_width: int, size: int
) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, tuple[int, int, int, int]]:
    """The largest font size (from `size` down to 8 px) at which `text` fits `max_width`."""
    while True:
        font = _font(size)
        left, top, right, bottom = (int(v) for v in font.getbbox(text))
        if right - left <= max_width or size <= 8:
            return font, (left, top, right, bottom)
        size -= max(1, size // 10)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1, or a build without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _retime(frame: av.VideoFrame, index: int, speed: float) -> list[av.VideoFrame]:
    """Slow motion repeats frames, speeding up drops them; the encoder stamps new timestamps."""
    frame.pts = None
    if speed < 1:
        return [frame] * round(1 / speed)
    if speed > 1 and index % round(speed):
        return []
    return [frame]
