"""How the media layer writes video: H.264 yuv420p MP4 with its index first, AAC sound, every frame's
timestamp set here (the encoder does not stamp them).

The `local` provider (providers/local/, a layer above) writes its output with the same container options and
sound. A cut or a stitch is an intermediate that goes on to a model or into the archive, so its picture keeps
more detail (a lower CRF) than `local`'s finished output.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.video.stream import VideoStream

# max_interleave_delta=0: hold the video until the audio (encoded after it) arrives, so the two interleave.
MP4_OPTIONS = {"movflags": "+faststart", "max_interleave_delta": "0"}
H264_OPTIONS = {"preset": "veryfast", "crf": "18"}
AAC_FRAME = 1024  # samples per frame FFmpeg's AAC encoder takes


def frame_rate(stream: VideoStream) -> Fraction:
    return Fraction(stream.average_rate or stream.guessed_rate or 24)


def even(width: int, height: int) -> tuple[int, int]:
    """yuv420p halves both sides for colour, so an H.264 picture a phone plays has even sides."""
    return max(2, width - width % 2), max(2, height - height % 2)


def display_rotation(stream: VideoStream, first: av.VideoFrame) -> int:
    """The counterclockwise display-matrix angle a player applies (FFmpeg's sign), from the frames' matrix
    or, failing that, an old clockwise `rotate` tag (Matroska spells it ROTATE)."""
    if first.rotation:
        return round(first.rotation)
    tag = next((value for key, value in stream.metadata.items() if key.lower() == "rotate"), "0")
    try:
        return -round(float(tag))
    except ValueError:
        return 0


def add_h264(out: OutputContainer, rate: Fraction, size: tuple[int, int], rotation: int = 0) -> VideoStream:
    """An H.264 stream stamped in 1/rate ticks: frame n gets pts n."""
    stream = out.add_stream("libx264", rate=rate, time_base=1 / rate)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    stream.options = dict(H264_OPTIONS)
    if rotation:
        stream.set_display_rotation(rotation)
    return stream


def add_aac(out: OutputContainer, source: AudioStream) -> AudioStream:
    """An AAC stream with the source's sample rate, mono or stereo."""
    ctx = source.codec_context
    encoder = out.add_stream("aac", rate=ctx.sample_rate or 48000)
    encoder.layout = "mono" if ctx.channels == 1 else "stereo"
    return encoder


def encode_audio_span(
    source: Path, out: OutputContainer, encoder: AudioStream, start: float, end: float
) -> None:
    """Decode the source's first audio stream from `start` to `end` seconds (its own clock) and encode
    it into `encoder` from 0, sample-accurate (atrim), stamped by sample count."""
    with av.open(str(source)) as inp:
        stream = inp.streams.audio[0]
        graph = audio_graph(stream, encoder, start, end)
        written: int | None = None
        for frame in inp.decode(stream):
            if written is None:  # sound that starts after `start` keeps its place: silence before it
                late = (frame.time or 0.0) - start
                written = max(0, round(late * encoder.codec_context.sample_rate))
            graph.push(frame)
            written = write_audio(graph, out, encoder, written)
            if frame.time is not None and frame.time >= end:
                break
        graph.push(None)
        write_audio(graph, out, encoder, written or 0)
        out.mux(encoder.encode(None))


def audio_graph(
    stream: AudioStream, encoder: AudioStream, start: float, end: float, speed: float = 1.0
) -> av.filter.Graph:
    """`stream`'s sound from `start` to `end` seconds (sample-accurate), retimed to `speed` with atempo
    (pitch kept), in the encoder's format and frame size."""
    graph = av.filter.Graph()
    rate, layout = encoder.codec_context.sample_rate, encoder.codec_context.layout.name
    steps = [("atrim", f"start={max(0.0, start)}:end={end}"), ("asetpts", "PTS-STARTPTS")]
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


def write_audio(graph: av.filter.Graph, out: OutputContainer, encoder: AudioStream, written: int) -> int:
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


def first_video_time(inp: InputContainer) -> float:
    """Where the video starts on the file's clock (clips often start well after 0)."""
    stream = inp.streams.video[0]
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return 0.0
