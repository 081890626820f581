"""Shared fixtures: settings in a temp data dir, real sample clips."""

from __future__ import annotations

from pathlib import Path

import pytest

from aleph_mcp.config import Settings

from .media import make_clip

TEST_KEY = "test-key-0123456789"


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings that ignore the developer's environment and .env file."""
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "allowed_dirs": str(tmp_path / "inputs"),
        "poll_interval": 0.05,
        "poll_max_interval": 0.2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def clip(inputs: Path) -> Path:
    return make_clip(inputs / "clip.mp4")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys or overrides in the developer's shell must not leak into tests."""
    import os

    for name in list(os.environ):
        if name.startswith("ALEPH_MCP_") or name in (
            "KIE_API_KEY",
            "AIMLAPI_API_KEY",
            "CRUN_API_KEY",
            "KREA_API_KEY",
            "RUNWAYML_API_SECRET",
        ):
            monkeypatch.delenv(name)
