"""Registry metadata, README and examples agree with the package; the wheel carries what it must."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest

import aleph_mcp
from aleph_mcp.config import Settings

ROOT = Path(__file__).resolve().parents[1]

# The registry's server.json schema, vendored (tests/schemas/README.md says which version and from where).
SCHEMA_PATH = ROOT / "tests" / "schemas" / "server.schema.json"
SUPPORTED = ["3.11", "3.12", "3.13"]


def server_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def schema_errors(document: object) -> list[str]:
    validator = jsonschema.Draft7Validator(server_schema(), format_checker=jsonschema.FormatChecker())
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def pyproject() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_server_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "server.json").read_text())
    return data


def test_server_json_is_a_valid_registry_entry() -> None:
    """server.json passes the vendored registry schema, which is the version its $schema names."""
    jsonschema.Draft7Validator.check_schema(server_schema())
    assert schema_errors(load_server_json()) == []
    schema_id = server_schema().get("$id")
    if schema_id is not None:  # the official file carries its published URL
        assert schema_id == load_server_json()["$schema"]
    assert "2025-12-11" in str(load_server_json()["$schema"])
    assert str(load_server_json()["$schema"]) in (ROOT / "tests" / "schemas" / "README.md").read_text()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("name",), "no-slash"),
        (("description",), "x" * 101),
        (("version",), "^0.1.0"),
        (("packages", 1, "fileSha256"), "not-a-hash"),
        (("packages", 0, "transport", "type"), "carrier-pigeon"),
        (("packages", 0, "enviromentVariables"), []),  # a misspelt field
    ],
)
def test_the_schema_check_catches_a_broken_entry(path: tuple[str | int, ...], value: object) -> None:
    """The schema test can fail: each of these edits of server.json is refused."""
    broken: Any = copy.deepcopy(load_server_json())
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert schema_errors(broken)


def test_an_mcpb_package_without_its_hash_is_refused() -> None:
    broken: Any = copy.deepcopy(load_server_json())
    del broken["packages"][1]["fileSha256"]
    assert schema_errors(broken)


def test_server_json_lists_the_bundle_at_its_release_url() -> None:
    """The second package is the .mcpb release asset of this version, with a SHA-256 slot."""
    packages = load_server_json()["packages"]
    assert isinstance(packages, list)
    assert [p["registryType"] for p in packages] == ["pypi", "mcpb"]
    bundle = packages[1]
    version = pyproject()["version"]
    assert bundle["identifier"] == (
        f"https://github.com/aleph-mcp/aleph-mcp/releases/download/v{version}/aleph-mcp-{version}.mcpb"
    )
    assert bundle["version"] == version and bundle["transport"] == {"type": "stdio"}
    assert re.fullmatch(r"[0-9a-f]{64}", bundle["fileSha256"])


def test_the_release_script_writes_the_bundle_hash(tmp_path: Path) -> None:
    """scripts/server_json.py puts a file's SHA-256 and the release URL into the mcpb package only."""
    script = load_module(ROOT / "scripts" / "server_json.py")
    bundle = tmp_path / "b.mcpb"
    bundle.write_bytes(b"bundle bytes")
    target = tmp_path / "server.json"
    target.write_text((ROOT / "server.json").read_text())
    assert script.main(["--mcpb", str(bundle), "--server-json", str(target), "--check"]) == 1
    assert script.main(["--mcpb", str(bundle), "--server-json", str(target)]) == 0
    assert script.main(["--mcpb", str(bundle), "--server-json", str(target), "--check"]) == 0
    written = json.loads(target.read_text())
    import hashlib

    assert written["packages"][1]["fileSha256"] == hashlib.sha256(b"bundle bytes").hexdigest()
    assert written["packages"][0] == load_server_json()["packages"][0]
    assert schema_errors(written) == []


