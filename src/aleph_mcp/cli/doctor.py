"""`aleph-mcp doctor`: checks the configuration and says what to fix. Keys are shown masked, never whole."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio

from aleph_mcp.config import Settings
from aleph_mcp.errors import AlephError
from aleph_mcp.providers.registry import PROVIDERS, REGISTRY, ProviderSpec
from aleph_mcp.redact import scrub_url_secrets
from aleph_mcp.store.factory import open_store, store_location
from aleph_mcp.store.pg_schema import MIGRATIONS as PG_MIGRATIONS

MIN_FREE_BYTES = 1024**3  # below this the archive check warns
ARCHIVE_PROBE_SECONDS = 30.0
BUCKET_FIX = (
    "check the bucket in ALEPH_MCP_ARCHIVE_URL exists and that AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
    "(and AWS_ENDPOINT_URL, AWS_REGION) allow writing to it"
)
# Seconds between this host's clock and the database's: beyond the first, leases may be taken early; beyond
# the second, a replica may take a lease its holder is still using.
MAX_CLOCK_SKEW, FAIL_CLOCK_SKEW = 2.0, 30.0


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail | off (an optional thing that is not set up)
    detail: str
    fix: str = ""


def mask_key(key: str) -> str:
    """`key_…abcd`: at most the last 4 characters, fewer for short keys, nothing for very short ones."""
    shown = min(4, len(key) // 4)
    return "key_…" + (key[-shown:] if shown else "")


def provider_checks(settings: Settings) -> list[Check]:
    checks = [_provider_check(settings, spec) for spec in PROVIDERS]
    default = REGISTRY[settings.resolved_default_provider]
    if not default.capabilities.needs_key or settings.api_key(default.name):
        checks.append(Check("default provider", "ok", default.name))
    else:
        checks.append(
            Check(
                "default provider",
                "fail",
                f"{default.name} has no key",
                f"set {default.key_env[0]}, or change ALEPH_MCP_DEFAULT_PROVIDER",
            )
        )
    return checks


def _provider_check(settings: Settings, spec: ProviderSpec) -> Check:
    name = f"provider {spec.name}"
    if not spec.capabilities.needs_key:
        return Check(name, "ok", f"{spec.about}, no key needed")
    base = settings.base_url(spec.name)
    where = "" if base == spec.urls[0].default.rstrip("/") else f", base URL {base}"
    if key := settings.api_key(spec.name):
        return Check(name, "ok", f"{mask_key(key)}{where}")
    first, *others = spec.key_env
    variables = first + (f" (or {', '.join(others)})" if others else "")
    return Check(name, "off", f"no key{where}", f"to use {spec.name}, set {variables}")


def _write_probe(folder: Path) -> None:
    """Create the folder and write (then remove) a small file in it; raises OSError when it cannot."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".doctor-{uuid.uuid4().hex[:8]}"
    probe.write_bytes(b"ok")
    probe.unlink()


def data_dir_check(settings: Settings) -> Check:
    folder = settings.data_dir
    try:
        _write_probe(folder)
    except OSError as exc:
        return Check(
            "data dir",
            "fail",
            f"{folder}: {exc.strerror or exc}",
            "set ALEPH_MCP_DATA_DIR to a folder you can write to",
        )
    return Check("data dir", "ok", f"{folder} (writable)")


async def store_check(settings: Settings) -> Check:
    where = store_location(settings)  # a database URL without its password
    try:
        store = await open_store(settings)
        try:
            latest, _ = await store.list_edits(limit=1)
            unfinished, _ = await store.list_edits(status="running", limit=100)
        finally:
            await store.close()
    except Exception as exc:  # sqlite3, PostgreSQL and OS errors alike: report, do not crash the doctor
        reason = scrub_url_secrets(f"{type(exc).__name__}: {exc}", _url(settings))
        if settings.store_url is not None:
            fix = "check ALEPH_MCP_STORE_URL: the server, database, user and password, and that it is up"
        else:
            fix = f"move {where} aside (the archive stays) or point ALEPH_MCP_DATA_DIR elsewhere"
        return Check("store", "fail", f"{where}: {reason}", fix)
    newest = f"latest edit {latest[0].edit_id} ({latest[0].status})" if latest else "no edits yet"
    return Check("store", "ok", f"{where}: {newest}, {len(unfinished)} running")


def _url(settings: Settings) -> str:
    return settings.store_url.get_secret_value() if settings.store_url is not None else ""


async def database_checks(settings: Settings) -> list[Check]:
    """With ALEPH_MCP_STORE_URL: the schema version, and this host's clock against the database's (leases
    are times from each replica's clock, so replicas whose clocks disagree take each other's leases early)."""
    if settings.store_url is None:
        return []
    from aleph_mcp.store.postgres import PostgresEditStore

    where = store_location(settings)
    try:
        store = await PostgresEditStore.open(_url(settings), timeout=settings.request_timeout)
    except Exception:
        return []  # the store check says why
    try:
        version = await store.schema_version()
        before = time.time()
        db_now = await store.database_time()
        skew = db_now - (before + time.time()) / 2
    finally:
        await store.close()
    checks = [Check("database schema", "ok", f"{where}: version {version} of {len(PG_MIGRATIONS)}")]
    detail = f"this host's clock is {abs(skew):.2f} s {'behind' if skew > 0 else 'ahead of'} the database's"
    if abs(skew) > MAX_CLOCK_SKEW:
        fix = "synchronise the clocks (NTP) of every replica and the database server: leases rely on them"
        checks.append(Check("lease clock", "fail" if abs(skew) > FAIL_CLOCK_SKEW else "warn", detail, fix))
    else:
        checks.append(Check("lease clock", "ok", detail))
    return checks


