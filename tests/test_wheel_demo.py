"""From an install, not a checkout: the built wheel in a fresh environment runs `aleph-mcp demo`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).with_name("uv")


def run(*args: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALEPH_MCP_", "VIRTUAL_ENV", "PYTHON"))}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_the_installed_wheel_runs_the_demo_without_a_checkout(tmp_path: Path) -> None:
    """Build the wheel, install it into a new venv (uv), run the demo from an empty folder: a real video."""
    built = run(UV, "build", "--wheel", "--out-dir", tmp_path / "dist", ROOT, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("aleph_mcp-*.whl")
    venv = tmp_path / "venv"
    made = run(UV, "venv", "--quiet", "--python", sys.executable, venv, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = run(UV, "pip", "install", "--quiet", "--python", python, wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    demo = run(venv / "bin" / "aleph-mcp", "demo", "--data-dir", tmp_path / "demo", cwd=elsewhere)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    lines = dict(line.split(": ", 1) for line in demo.stdout.splitlines() if ": " in line)
    video = Path(lines["video"])
    assert not video.is_relative_to(ROOT) and Path(lines["thumbnail"]).is_file()
    with av.open(str(video)) as container:
        assert container.duration is not None and abs(container.duration / 1e6 - 2.0) < 1 / 24
        assert len(list(container.decode(video=0))) == 48
    located = run(python, "-c", "import aleph_mcp; print(aleph_mcp.__file__)", cwd=elsewhere)
    assert str(venv) in located.stdout  # the wheel's copy ran, not the checkout
