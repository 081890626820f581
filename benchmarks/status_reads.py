"""What one status read costs the server's CPU: through httpx2, and through the app's aiohttp reads.

    .venv/bin/python benchmarks/status_reads.py [--reads 4000] [--rounds 5] [--concurrency 4]

A loopback fake of Runway's status endpoint runs in its own process (so its CPU is not counted); this
process reads `--reads` statuses with `RunwayProvider.poll`, `--concurrency` at once, once over a plain
`httpx2.AsyncClient` (the baseline: what every read cost before) and once over the app's `ReadingClient`
(providers/api_reads.py), in alternating rounds. Prints the median CPU microseconds per read of each
and their ratio. The poller's whole picture, with the store and the tool calls, is poller_scale.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from aleph_mcp.providers.api_reads import ApiReads, ReadingClient
from aleph_mcp.providers.runway import RunwayProvider

TASK = json.dumps({"id": "job-1", "status": "RUNNING", "progress": 0.5}).encode()
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(TASK),
    TASK,
)


class Fake(asyncio.Protocol):
    """A keep-alive HTTP/1.1 server that answers every request with one running task."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport, self.buffer = transport, b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            self.transport.write(ANSWER)


async def serve_fake() -> None:
    server = await asyncio.get_running_loop().create_server(Fake, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


async def cpu_per_read(client: httpx2.AsyncClient, origin: str, reads: int, concurrency: int) -> float:
    provider = RunwayProvider(client, api_key="key-benchmark", base_url=origin)

    async def reader(count: int) -> None:
        for _ in range(count):
            status = await provider.poll("job-1")
            assert status.status == "running"

    await reader(50)  # warm: connections open, the first read's imports done
    start = time.process_time()
    await asyncio.gather(*(reader(reads // concurrency) for _ in range(concurrency)))
    return (time.process_time() - start) / (reads // concurrency * concurrency)


async def measure(args: argparse.Namespace, origin: str) -> None:
    headers = {"user-agent": "aleph-mcp/benchmark"}
    samples: dict[str, list[float]] = {"httpx2": [], "aiohttp": []}
    async with (
        httpx2.AsyncClient(headers=headers) as plain,
        ReadingClient(reads=ApiReads(headers=headers, ssl_context=None), headers=headers) as reading,
    ):
        for _ in range(args.rounds):
            samples["httpx2"].append(await cpu_per_read(plain, origin, args.reads, args.concurrency))
            samples["aiohttp"].append(await cpu_per_read(reading, origin, args.reads, args.concurrency))
    baseline, now = statistics.median(samples["httpx2"]), statistics.median(samples["aiohttp"])
    print(
        f"{args.reads} status reads x {args.rounds} rounds, {args.concurrency} at once, CPU of this process:"
    )
    print(f"  httpx2 (baseline)     median {baseline * 1e6:6.0f} us a read")
    print(
        f"  aiohttp (api_reads)   median {now * 1e6:6.0f} us a read   x{now / baseline:.2f} of the baseline"
    )


def main() -> None:
    if sys.argv[1:] == ["fake"]:
        asyncio.run(serve_fake())
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    fake = subprocess.Popen([sys.executable, str(Path(__file__)), "fake"], stdout=subprocess.PIPE, text=True)
    try:
        assert fake.stdout is not None
        port = int(fake.stdout.readline())
        asyncio.run(measure(args, f"http://127.0.0.1:{port}"))
    finally:
        fake.terminate()
        fake.wait()


if __name__ == "__main__":
    main()
