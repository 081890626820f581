"""What a before/after sheet costs as the clip grows: a 5 s clip against a 60 s one, with decoding the
60 s clip whole as the baseline the seeking avoids, all in the same run.

    .venv/bin/python benchmarks/sheet_cost.py [--size 1280x720] [--fps 24] [--runs 5]

Clips are the test suite's counter picture with a keyframe every 2 s. Prints the median seconds of
`contact_sheet(clip, clip)` for each length and of a full decode of the long clip; the sheet's ratio
long/short should stay near 1 (it decodes at most a keyframe interval per tile), far below the decode's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test suite's clip maker

from tests.media import make_counter_clip  # noqa: E402

from aleph_mcp.media.compare import contact_sheet  # noqa: E402


def _median(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def _decode_all(path: Path) -> int:
    with av.open(str(path)) as inp:
        return sum(1 for _ in inp.decode(video=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    size = tuple(int(side) for side in args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        clips = {}
        for seconds in (5, 60):
            path = Path(folder) / f"clip{seconds}.mp4"
            clips[seconds] = make_counter_clip(
                path, seconds=seconds, fps=args.fps, size=(size[0], size[1]), keyint=2 * args.fps, tone=False
            )
        sheet = Path(folder) / "sheet.jpg"
        short = _median(lambda: contact_sheet(clips[5], clips[5], sheet), args.runs)
        long = _median(lambda: contact_sheet(clips[60], clips[60], sheet), args.runs)
        decode = _median(lambda: _decode_all(clips[60]), max(1, args.runs // 2))
    print(f"{args.size} {args.fps} fps, median of {args.runs}:")
    print(f"  sheet, 5 s clip    {short * 1000:8.1f} ms")
    print(f"  sheet, 60 s clip   {long * 1000:8.1f} ms  ({long / short:.2f}x the 5 s sheet)")
    print(f"  decode 60 s whole  {decode * 1000:8.1f} ms  ({decode / short:.1f}x the 5 s sheet)")


if __name__ == "__main__":
    main()
