"""Print pip constraints that pin every runtime dependency of pyproject.toml (and the postgres extra's) to its
floor.

`mcp>=2.3,<2.4` becomes `mcp==2.3`; a dependency without a `>=` floor is an error, since the floors job
exists to prove that each declared floor really works. Used by `make floors`:

    python scripts/floors.py > floors.txt && pip install -c floors.txt -e '.[dev]'
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# name[extras] specifiers ; marker
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*?)\s*(;.*)?$")


def floor_pins(dependencies: list[str]) -> list[str]:
    """One `name==floor` line (with the requirement's marker, if any) per dependency."""
    pins = []
    for dependency in dependencies:
        match = REQUIREMENT.match(dependency)
        if match is None:
            raise ValueError(f"cannot parse requirement {dependency!r}")
        name, _extras, specifiers, marker = match.groups()
        floors = [s.strip()[2:].strip() for s in specifiers.split(",") if s.strip().startswith(">=")]
        if len(floors) != 1:
            raise ValueError(f"{dependency!r} needs exactly one '>=' floor")
        pins.append(f"{name}=={floors[0]}" + (f" {marker.strip()}" if marker else ""))
    return pins


def main(argv: list[str]) -> int:
    pyproject = Path(argv[1]) if len(argv) > 1 else ROOT / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text())["project"]
    # The optional stores' drivers too: the suite (dev) installs and tests them.
    dependencies = project["dependencies"] + project["optional-dependencies"]["postgres"]
    print("\n".join(floor_pins(dependencies)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
