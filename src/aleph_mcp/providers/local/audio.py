"""The `local` provider's sound: the source's first audio stream, cut to the window the video kept and
retimed with atempo (pitch kept) when the speed changes, encoded as AAC next to the video."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.container import OutputContainer

from aleph_mcp.media.encoding import audio_graph, write_audio

AUDIO_FILTERS = frozenset({"abuffer", "atrim", "asetpts", "atempo", "aformat", "abuffersink"})


def speed_note(speed: float) -> str:
    return f"audio {'slowed' if speed < 1 else 'sped up'} to x{speed:g} with atempo (pitch kept)"


def copy_audio(
    source: Path,
    out: OutputContainer,
    encoder: AudioStream,
    window: tuple[float, float],
    speed: float,
    cancelled: Callable[[], bool],
) -> None:
    """Encode the source's audio from `window` = (start, length) seconds into `encoder`, at `speed`."""
    start, length = window
    with av.open(str(source)) as inp:
        stream = inp.streams.audio[0]
        graph = audio_graph(stream, encoder, start, start + length, speed)
        written = 0
        for frame in inp.decode(stream):
            if cancelled():
                raise InterruptedError("cancelled")
            graph.push(frame)
            written = write_audio(graph, out, encoder, written)
            if frame.time is not None and frame.time >= start + length:
                break
        graph.push(None)
        write_audio(graph, out, encoder, written)
        out.mux(encoder.encode(None))