def media_checks() -> list[Check]:
    """PyAV with the encoder and filters the local provider uses, and Pillow for watermarks."""
    from aleph_mcp.providers.local.render import REQUIRED_FILTERS

    checks = []
    try:
        import av

        needed = set(REQUIRED_FILTERS)
        missing = sorted(needed - set(av.filter.filters_available))
        try:
            av.codec.Codec("libx264", "w")
            encoder = "libx264 encoder"
        except Exception:
            encoder = ""
        problems = ([] if encoder else ["no libx264 encoder"]) + (
            [f"missing filters: {', '.join(missing)}"] if missing else []
        )
        detail = f"PyAV {av.__version__}: " + ("; ".join(problems) or f"{encoder}, {len(needed)} filters")
        fix = "reinstall PyAV from its wheels (pip install --force-reinstall av), which bundle FFmpeg"
        checks.append(Check("pyav", "fail" if problems else "ok", detail, fix if problems else ""))
    except ImportError:
        checks.append(Check("pyav", "fail", "PyAV is not installed", "pip install av"))
    try:
        import PIL
        from PIL import features

        text = "FreeType fonts" if features.check("freetype2") else "bitmap font only (no FreeType)"
        checks.append(Check("pillow", "ok", f"Pillow {PIL.__version__}: watermarks with {text}"))
    except ImportError:
        checks.append(Check("pillow", "fail", "Pillow is not installed", "pip install pillow"))
    return checks


def allowed_dirs_check(settings: Settings) -> Check:
    dirs = settings.allowed_dir_paths
    if not dirs:
        return Check(
            "allowed dirs",
            "warn",
            "not set: MCP clients cannot pass local files (the CLI allows the video's own folder)",
            "set ALEPH_MCP_ALLOWED_DIRS to the folder(s) with your videos",
        )
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        return Check(
            "allowed dirs",
            "fail",
            f"not a folder: {os.pathsep.join(missing)}",
            "create the folder(s) or fix ALEPH_MCP_ALLOWED_DIRS",
        )
    return Check("allowed dirs", "ok", os.pathsep.join(str(d) for d in dirs))


def key_checks(settings: Settings) -> list[Check]:
    """A key that cannot go in an HTTP header (a pasted line break) would fail every request."""
    return [
        Check(
            f"key {name}",
            "fail",
            f"{mask_key(settings.api_key(name) or '')} holds a line break, control or non-ASCII character",
            f"set ALEPH_MCP_{name.upper()}_API_KEY again without it",
        )
        for name in settings.bad_keys()
    ]


async def archive_check(settings: Settings) -> Check:
    """The archive must take a write: an object store gets a probe object put and deleted."""
    if not settings.archive_url:
        return local_archive_check(settings)
    from aleph_mcp.app import open_archive

    try:
        with anyio.fail_after(ARCHIVE_PROBE_SECONDS):
            detail = await open_archive(settings).check_writable()
    except AlephError as exc:
        return Check("archive", "fail", exc.message, BUCKET_FIX)
    except TimeoutError:
        return Check("archive", "fail", f"no answer in {ARCHIVE_PROBE_SECONDS:.0f} s", BUCKET_FIX)
    return Check("archive", "ok", detail)


def local_archive_check(settings: Settings) -> Check:
    """The folder must take a write and have room for videos (a full disk fails edits at their end)."""
    folder = settings.archive_dir
    try:
        _write_probe(folder)
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return Check(
            "archive", "fail", f"{folder}: {exc.strerror or exc}", "make the archive folder writable"
        )
    detail = f"{folder} (writable, {free / 1024**3:.1f} GB free)"
    if free < MIN_FREE_BYTES:
        return Check("archive", "warn", detail, "free some disk space: finished videos are saved here")
    return Check("archive", "ok", detail)


async def run_checks(settings: Settings) -> list[Check]:
    return [
        *provider_checks(settings),
        *key_checks(settings),
        data_dir_check(settings),
        await archive_check(settings),
        await store_check(settings),
        *await database_checks(settings),
        *media_checks(),
        allowed_dirs_check(settings),
    ]


def report(checks: list[Check], settings: Settings) -> dict[str, Any]:
    """The doctor's JSON: every check, plus a summary per provider (keys masked)."""
    providers: dict[str, dict[str, Any]] = {}
    for spec in PROVIDERS:
        key = settings.api_key(spec.name)
        configured = bool(key) or not spec.capabilities.needs_key
        providers[spec.name] = {"configured": configured, "key": mask_key(key) if key else None}
    return {
        "ok": not any(c.status == "fail" for c in checks),
        "default_provider": settings.resolved_default_provider,
        "data_dir": str(settings.data_dir),
        "providers": providers,
        "checks": [asdict(c) for c in checks],
    }