def test_versions_and_name_agree_across_pyproject_server_json_readme_and_code() -> None:
    """One version everywhere; the README carries the mcp-name marker that proves PyPI ownership."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    server = load_server_json()
    package = server["packages"][0]
    assert server["version"] == package["version"] == pyproject["version"] == aleph_mcp.__version__
    assert package["identifier"] == pyproject["name"]
    marker = re.search(r"mcp-name: (\S+)", (ROOT / "README.md").read_text())
    assert marker is not None and marker.group(1) == server["name"]


@pytest.mark.parametrize("index", [0, 1])
def test_every_key_variable_is_declared_secret_and_real(index: int) -> None:
    """Each API key variable in server.json is marked secret and is one the server really reads."""
    package = load_server_json()["packages"][index]
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
    """The Claude Desktop, VS Code, Cursor and Claude Code project examples launch aleph-mcp with a key."""
    examples = ROOT / "examples"
    desktop = json.loads((examples / "claude_desktop_config.json").read_text())["mcpServers"]["aleph"]
    vscode = json.loads((examples / "vscode_mcp.json").read_text())["servers"]["aleph"]
    cursor = json.loads((examples / "cursor_mcp.json").read_text())["mcpServers"]["aleph"]
    project = json.loads((examples / "claude_code_project.mcp.json").read_text())["mcpServers"]["aleph"]
    for entry in (desktop, vscode, cursor, project):
        assert entry["args"] == ["aleph-mcp"]
        assert Path(entry["command"]).name == "uvx"
        assert "ALEPH_MCP_RUNWAY_API_KEY" in entry["env"]
    # A desktop app does not get the login shell's PATH ("spawn uvx ENOENT"): its example is absolute.
    assert Path(desktop["command"]).is_absolute()
    assert (vscode["type"], project["type"]) == ("stdio", "stdio")
    # Claude Code expands ${VAR} from the environment: the project file commits no key.
    assert project["env"]["ALEPH_MCP_RUNWAY_API_KEY"] == "${ALEPH_MCP_RUNWAY_API_KEY}"
    assert "uvx aleph-mcp" in (examples / "claude_code.sh").read_text()


def declared_inputs_cover_their_uses(config: dict[str, Any]) -> None:
    used = set(re.findall(r"\$\{input:([^}]+)\}", json.dumps(config)))
    declared = {i["id"]: i for i in config.get("inputs", [])}
    assert used and used <= set(declared), (used, declared)
    for name in used:
        assert declared[name]["type"] == "promptString" and declared[name]["password"] is True


def test_the_vscode_example_and_readme_snippet_declare_the_key_prompt() -> None:
    """Every ${input:…} the VS Code config uses has a password promptString in `inputs`."""
    declared_inputs_cover_their_uses(json.loads((ROOT / "examples" / "vscode_mcp.json").read_text()))
    readme = (ROOT / "README.md").read_text()
    snippet = re.search(r"\*\*VS Code\*\*.*?```json\n(.*?)```", readme, re.S)
    assert snippet is not None
    declared_inputs_cover_their_uses(json.loads(snippet.group(1)))


def test_every_readme_json_snippet_parses() -> None:
    for block in re.findall(r"```json\n(.*?)```", (ROOT / "README.md").read_text(), re.S):
        json.loads(block)


def test_the_readme_documents_every_configuration_variable() -> None:
    """Each setting has a row in the README's configuration table."""
    readme = (ROOT / "README.md").read_text()
    for field in Settings.model_fields:
        if field.endswith(("_api_key", "_base_url")):
            continue  # documented as the ALEPH_MCP_<P>_... pattern rows
        assert f"ALEPH_MCP_{field.upper()}" in readme, field


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


def test_each_dependency_has_a_floor_and_mcp_stays_in_the_tested_minor() -> None:
    """scripts/floors.py pins every runtime dependency; mcp is bounded to one minor series."""
    floors = load_module(ROOT / "scripts" / "floors.py")
    dependencies = pyproject()["dependencies"]
    pins = floors.floor_pins(dependencies)
    assert len(pins) == len(dependencies) and all("==" in pin for pin in pins)
    (mcp,) = [d for d in dependencies if re.match(r"mcp\b", d)]
    bounds = re.fullmatch(r"mcp>=(\d+)\.(\d+),<(\d+)\.(\d+)", mcp)
    assert bounds is not None, mcp
    major, minor, top_major, top_minor = map(int, bounds.groups())
    assert (top_major, top_minor) == (major, minor + 1)
    assert "anyio==4.10" in pins  # httpx2 needs anyio>=4.10, so no lower floor can be installed
    with pytest.raises(ValueError, match="floor"):
        floors.floor_pins(["numpy"])
    assert floors.floor_pins(["a>=1.2,<2; python_version < '3.13'"]) == ["a==1.2 ; python_version < '3.13'"]


def test_the_classifiers_name_each_supported_python_and_typing() -> None:
    classifiers = pyproject()["classifiers"]
    versions = [
        c.rsplit(" ", 1)[1]
        for c in classifiers
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert versions == SUPPORTED
    assert pyproject()["requires-python"] == f">={SUPPORTED[0]}"
    assert "Typing :: Typed" in classifiers and (ROOT / "src" / "aleph_mcp" / "py.typed").is_file()
    assert not [c for c in classifiers if c.startswith("License ::")]  # the SPDX `license` says it
    assert pyproject()["license"] == "MIT"
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def test_the_test_matrix_covers_each_supported_python() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^PYTHONS \?= " + " ".join(map(re.escape, SUPPORTED)) + "$", makefile, re.M)
    ci = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert all(f'"{v}"' in ci for v in SUPPORTED)


def test_the_sdist_and_wheel_carry_the_licence_and_the_typing_marker(tmp_path: Path) -> None:
    """A real build (hatchling, no network): LICENSE in both, py.typed and prices.json in the wheel."""
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    (sdist,) = tmp_path.glob("*.tar.gz")
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        metadata = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "aleph_mcp/py.typed" in names and "aleph_mcp/pricing/prices.json" in names
    assert not any("__pycache__" in name for name in names)
    assert (
        "License-Expression: MIT" in metadata
        and "Classifier: Programming Language :: Python :: 3.13" in metadata
    )
    with tarfile.open(sdist) as tar:
        members = tar.getnames()
    assert f"aleph_mcp-{pyproject()['version']}/LICENSE" in members
    assert f"aleph_mcp-{pyproject()['version']}/CHANGELOG.md" in members


def test_the_changelog_has_an_unreleased_section_and_this_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    assert re.search(
        rf"^## \[{re.escape(pyproject()['version'])}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M
    )
