"""Archive downloads against their raw baselines, measured in the same run (issue #12 and #15 rows).

    .venv/bin/python benchmarks/archive_download.py speed [--mb 500] [--runs 3]
    .venv/bin/python benchmarks/archive_download.py scale [--files 200000] [--mb 2] [--runs 7]
    .venv/bin/python benchmarks/archive_download.py s3 [--mb 100] [--runs 3]

`speed`: a `--mb` download from a loopback HTTP server (another process, sendfile) into the local archive
(media.transfer.download, what the poller runs) against a raw httpx2 stream copy (`aiter_raw` into an open
file) of the same URL. Each trial runs in a fresh child process, which reports its time and the RSS it
grew by. Goal: ≥ 0.9× the raw speed, ≤ 20 MB more RSS.
`scale`: the same download into an archive folder already holding `--files` files against an empty one.
Goal: ratio ≈ 1 (no write lists the folder).
`s3`: the download into the object-store archive (moto's S3 server, another process) against a raw obstore
put of the same bytes from a local file, and against a raw stream of the same URL into `obstore.put_async`.
Prints medians and ratios; compare the ratios, not the seconds (they vary with the machine and its load).
The result check (PyAV opening the video) is left out: the bytes served are not a video.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2

SERVER = r"""
import os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
path = sys.argv[1]
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header("content-type", "video/mp4")
        self.send_header("content-length", str(size))
        self.end_headers()
        with open(path, "rb") as f:
            self.connection.sendfile(f)
    def log_message(self, *a):
        pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@contextlib.contextmanager
def served(path: Path) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield f"http://127.0.0.1:{proc.stdout.readline().strip()}"
    finally:
        proc.terminate()
        proc.wait()


def make_file(folder: Path, mb: int) -> Path:
    path = folder / "source.bin"
    block = os.urandom(1024 * 1024)
    with path.open("wb") as out:
        for _ in range(mb):
            out.write(block)
    return path


async def _raw(url: str, dest: Path) -> None:
    async with httpx2.AsyncClient() as client, client.stream("GET", url) as response:
        with dest.open("wb") as out:
            async for chunk in response.aiter_raw():
                out.write(chunk)


async def _archive(url: str, dest: Path) -> None:
    from aleph_mcp.media.archive import LocalArchive
    from aleph_mcp.media.fetch import FetchPolicy
    from aleph_mcp.media.transfer import download

    archive = LocalArchive(dest.parent)
    async with httpx2.AsyncClient() as client:
        policy = FetchPolicy.trusting([url])
        await download(client, url, str(dest), archive=archive, policy=policy, what="file")


def one(kind: str, url: str, dest: str) -> None:
    """A child process's trial: prints {"seconds", "rss_mb"} (peak RSS growth while it ran)."""
    import aleph_mcp.media.transfer  # noqa: F401  (imports before the baseline RSS)

    before = rss_kb()
    start = time.perf_counter()
    anyio.run(_raw if kind == "raw" else _archive, url, Path(dest))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "rss_mb": max(0, peak - before) / 1024}))


def trial(kind: str, url: str, dest: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "_one", kind, url, str(dest)], capture_output=True, text=True, check=True
    )
    dest.unlink(missing_ok=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def speed(mb: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "archive").mkdir()
        with served(make_file(folder, mb)) as origin:
            url = f"{origin}/ed_bench.mp4"
            results: dict[str, list[dict[str, float]]] = {"raw": [], "archive": []}
            for _ in range(runs):  # interleaved: load on the machine hits both alike
                for kind in results:
                    results[kind].append(trial(kind, url, folder / "archive" / "ed_bench.mp4"))
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in results.items()}
    rss = {k: statistics.median(r["rss_mb"] for r in v) for k, v in results.items()}
    print(f"{mb} MB download, {runs} runs each (medians)")
    for kind in results:
        print(f"  {kind:8s} {med[kind]:.3f} s  {mb / med[kind]:7.1f} MB/s  RSS +{rss[kind]:.1f} MB")
    print(f"  archive speed / raw speed: {med['raw'] / med['archive']:.2f}x (goal >= 0.9)")
    print(f"  archive RSS - raw RSS: {rss['archive'] - rss['raw']:+.1f} MB (goal <= 20)")


