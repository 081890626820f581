"""Start-up does only what serving needs: no PyAV, numpy or Pillow until a video or image is read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BUILD_THE_SERVER = """
import sys
from aleph_mcp.config import Settings
from aleph_mcp.server import create_server
create_server(Settings(_env_file=None, data_dir=sys.argv[1]))
print(" ".join(sorted({"av", "numpy", "PIL"} & set(sys.modules))))
"""


def test_building_the_server_imports_no_video_or_image_library(tmp_path: Path) -> None:
    """PyAV, numpy and Pillow load at the first probe, thumbnail or local render, not at start-up."""
    loaded = subprocess.run(
        [sys.executable, "-c", BUILD_THE_SERVER, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == ""
