"""What a cut costs: a 5-second stream copy against a 5-second re-encode of the same clip, in the same run.

    .venv/bin/python benchmarks/cut_speed.py [--size 1280x720] [--fps 24] [--runs 5]

The clip is 8 s of the test suite's counter picture (a keyframe every second, B-frames, a chirp).
`copy` cuts 2 s..7 s (keyframe to keyframe: stream copy); `encode` cuts 2.5 s..7.5 s (off a keyframe:
decoded and encoded again). Prints the median seconds of each and their ratio; compare the ratio and the
encode time against the model's minutes of rendering, not the milliseconds (they vary with the machine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test suite's clip maker

from tests.media import make_counter_clip  # noqa: E402

from aleph_mcp.media.cutting import cut_clip  # noqa: E402


def _median(src: Path, dst: Path, start: float, end: float, runs: int, copied: bool) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        cut = cut_clip(src, dst, start, end)
        times.append(time.perf_counter() - began)
        assert cut.copied is copied, cut
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    width, height = (int(side) for side in args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        src = make_counter_clip(
            Path(folder) / "src.mp4", seconds=8, fps=args.fps, size=(width, height), keyint=args.fps
        )
        copy = _median(src, Path(folder) / "copy.mp4", 2, 7, args.runs, copied=True)
        encode = _median(src, Path(folder) / "encode.mp4", 2.5, 7.5, args.runs, copied=False)
    print(f"{args.size} {args.fps} fps, 5 s cut, median of {args.runs}:")
    print(f"  stream copy {copy * 1000:8.1f} ms")
    print(f"  re-encode   {encode * 1000:8.1f} ms  ({encode / copy:.1f}x the copy)")


if __name__ == "__main__":
    main()
