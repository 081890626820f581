"""The Claude Desktop extension: its manifest agrees with the package, and the unpacked bundle really serves.

`make test` builds the bundle with the official `mcpb` CLI, validates it, packs it, unpacks the packed
file and installs the bundle's environment with uv (`make mcpb-check`). The stdio test here then starts the
unpacked server the way the desktop app does: the manifest's `mcp_config` with its variables substituted (by
the rules of the mcpb reference code: an unset setting stays a literal `${user_config.…}`, a multiple
directory setting expands into arguments), run by uv with `--offline --frozen` so nothing is fetched.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from .conftest import TEST_KEY
from .media import make_clip

ROOT = Path(__file__).resolve().parents[1]
MANIFEST: dict[str, Any] = json.loads((ROOT / "mcpb" / "manifest.json").read_text())
# Read at import: the autouse fixture clears ALEPH_MCP_* variables before each test.
BUNDLE_DIR = Path(os.environ.get("ALEPH_MCP_BUNDLE_DIR", ROOT / "build" / "mcpb" / "unpacked"))
PROVIDERS = ("KIE", "AIMLAPI", "CRUN", "KREA", "RUNWAY")
TOOLS = ["edit_video", "get_edit_status", "list_edits", "cancel_edit", "list_providers"]


def launcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bundle_main", ROOT / "mcpb" / "main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def substitute(value: Any, variables: dict[str, str | list[str]]) -> Any:
    """The mcpb reference `replaceVariables`: strings in place, a whole-item array variable expanded."""
    if isinstance(value, str):
        for key, replacement in variables.items():
            if isinstance(replacement, str):
                value = value.replace("${" + key + "}", replacement)
        return value
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            name = item[2:-1] if isinstance(item, str) and item.startswith("${user_config.") else None
            if name is not None and item.endswith("}") and name in variables:
                replacement = variables[name]
                out.extend(replacement if isinstance(replacement, list) else [replacement])
            else:
                out.append(substitute(item, variables))
        return out
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    return value


def find_uv() -> str:
    for candidate in (Path(sys.executable).parent / "uv", ROOT / ".venv" / "bin" / "uv"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("uv")
    assert found, "uv is needed to run the bundle: `make venv` installs it into .venv"
    return found


def test_the_manifest_agrees_with_pyproject_and_server_json() -> None:
    """Same version and description; the uv type runs the staged entry point; Python floor as pyproject's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    server = json.loads((ROOT / "server.json").read_text())
    assert MANIFEST["manifest_version"] == "0.4"  # the first spec version with server.type "uv"
    assert MANIFEST["version"] == project["version"] == server["version"]
    assert MANIFEST["description"] == server["description"]
    assert MANIFEST["license"] == project["license"]
    assert MANIFEST["server"]["type"] == "uv"
    assert MANIFEST["server"]["entry_point"] == "server/main.py"
    config = MANIFEST["server"]["mcp_config"]
    assert config["command"] == "uv"
    assert config["args"][:4] == ["run", "--directory", "${__dirname}", MANIFEST["server"]["entry_point"]]
    assert MANIFEST["compatibility"]["runtimes"]["python"] == project["requires-python"]
    assert (ROOT / "mcpb" / MANIFEST["icon"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_icon_is_a_512_pixel_png() -> None:
    from PIL import Image

    with Image.open(ROOT / "mcpb" / "icon.png") as icon:
        assert (icon.format, icon.size) == ("PNG", (512, 512))


def test_each_provider_key_is_an_optional_sensitive_setting_passed_in_env() -> None:
    """Five optional, masked string settings, each mapped to the variable the server reads."""
    settings = MANIFEST["user_config"]
    env = MANIFEST["server"]["mcp_config"]["env"]
    for provider in PROVIDERS:
        key = f"{provider.lower()}_api_key"
        assert settings[key]["type"] == "string"
        assert settings[key]["sensitive"] is True and settings[key]["required"] is False
        assert env[f"ALEPH_MCP_{provider}_API_KEY"] == "${user_config." + key + "}"
    assert set(env) == {f"ALEPH_MCP_{p}_API_KEY" for p in PROVIDERS}


def test_the_allowed_folders_are_a_multiple_directory_picker_passed_as_arguments() -> None:
    """The app expands a multiple setting only into arguments; the launcher turns them into the variable."""
    folders = MANIFEST["user_config"]["allowed_dirs"]
    assert (folders["type"], folders["multiple"], folders["required"]) == ("directory", True, False)
    assert MANIFEST["server"]["mcp_config"]["args"][-1] == "${user_config.allowed_dirs}"


def test_the_manifest_lists_the_five_tools() -> None:
    assert [tool["name"] for tool in MANIFEST["tools"]] == TOOLS
    assert all(tool["description"] for tool in MANIFEST["tools"])


def test_the_launcher_maps_folders_and_drops_unset_settings() -> None:
    """Folder arguments become ALEPH_MCP_ALLOWED_DIRS; empty and placeholder settings are removed."""
    prepare = launcher().prepare
    environ = {
        "ALEPH_MCP_RUNWAY_API_KEY": "key_1",
        "ALEPH_MCP_KIE_API_KEY": "${user_config.kie_api_key}",
        "ALEPH_MCP_KREA_API_KEY": "",
        "PATH": "/bin",
    }
    prepare(["/a", "/b c", "${user_config.allowed_dirs}"], environ)
    assert environ == {
        "ALEPH_MCP_RUNWAY_API_KEY": "key_1",
        "ALEPH_MCP_ALLOWED_DIRS": os.pathsep.join(["/a", "/b c"]),
        "PATH": "/bin",
    }
    untouched = {"ALEPH_MCP_ALLOWED_DIRS": "/x"}
    prepare(["${user_config.allowed_dirs}"], untouched)  # no folder picked: the variable is left alone
    assert untouched == {"ALEPH_MCP_ALLOWED_DIRS": "/x"}


def test_the_staged_bundle_has_the_package_and_a_pyproject_with_its_dependencies(tmp_path: Path) -> None:
    """scripts/build_mcpb.py stages manifest, icon, licence, entry point, the source and the runtime deps."""
    spec = importlib.util.spec_from_file_location("build_mcpb", ROOT / "scripts" / "build_mcpb.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    stage = build.stage(tmp_path / "stage")
    for name in ("manifest.json", "icon.png", "LICENSE", "README.md", "server/main.py"):
        assert (stage / name).is_file(), name
    assert (stage / "server" / "aleph_mcp" / "__init__.py").is_file()
    assert not list(stage.rglob("__pycache__"))
    staged = tomllib.loads((stage / "pyproject.toml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert staged["project"]["dependencies"] == project["dependencies"]
    assert staged["project"]["requires-python"] == project["requires-python"]
    assert staged["tool"]["uv"]["package"] is False


async def test_the_unpacked_bundle_answers_initialize_and_tools_list(tmp_path: Path) -> None:
    """The packed, unpacked bundle starts under uv as the app starts it, and serves the manifest's tools."""
    assert (BUNDLE_DIR / "manifest.json").is_file() and (BUNDLE_DIR / ".venv").is_dir(), (
        f"no unpacked bundle with its environment at {BUNDLE_DIR}: run `make mcpb-check` (`make test` does)"
    )
    unpacked = json.loads((BUNDLE_DIR / "manifest.json").read_text())
    assert unpacked == MANIFEST
    allowed = tmp_path / "movies"
    allowed.mkdir()
    inside, outside = make_clip(allowed / "in.mp4"), make_clip(tmp_path / "out.mp4")
    variables: dict[str, str | list[str]] = {
        "__dirname": str(BUNDLE_DIR),
        "user_config.runway_api_key": TEST_KEY,  # the only setting filled in; the others stay unset
        "user_config.allowed_dirs": [str(allowed)],
    }
    config = substitute(MANIFEST["server"]["mcp_config"], variables)
    assert config["command"] == "uv"
    # `uv run --offline --frozen …`: the environment `make mcpb-check` installed is used, nothing is fetched.
    args = ["run", "--offline", "--frozen", *config["args"][1:]]
    env = {
        **config["env"],
        "ALEPH_MCP_DATA_DIR": str(tmp_path / "data"),
        "ALEPH_MCP_PROBE_URLS": "false",
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "UV_PYTHON_DOWNLOADS": "never",
    }
    assert env["ALEPH_MCP_KIE_API_KEY"] == "${user_config.kie_api_key}"  # what the app passes for unset
    params = StdioServerParameters(command=find_uv(), args=args, env=env)
    with (tmp_path / "server.log").open("w") as log:
        async with Client(stdio_client(params, errlog=log), mode="legacy") as client:
            info = client.server_info
            assert info is not None and (info.name, info.version) == ("aleph-mcp", MANIFEST["version"])
            tools = await client.list_tools()
            assert sorted(tool.name for tool in tools.tools) == sorted(TOOLS)

            providers = await client.call_tool("list_providers", {})
            assert not providers.is_error, providers.content
            catalog = providers.structured_content
            assert catalog is not None
            configured = {p["name"]: p["configured"] for p in catalog["providers"]}
            assert configured["runway"] is True and configured["local"] is True
            assert configured["kie"] is False and configured["krea"] is False  # placeholders were dropped

            ok = await client.call_tool(
                "edit_video", {"prompt": "mirror", "video": str(inside), "provider": "local", "dry_run": True}
            )
            assert not ok.is_error, ok.content
            refused = await client.call_tool(
                "edit_video",
                {"prompt": "mirror", "video": str(outside), "provider": "local", "dry_run": True},
            )
            assert refused.is_error


@pytest.mark.parametrize("name", ["server.json", "mcpb/manifest.json"])
def test_no_key_or_secret_value_is_committed_in_the_manifests(name: str) -> None:
    text = (ROOT / name).read_text()
    assert "key_" not in text.replace("_api_key", "")
