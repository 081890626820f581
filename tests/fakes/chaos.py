"""Random faults at a configurable rate for the fake vendor APIs: the fault-injection suite's weather.

`Chaos(rate, faults={kind: (fault names...)})` attached to fakes answers a share `rate` of their requests
with one of the named faults:

- "429": Too Many Requests with a Retry-After header
- "500": an internal server error
- "hang": no answer until the client's timeout has long passed
- "drop": the connection is closed without an answer
- "malformed": HTTP 200 with a body that is not JSON
- "expired": 403 on a result file, as when a signed URL has lapsed
- "stall": a result file's headers and half its body, then nothing

A create meets only faults that come before the fake acts on it (a 429: no task is made), so every
create that fails was provably not made; losing the answer to a create that *was* made (outcome unknown)
belongs in targeted tests, not in weather. On status reads and files the other faults strike after the
fake has acted (the status read advanced the task, and only the answer is lost), as real outages do.

Deterministic: whether the n-th request for one target (one edit's create, status or file) faults is
decided by `seed`, the target and n alone, so thread scheduling does not change the run. `max_streak`
caps the faults in a row for one target, so every retry budget (three create attempts, three expired
URLs) is enough and every edit ends as its render did.
"""

from __future__ import annotations

import functools
import json
import random
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import httpx2

from .base import FAKE_VIDEO, FakeAPI, Fault, Recorded

FAULT_NAMES = ("429", "500", "hang", "drop", "malformed", "expired", "stall")


@dataclass
class Chaos:
    rate: float
    faults: Mapping[str, tuple[str, ...]]  # request kind -> the faults it may meet
    seed: int = 0
    hang_seconds: float = 2.0
    retry_after: str = "1"
    max_streak: int = 2
    injected: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, fault) -> times
    seen: Counter[str] = field(default_factory=Counter)  # requests of each kind it could have faulted

    def __post_init__(self) -> None:
        unknown = {name for names in self.faults.values() for name in names} - set(FAULT_NAMES)
        if unknown:
            raise ValueError(f"unknown fault names: {sorted(unknown)}")
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()  # per target
        self._streak: Counter[str] = Counter()  # per target

    def attach(self, fakes: Iterable[FakeAPI]) -> None:
        for fake in fakes:
            fake.chaos = functools.partial(self.pick, fake)

    def pick(self, fake: FakeAPI, kind: str, recorded: Recorded) -> Fault | None:
        names = self.faults.get(kind)
        if not names:
            return None
        target = self._target(fake, kind, recorded)
        with self._lock:
            self.seen[kind] += 1
            n = self._requests[target]
            self._requests[target] += 1
            draw = random.Random(f"{self.seed}:{target}:{n}")
            if self._streak[target] >= self.max_streak or draw.random() >= self.rate:
                self._streak[target] = 0
                return None
            self._streak[target] += 1
            name = draw.choice(names)
            self.injected[(kind, name)] += 1
        fault = self.fault(name)
        fault.after = kind != "create" and name != "429"
        return fault

    def fault(self, name: str) -> Fault:
        if name == "429":
            body = {"error": "Too many requests; slow down"}
            return Fault(status=429, body=body, headers={"Retry-After": self.retry_after})
        if name == "500":
            return Fault(status=500, body={"error": "Internal server error"})
        if name == "hang":
            return Fault(hang=self.hang_seconds)
        if name == "drop":
            return Fault(raise_exc=httpx2.RemoteProtocolError)
        if name == "malformed":
            return Fault(status=200, body=b'{"status": "RUNN', headers={"content-type": "application/json"})
        if name == "expired":
            return Fault(status=403, body=b"<Error><Code>AccessDenied</Code><Message>Request has expired")
        return Fault(hang=self.hang_seconds, partial=len(FAKE_VIDEO) // 2)  # "stall"

    @staticmethod
    def _target(fake: FakeAPI, kind: str, recorded: Recorded) -> str:
        """What a request is about, stable across runs: the create body, or the body of the task it names.

        Task ids are random, so a status read or a file is keyed by its task's create body instead.
        """
        where = recorded.path + "?" + "&".join(f"{k}={v}" for k, v in sorted(recorded.params.items()))
        about = recorded.body
        for task_id, task in list(fake.tasks.items()):
            if task_id in where:
                about = task.body
                break
        suffix = PurePosixPath(recorded.path).suffix if kind == "file" else ""
        return f"{fake.name}:{kind}{suffix}:{json.dumps(about, sort_keys=True, default=repr)}"

    @property
    def total(self) -> int:
        return sum(self.injected.values())
