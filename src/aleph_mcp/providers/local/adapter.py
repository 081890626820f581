"""The offline `local` provider: real FFmpeg filters through PyAV, run as a background job.

Each job is a folder with `job.json` (the state the adapter reports), its own copy of the input and
`output.mp4`. The render runs in a worker thread. If the process that started it dies, the next `poll` from
any process sees a stale heartbeat and renders it again, from the job's copy (never from the user's path,
which may have changed since): it is free and deterministic, so redoing it can never bill or differ. The
poller reads the result from the job folder (`output_file`) and removes the folder once it is archived.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Self

import anyio.to_thread
import httpx2

from aleph_mcp.errors import CannotCancel, InvalidInput, RemoteNotFound
from aleph_mcp.models import ASPECT_RATIOS, EditRequest, RemoteStatus
from aleph_mcp.providers.base import (
    Capabilities,
    ModelFacts,
    PreparedCreate,
    ProgressCallback,
    ProviderConfig,
    StatusTable,
    local_result_url,
)
from aleph_mcp.providers.local.words import parse_prompt

logger = logging.getLogger(__name__)

STATUS = StatusTable(
    "local",
    {
        "queued": "queued",
        "running": "running",
        "succeeded": "succeeded",
        "failed": "failed",
        "cancelled": "cancelled",
    },
)
CAPABILITIES = Capabilities(
    models=("ffmpeg",),
    aspect_ratios=frozenset(ASPECT_RATIOS),
    max_prompt_chars=2000,
    watermark=True,  # drawn with Pillow (watermark.Watermark)
    can_cancel=True,
    accepts_urls=False,
    reads_files_in_place=True,
    upload_max_bytes=2 * 1024**3,
    needs_key=False,
    quick_poll=(0.25, 1.0),  # a poll reads a small JSON file: a two-second render need not be a 5 s wait
    renders_in_process=True,
    typical_render="seconds",
)
MODEL_FACTS = {
    "ffmpeg": ModelFacts("Only the first 5 s are filtered (the same cap as the hosted providers).", 5),
}
STALE_AFTER = 15.0  # seconds without a heartbeat: the rendering process is gone


class LocalProvider:
    name = "local"
    capabilities = CAPABILITIES

    def __init__(self, jobs_dir: Path) -> None:
        self.jobs_dir = jobs_dir
        jobs_dir.mkdir(parents=True, exist_ok=True)
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, client: httpx2.AsyncClient, config: ProviderConfig) -> Self:
        return cls(config.data_dir / "local-jobs")  # nothing goes over HTTP

    # -- Provider protocol --------------------------------------------------------------------------
    def describe_create(self, request: EditRequest) -> PreparedCreate:
        """The render job `submit` would start; nothing is sent anywhere (method RENDER)."""
        source = Path(request.video)
        if not source.is_absolute() or not source.is_file():
            raise InvalidInput(
                "The local provider edits local files only; pass a path inside the allowed dirs."
            )
        notes = parse_prompt(request.prompt).describe()
        if request.watermark:
            from aleph_mcp.providers.local.watermark import drawable_text  # lazy: see _run

            drawable_text(request.watermark)  # refuses text no font here can draw, before anything starts
            notes += f"; watermark: {request.watermark!r} (bottom right)"
        spec = {
            "video": str(source),
            "prompt": request.prompt,
            "aspect_ratio": request.aspect_ratio,
            "watermark": request.watermark,
            "notes": notes,
        }
        return PreparedCreate(method="RENDER", url=self.jobs_dir.resolve().as_uri(), headers={}, body=spec)

    async def submit(self, request: EditRequest) -> str:
        spec = self.describe_create(request).body
        task_id = f"local-{uuid.uuid4().hex[:16]}"
        job_dir = self._job_dir(task_id)
        job_dir.mkdir(parents=True)
        source = Path(spec["video"])
        own = job_dir / f"input{source.suffix.lower()}"
        await anyio.to_thread.run_sync(_link_or_copy, source, own)
        job = {"status": "queued", **spec, "input": str(own), "progress": 0.0, "heartbeat": time.time()}
        self._write(task_id, job)
        self._start(task_id)
        return task_id

    async def poll(self, task_id: str) -> RemoteStatus:
        job = await anyio.to_thread.run_sync(self._read, task_id)
        if job["status"] in ("queued", "running") and self._stale(task_id, job):
            logger.info("local render restarted task_id=%s reason=renderer_lost", task_id)
            self._start(task_id)
        status = STATUS(job["status"])
        return RemoteStatus(
            status=status,
            progress=job.get("progress"),
            output_url=local_result_url(task_id) if status == "succeeded" else None,
            error_code="render_failed" if status == "failed" else None,
            error_message=job.get("error"),
            notes=job.get("notes"),
        )

    async def cancel(self, task_id: str) -> None:
        job = self._read(task_id)
        if job["status"] not in ("queued", "running"):
            raise CannotCancel(f"The local job has already ended ({job['status']}).")
        (self._job_dir(task_id) / "cancel").touch()

    async def upload(self, path: Path, *, on_progress: ProgressCallback | None = None) -> str:
        return str(path)  # nothing leaves the machine

    # -- RendersHere --------------------------------------------------------------------------------
    def output_file(self, task_id: str) -> Path:
        return self._job_dir(task_id) / "output.mp4"

    def discard(self, task_id: str) -> None:
        shutil.rmtree(self._job_dir(task_id), ignore_errors=True)

    # -- jobs ---------------------------------------------------------------------------------------
    def _job_dir(self, task_id: str) -> Path:
        if not task_id.startswith("local-") or "/" in task_id or ".." in task_id:
            raise RemoteNotFound(f"No local job {task_id!r}.")
        return self.jobs_dir / task_id

    def _read(self, task_id: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self._job_dir(task_id) / "job.json").read_text())
            return data
        except FileNotFoundError:
            raise RemoteNotFound(f"No local job {task_id!r}.") from None

    def _write(self, task_id: str, job: dict[str, Any]) -> None:
        path = self._job_dir(task_id) / "job.json"
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(job))
        os.replace(tmp, path)  # readers never see half a file

    def _stale(self, task_id: str, job: dict[str, Any]) -> bool:
        with self._lock:
            thread = self._threads.get(task_id)
        if thread is not None and thread.is_alive():
            return False
        renderer = job.get("pid")
        if isinstance(renderer, int) and renderer != os.getpid() and not _process_alive(renderer):
            return True  # e.g. `aleph-mcp edit --no-wait` exited: no need to wait for the heartbeat to age
        return time.time() - float(job.get("heartbeat", 0)) > STALE_AFTER

    def _start(self, task_id: str) -> None:
        with self._lock:
            if (t := self._threads.get(task_id)) is not None and t.is_alive():
                return
            thread = threading.Thread(
                target=self._run, args=(task_id,), name=f"render-{task_id}", daemon=True
            )
            self._threads[task_id] = thread
        thread.start()

    def _run(self, task_id: str) -> None:
        # Imported here: PyAV and numpy load only once something renders, not with the registry
        # (which config.py imports, so every command line would pay for them).
        from aleph_mcp.providers.local.render import render

        job = self._read(task_id)
        job_dir = self._job_dir(task_id)
        job.update(status="running", progress=0.0, heartbeat=time.time(), pid=os.getpid())
        self._write(task_id, job)

        def progress(fraction: float) -> None:
            job.update(progress=round(fraction, 3), heartbeat=time.time())
            self._write(task_id, job)

        partial = job_dir / "output.partial.mp4"
        try:
            sound = render(
                Path(job["input"]),  # the job's own copy: the path it was given may point elsewhere now
                partial,
                parse_prompt(job["prompt"]),
                aspect_ratio=job["aspect_ratio"],
                watermark=job.get("watermark"),
                on_progress=progress,
                cancelled=(job_dir / "cancel").exists,
            )
            os.replace(partial, job_dir / "output.mp4")
            job.update(
                status="succeeded", progress=1.0, notes="; ".join(filter(None, [job.get("notes"), *sound]))
            )
        except InterruptedError:
            job.update(status="cancelled", error="Cancelled on request.")
        except Exception as exc:  # a broken input must end the job, not leave it running forever
            logger.warning("local render failed task_id=%s error=%s", task_id, exc)
            job.update(status="failed", error=f"The local render failed: {exc}")
        job["heartbeat"] = time.time()
        self._write(task_id, job)


def _link_or_copy(source: Path, dest: Path) -> None:
    """The job's own input: a hard link where the data dir allows one (no second copy of the bytes)."""
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


def _process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (the data dir is local)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    return True
