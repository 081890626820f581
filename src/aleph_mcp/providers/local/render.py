"""The `local` provider's engine: a recipe (words.py) -> an FFmpeg filter graph, rendered with PyAV.

It is not generative AI: it applies real, documented filters and says which words it did not understand.
The output is what browsers and phones play: H.264 yuv420p MP4 with its index first (+faststart), upright,
even-sized, with the source's sound. The encoder does not stamp timestamps, so frame n is stamped
n / source rate here: slow motion and speeding up change the length, never the frame rate.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
from av.container import InputContainer, OutputContainer
from av.video.stream import VideoStream

from aleph_mcp.media.encoding import MP4_OPTIONS, add_aac
from aleph_mcp.providers.local.audio import AUDIO_FILTERS, copy_audio, speed_note
from aleph_mcp.providers.local.watermark import Watermark
from aleph_mcp.providers.local.words import FILTERS, Recipe

MAX_SECONDS = 5.0  # the same cap the hosted providers apply, counted from the first frame
RATIOS = {"16:9": (16, 9), "9:16": (9, 16), "4:3": (4, 3), "3:4": (3, 4), "1:1": (1, 1), "21:9": (21, 9)}
# Turning the picture upright, by clockwise degrees the player would rotate it.
UPRIGHT = {90: [("transpose", "clock")], 180: [("hflip", ""), ("vflip", "")], 270: [("transpose", "cclock")]}
REQUIRED_FILTERS = frozenset(
    {name for _, _, name, _ in FILTERS}
    | {"buffer", "buffersink", "crop", "format", "transpose", "hflip", "vflip"}
    | AUDIO_FILTERS
)


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
) -> list[str]:
    """Decode `source`, run the filter chain on its first MAX_SECONDS, encode H.264 MP4 into `dest`.

    `watermark` text is drawn bottom-right, semi-transparent, after the filters (so it is never mirrored).
    Returns notes on what happened to the sound.
    """
    with av.open(str(source)) as inp:
        if not inp.streams.video:
            raise ValueError("the input has no video stream")
        stream = inp.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(24)
        frames = _window(inp, stream, rate, cancelled)
        first = next(frames, None)
        if first is None:
            raise ValueError("the input has no video frames")
        graph, size = _graph(stream, first[0], recipe, aspect_ratio)
        stamp = Watermark(watermark, *size) if watermark and watermark.strip() else None
        with av.open(str(dest), "w", format="mp4", options=MP4_OPTIONS) as out:
            video = _VideoOut(out, graph, rate, size, stamp, recipe.speed)
            sound = add_aac(out, inp.streams.audio[0]) if inp.streams.audio else None
            for frame, at in itertools.chain([first], frames):
                video.push(frame)
                on_progress(min(0.95, at / MAX_SECONDS))
            video.close()
            if sound is None:
                return []
            window = (first[0].time or 0.0, float(video.taken / rate))
            copy_audio(source, out, sound, window, recipe.speed, cancelled)
    return [speed_note(recipe.speed)] if recipe.speed != 1 else []


def _window(
    inp: InputContainer, stream: VideoStream, rate: Fraction, cancelled: Callable[[], bool]
) -> Iterator[tuple[av.VideoFrame, float]]:
    """Each decoded frame of the first MAX_SECONDS and its time from the first frame (whatever that
    frame's own timestamp: clips often start well after 0)."""
    start: float | None = None
    for index, frame in enumerate(inp.decode(stream)):
        if cancelled():
            raise InterruptedError("cancelled")
        time = frame.time if frame.time is not None else float(index / rate)
        start = time if start is None else start
        if time - start >= MAX_SECONDS - 1e-6:
            return
        yield frame, time - start


def _upright(frame: av.VideoFrame, stream: VideoStream) -> int:
    """Clockwise degrees a player turns this picture: the display matrix, else an old `rotate` tag."""
    if frame.rotation:
        return round(-frame.rotation / 90) % 4 * 90  # the matrix angle is counterclockwise
    tag = next((value for key, value in stream.metadata.items() if key.lower() == "rotate"), "0")
    try:  # Matroska spells it ROTATE
        return round(float(tag) / 90) % 4 * 90
    except ValueError:
        return 0


def _graph(
    stream: VideoStream, first: av.VideoFrame, recipe: Recipe, ratio: str | None
) -> tuple[av.filter.Graph, tuple[int, int]]:
    """The filter graph and the output size: upright, then even (yuv420p halves both sides for colour),
    then cropped to `ratio`, then the recipe's filters."""
    turn = _upright(first, stream)
    steps = list(UPRIGHT.get(turn, []))
    width, height = (first.height, first.width) if turn in (90, 270) else (first.width, first.height)
    even = (width - width % 2, height - height % 2)
    size = crop_for(*even, ratio) or even
    if size != (width, height):
        steps.append(("crop", f"{size[0]}:{size[1]}"))
    steps += [*recipe.filters, ("format", "yuv420p")]
    graph = av.filter.Graph()
    nodes = [
        graph.add_buffer(
            width=first.width, height=first.height, format=first.format, time_base=stream.time_base
        )
    ]
    nodes += [graph.add(name, args) if args else graph.add(name) for name, args in steps]
    nodes.append(graph.add("buffersink"))
    for left, right in itertools.pairwise(nodes):
        left.link_to(right)
    graph.configure()
    return graph, size


def _drain(graph: av.filter.Graph) -> list[av.VideoFrame]:
    frames: list[av.VideoFrame] = []
    while True:
        try:
            frame = graph.pull()
            assert isinstance(frame, av.VideoFrame)  # the graph only carries video
            frames.append(frame)
        except (av.BlockingIOError, av.EOFError):
            return frames


class _VideoOut:
    """Filters, watermarks, retimes and encodes frames, stamping output frame n at n / rate: slow motion
    repeats each frame, speeding up keeps every other one."""

    def __init__(
        self,
        out: OutputContainer,
        graph: av.filter.Graph,
        rate: Fraction,
        size: tuple[int, int],
        stamp: Watermark | None,
        speed: float,
    ) -> None:
        self.out, self.graph, self.stamp = out, graph, stamp
        self.time_base = 1 / rate
        self.encoder = out.add_stream("libx264", rate=rate, time_base=self.time_base)
        self.encoder.width, self.encoder.height, self.encoder.pix_fmt = size[0], size[1], "yuv420p"
        self.encoder.options = {"preset": "veryfast", "crf": "23"}
        self.repeat = round(1 / speed) if speed < 1 else 1
        self.keep_every = round(speed) if speed > 1 else 1
        self.taken = self.filtered = self.written = 0

    def push(self, frame: av.VideoFrame) -> None:
        self.taken += 1
        self.graph.push(frame)
        self._write()

    def close(self) -> None:
        self.graph.push(None)
        self._write()
        self.out.mux(self.encoder.encode(None))

    def _write(self) -> None:
        for frame in _drain(self.graph):
            self.filtered += 1
            if (self.filtered - 1) % self.keep_every:
                continue
            marked = self.stamp.apply(frame) if self.stamp is not None else frame
            for _ in range(self.repeat):
                marked.pts, marked.time_base = self.written, self.time_base
                self.written += 1
                self.out.mux(self.encoder.encode(marked))
