"""Local input files are checked and used as the same file.

A path is checked (inside an allowed root after resolving symlinks, a regular file) and then opened, which
leaves a window in which a symlink can be swapped in. So the file is opened once, without following a
symlink at its last component, and the open descriptor itself is checked: a regular file, the same
(st_dev, st_ino) as the checked path, and (where the system says) a real path inside an allowed root. From
that descriptor a private copy is made in the data dir, hashed on the way; the probe, the upload and the local
render read only that copy, so whatever happens to the user's path afterwards never reaches a provider.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import stat
import time
from collections.abc import Sequence
from pathlib import Path

from aleph_mcp.errors import InvalidInput

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
)


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _opened_path(fd: int) -> Path | None:
    """The path the system says this descriptor has (Linux /proc); None where it cannot say."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None


def open_checked(real: Path, roots: Sequence[Path], what: str) -> int:
    """An open descriptor for `real` (already resolved and checked), checked again as opened."""
    try:
        fd = os.open(real, _FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidInput(
                f"`{what}` {str(real)!r} turned into a symlink after it was checked."
            ) from None
        raise InvalidInput(f"`{what}` file {str(real)!r} cannot be read ({exc.strerror or exc}).") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(f"`{what}` {str(real)!r} is not a regular file.")
        os.set_blocking(fd, True)
        resolved = [r.resolve() for r in roots]
        where = _opened_path(fd)
        try:
            named = os.stat(real)
            same = (named.st_dev, named.st_ino) == (info.st_dev, info.st_ino)
        except OSError:
            same = False
        if not same or real.resolve() != real or (where is not None and not _inside(where, resolved)):
            raise InvalidInput(f"`{what}` {str(real)!r} changed while it was being opened; try again.")
        return fd
    except BaseException:
        os.close(fd)
        raise


def private_copy(real: Path, roots: Sequence[Path], dest_dir: Path, what: str) -> tuple[Path, str, int]:
    """Copy the checked file into `dest_dir` (same name) from one open descriptor: (copy, sha256, size)."""
    fd = open_checked(real, roots, what)
    digest, size = hashlib.sha256(), 0
    dest_dir.mkdir(parents=True, exist_ok=True)
    copy = dest_dir / real.name
    try:
        with os.fdopen(fd, "rb") as source, open(copy, "xb") as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except OSError as exc:
        copy.unlink(missing_ok=True)
        raise InvalidInput(
            f"`{what}` file {real.name!r} could not be read ({exc.strerror or exc})."
        ) from None
    return copy, digest.hexdigest(), size


def sweep(inputs_dir: Path, older_than: float, now: float | None = None) -> int:
    """Remove private copies left behind (a process killed mid-call); returns how many folders went."""
    if not inputs_dir.is_dir():
        return 0
    cutoff = (now if now is not None else time.time()) - older_than
    removed = 0
    for folder in inputs_dir.iterdir():
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed
