"""Registry metadata, README and examples agree with the package; the wheel carries what it must."""

from __future__ import annotations

import json
import re
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
from hatchling.builders.wheel import WheelBuilder

import aleph_mcp
from aleph_mcp.config import Settings

ROOT = Path(__file__).resolve().parents[1]

# The parts of the registry's 2025-12-11 server.schema.json that a PyPI/stdio entry relies on.
SERVER_SCHEMA = {
    "type": "object",
    "required": ["name", "description", "version"],
    "properties": {
        "$schema": {"const": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"},
        "name": {
            "type": "string",
            "pattern": r"^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$",
            "minLength": 3,
            "maxLength": 200,
        },
        "description": {"type": "string", "minLength": 1, "maxLength": 100},
        "title": {"type": "string", "maxLength": 100},
        "version": {"type": "string", "not": {"pattern": r"[\^~<>=*]|latest"}},
        "packages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["registryType", "identifier", "transport"],
                "properties": {
                    "registryType": {"const": "pypi"},
                    "registryBaseUrl": {"const": "https://pypi.org"},
                    "version": {"type": "string", "not": {"const": "latest"}},
                    "transport": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"const": "stdio"}},
                    },
                    "environmentVariables": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string"},
                                "isSecret": {"type": "boolean"},
                                "format": {"enum": ["string", "number", "boolean", "filepath"]},
                            },
                            "additionalProperties": True,
                        },
                    },
                },
            },
        },
    },
}


def load_server_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "server.json").read_text())
    return data


def test_server_json_is_a_valid_registry_entry() -> None:
    """server.json passes the registry schema's rules for a PyPI stdio server."""
    jsonschema.validate(load_server_json(), SERVER_SCHEMA)


def test_versions_and_name_agree_across_pyproject_server_json_readme_and_code() -> None:
    """One version everywhere; the README carries the mcp-name marker that proves PyPI ownership."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    server = load_server_json()
    package = server["packages"][0]
    assert server["version"] == package["version"] == pyproject["version"] == aleph_mcp.__version__
    assert package["identifier"] == pyproject["name"]
    marker = re.search(r"mcp-name: (\S+)", (ROOT / "README.md").read_text())
    assert marker is not None and marker.group(1) == server["name"]


def test_every_key_variable_is_declared_secret_and_real() -> None:
    """Each API key variable in server.json is marked secret and is one the server really reads."""
    package = load_server_json()["packages"][0]
    names = {v["name"]: v for v in package["environmentVariables"]}
    keys = [name for name in names if name.endswith("_API_KEY")]
    assert sorted(keys) == sorted(
        f"ALEPH_MCP_{p}_API_KEY" for p in ("KIE", "AIMLAPI", "CRUN", "KREA", "RUNWAY")
    )
    assert all(names[k]["isSecret"] is True for k in keys)
    fields = set(Settings.model_fields)
    for name in names:
        assert name.removeprefix("ALEPH_MCP_").lower() in fields, name


def test_client_config_examples_parse_and_start_the_server() -> None:
    """The Claude Desktop and VS Code examples are valid JSON that launch aleph-mcp with a key in env."""
    desktop = json.loads((ROOT / "examples" / "claude_desktop_config.json").read_text())["mcpServers"][
        "aleph"
    ]
    vscode = json.loads((ROOT / "examples" / "vscode_mcp.json").read_text())["servers"]["aleph"]
    for entry in (desktop, vscode):
        assert entry["args"] == ["aleph-mcp"]
        assert "ALEPH_MCP_RUNWAY_API_KEY" in entry["env"]
    assert "uvx aleph-mcp" in (ROOT / "examples" / "claude_code.sh").read_text()


def test_the_readme_documents_every_configuration_variable() -> None:
    """Each setting has a row in the README's configuration table."""
    readme = (ROOT / "README.md").read_text()
    for field in Settings.model_fields:
        if field.endswith(("_api_key", "_base_url")):
            continue  # documented as the ALEPH_MCP_<P>_... pattern rows
        assert f"ALEPH_MCP_{field.upper()}" in readme, field


def test_the_wheel_ships_the_typing_marker_and_the_price_table(tmp_path: Path) -> None:
    """A wheel built from this tree carries py.typed (PEP 561) and the bundled prices.json."""
    (wheel,) = WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"])
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "aleph_mcp/py.typed" in names
    assert "aleph_mcp/pricing/prices.json" in names
    assert not any("__pycache__" in name for name in names)


def test_the_suite_refuses_to_reach_beyond_loopback() -> None:
    """The conftest guard turns any connect or lookup outside 127.0.0.0/8 into an error."""
    import socket

    import pytest

    with (
        pytest.raises(OSError, match="never leave loopback"),
        socket.create_connection(("192.0.2.1", 443), 1),
    ):
        pass
    with pytest.raises(OSError, match="never leave loopback"):
        socket.getaddrinfo("example.com", 443)
