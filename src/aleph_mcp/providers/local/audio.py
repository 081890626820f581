"""The `local` provider's sound: the source's first audio stream, cut to the window the video kept and
retimed with atempo (pitch kept) when the speed changes, encoded as AAC next to the video."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.container import OutputContainer

AUDIO_FILTERS = frozenset({"abuffer", "atrim", "asetpts", "atempo", "aformat", "abuffersink"})
AAC_FRAME = 1024  # samples per frame FFmpeg's AAC encoder takes


def add_audio(out: OutputContainer, source: AudioStream) -> AudioStream:
    """An AAC stream in `out` with the source's sample rate, mono or stereo."""
    ctx = source.codec_context
    encoder = out.add_stream("aac", rate=ctx.sample_rate or 48000)
    encoder.layout = "mono" if ctx.channels == 1 else "stereo"
    return encoder


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
        graph = _graph(stream, encoder, start, start + length, speed)
        written = 0
        for frame in inp.decode(stream):
            if cancelled():
                raise InterruptedError("cancelled")
            graph.push(frame)
            written = _write(graph, out, encoder, written)
            if frame.time is not None and frame.time >= start + length:
                break
        graph.push(None)
        _write(graph, out, encoder, written)
        out.mux(encoder.encode(None))


def _graph(
    stream: AudioStream, encoder: AudioStream, start: float, end: float, speed: float
) -> av.filter.Graph:
    graph = av.filter.Graph()
    rate, layout = encoder.codec_context.sample_rate, encoder.codec_context.layout.name
    steps = [("atrim", f"start={start}:end={end}"), ("asetpts", "PTS-STARTPTS")]
    if speed != 1:
        steps.append(("atempo", f"{speed:g}"))
    steps.append(("aformat", f"sample_fmts=fltp:sample_rates={rate}:channel_layouts={layout}"))
    nodes = [graph.add_abuffer(template=stream)]
    nodes += [graph.add(name, args) for name, args in steps]
    nodes.append(graph.add("abuffersink"))
    for left, right in itertools.pairwise(nodes):
        left.link_to(right)
    graph.configure()
    graph.set_audio_frame_size(AAC_FRAME)
    return graph


def _write(graph: av.filter.Graph, out: OutputContainer, encoder: AudioStream, written: int) -> int:
    """Encode what the graph has ready, stamped by sample count; returns the new count."""
    time_base = Fraction(1, encoder.codec_context.sample_rate)
    while True:
        try:
            frame = graph.pull()
        except (av.BlockingIOError, av.EOFError):
            return written
        assert isinstance(frame, av.AudioFrame)  # the graph only carries audio
        frame.pts, frame.time_base = written, time_base
        written += frame.samples
        out.mux(encoder.encode(frame))