def scale(files: int, mb: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        empty, full = folder / "empty", folder / "full"
        empty.mkdir()
        full.mkdir()
        for n in range(files):  # what a busy archive holds: videos, thumbnails
            (full / f"ed_{n:020x}.{'mp4' if n % 2 else 'thumb.jpg'}").touch()
        with served(make_file(folder, mb)) as origin:
            url = f"{origin}/ed_bench.mp4"
            times: dict[str, list[float]] = {"empty": [], "full": []}
            for _ in range(runs):
                for kind, where in (("empty", empty), ("full", full)):
                    times[kind].append(trial("archive", url, where / "ed_bench.mp4")["seconds"])
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{mb} MB download into an archive folder, {runs} runs each (medians)")
    print(f"  empty archive          {med['empty'] * 1000:.1f} ms")
    print(f"  archive of {files:,} files {med['full'] * 1000:.1f} ms")
    print(f"  full / empty: {med['full'] / med['empty']:.2f}x (goal ~1: independent of archive size)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto() -> Iterator[dict[str, str]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench-secret",
    }
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx2.put(f"{env['AWS_ENDPOINT_URL']}/bench", timeout=2).raise_for_status()
                break
            except httpx2.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield env
    finally:
        proc.terminate()
        proc.wait()


async def s3_trials(env: dict[str, str], url: str, source: Path, runs: int) -> dict[str, list[float]]:
    import obstore

    from aleph_mcp.media.fetch import FetchPolicy
    from aleph_mcp.media.objectstore import PART_SIZE, S3Archive
    from aleph_mcp.media.transfer import download

    archive = S3Archive.from_url("s3://bench/archive", env)
    times: dict[str, list[float]] = {"put file": [], "put stream": [], "archive": []}
    async with httpx2.AsyncClient() as client:

        async def put_stream() -> None:
            async with client.stream("GET", url) as response:
                await obstore.put_async(archive.store, "raw2.mp4", response.aiter_raw(), chunk_size=PART_SIZE)

        async def archived() -> None:
            loc = archive.video_location("ed_bench")
            await download(client, url, loc, archive=archive, policy=FetchPolicy.trusting([url]), what="file")

        async def put_file() -> None:
            await obstore.put_async(archive.store, "raw.mp4", source, chunk_size=PART_SIZE)

        steps = {"put file": put_file, "put stream": put_stream, "archive": archived}
        for _ in range(runs):
            for kind, step in steps.items():
                start = time.perf_counter()
                await step()
                times[kind].append(time.perf_counter() - start)
    return times


def s3(mb: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, moto() as env:
        source = make_file(Path(tmp), mb)
        with served(source) as origin:
            times = anyio.run(s3_trials, env, f"{origin}/ed_bench.mp4", source, runs)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{mb} MB into the object store (moto), {runs} runs each (medians)")
    for kind, seconds in med.items():
        print(f"  {kind:10s} {seconds:.3f} s  {mb / seconds:7.1f} MB/s")
    print(f"  archive speed / raw put of the file: {med['put file'] / med['archive']:.2f}x")
    print(
        f"  archive speed / raw stream of the URL into put_async: {med['put stream'] / med['archive']:.2f}x"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_one":
        one(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--mb", type=int, default=500)
    p.add_argument("--runs", type=int, default=3)
    p = sub.add_parser("scale")
    p.add_argument("--files", type=int, default=200_000)
    p.add_argument("--mb", type=int, default=2)
    p.add_argument("--runs", type=int, default=7)
    p = sub.add_parser("s3")
    p.add_argument("--mb", type=int, default=100)
    p.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.what == "speed":
        speed(args.mb, args.runs)
    elif args.what == "scale":
        scale(args.files, args.mb, args.runs)
    else:
        s3(args.mb, args.runs)


if __name__ == "__main__":
    main()
