# Everything a newcomer needs: `make demo` (offline edit end to end) and `make test` (the whole suite).
#
# `make test` runs lint, type checks and workflow lint once, builds and checks the Claude Desktop bundle, runs
# the official MCP conformance suite against `serve --http`, then the test suite on every supported Python
# (PYTHONS), against the newest mcp release, and with every dependency at its floor. A Python of PYTHONS
# missing from the machine is skipped with a warning, unless REQUIRE_PYTHONS=1 (CI sets it), which makes it an
# error.
SHELL := /bin/bash
PYTHON ?= $(shell scripts/find-python 3.11 || command -v python3)
PYTHONS ?= 3.11 3.12 3.13
# Jobs beyond the per-Python runs; they use the main (3.11) venv's interpreter.
EXTRA_JOBS ?= newest-mcp floors
REQUIRE_PYTHONS ?=
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -q -p no:cacheprovider
MAIN_VERSION = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')

# The Claude Desktop extension (.mcpb): built with the official CLI, pinned in packaging/node.
NODE_TOOLS := packaging/node
MCPB := $(NODE_TOOLS)/node_modules/.bin/mcpb
VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
BUNDLE = dist/aleph-mcp-$(VERSION).mcpb
BUNDLE_DIR := build/mcpb/unpacked
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1

.PHONY: venv postgres demo test lint typecheck actionlint conformance pytest matrix newest-mcp floors mcpb mcpb-check dist icon clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml packaging/tools.txt
	@test -n "$(PYTHON)" || { echo "error: no Python 3.11 found (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]' -r packaging/tools.txt
	touch $@

# One venv per extra Python: .venv-3.12, .venv-3.13 (the suite's dependencies only).
.venv-%/.installed: pyproject.toml packaging/tools.txt
	@py="$$(scripts/find-python $*)" || { echo "error: Python $* not found" >&2; exit 1; }; \
	  "$$py" -m venv .venv-$*
	.venv-$*/bin/python -m pip install -q --upgrade pip
	.venv-$*/bin/python -m pip install -q -e '.[dev]' -r packaging/tools.txt
	touch $@

# The newest mcp release, whatever pyproject's upper bound says: tells early when the SDK moves on.
.venv-newest-mcp/.installed: pyproject.toml packaging/tools.txt
	$(PYTHON) -m venv .venv-newest-mcp
	.venv-newest-mcp/bin/python -m pip install -q --upgrade pip
	.venv-newest-mcp/bin/python -m pip install -q -e '.[dev]' -r packaging/tools.txt
	.venv-newest-mcp/bin/python -m pip install -q -U mcp
	touch $@

# Every runtime dependency at its floor (scripts/floors.py turns `>=X` into `==X`).
.venv-floors/.installed: pyproject.toml scripts/floors.py packaging/tools.txt
	$(PYTHON) -m venv .venv-floors
	.venv-floors/bin/python -m pip install -q --upgrade pip
	$(PYTHON) scripts/floors.py > .venv-floors/floors.txt
	.venv-floors/bin/python -m pip install -q -c .venv-floors/floors.txt -e '.[dev]' -r packaging/tools.txt
	touch $@

# The suite's PostgreSQL tests start a throwaway cluster with the machine's initdb/pg_ctl (tests/postgres.py),
# or use ALEPH_MCP_TEST_POSTGRES_URL. Missing binaries are installed when we are root; otherwise those tests
# fail saying so (they are never skipped).
postgres:
	@if [ -z "$$ALEPH_MCP_TEST_POSTGRES_URL" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	    && ! command -v initdb >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; \
	  else echo "WARNING: no PostgreSQL binaries (initdb, pg_ctl): the PostgreSQL tests will fail" >&2; fi; \
	fi

demo: venv
	$(BIN)/python examples/pipeline.py --provider local --prompt "black and white, mirrored"

lint: venv
	$(BIN)/ruff check src tests examples benchmarks scripts mcpb
	$(BIN)/ruff format --check src tests examples benchmarks scripts mcpb
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

actionlint: venv
	$(BIN)/actionlint -color=false .github/workflows/*.yml

# The official MCP conformance suite against `serve --http`: Node 22 and the suite are pinned in
# packaging/conformance, the scenarios that need the suite's own fixtures in its expected-failures.yml.
conformance: venv
	scripts/conformance.sh

test: lint typecheck actionlint mcpb-check conformance
	@$(MAKE) --no-print-directory matrix

# The suite on every Python of PYTHONS (each in its own venv), then EXTRA_JOBS, MATRIX_JOBS at a time
# (scripts/matrix.sh); a time per job at the end.
MATRIX_JOBS ?= 2
matrix: venv postgres
	@PYTHONS="$(PYTHONS)" EXTRA_JOBS="$(EXTRA_JOBS)" BIN="$(BIN)" MAIN_VERSION="$(MAIN_VERSION)" \
	  BUNDLE_DIR="$(CURDIR)/$(BUNDLE_DIR)" PYTEST_ARGS="$(PYTEST_ARGS)" MATRIX_JOBS="$(MATRIX_JOBS)" \
	  REQUIRE_PYTHONS="$(REQUIRE_PYTHONS)" MAKE="$(MAKE)" scripts/matrix.sh

pytest: venv postgres
	ALEPH_MCP_BUNDLE_DIR=$(CURDIR)/$(BUNDLE_DIR) $(BIN)/python -m pytest $(PYTEST_ARGS)

newest-mcp floors: venv postgres
	@$(MAKE) --no-print-directory .venv-$@/.installed
	.venv-$@/bin/python -m pytest $(PYTEST_ARGS)

# --- the .mcpb bundle -------------------------------------------------------------------------------
$(MCPB): $(NODE_TOOLS)/package.json $(NODE_TOOLS)/package-lock.json
	npm ci --prefix $(NODE_TOOLS) --no-audit --no-fund --loglevel=error
	touch $@

icon: venv
	$(BIN)/python scripts/make_icon.py mcpb/icon.png

# Build: stage the bundle (manifest, icon, the bundle's pyproject, the package), validate, pack.
mcpb: venv $(MCPB)
	$(BIN)/python scripts/build_mcpb.py --stage build/mcpb/stage
	$(MCPB) validate build/mcpb/stage/manifest.json
	@mkdir -p dist
	$(MCPB) pack build/mcpb/stage $(BUNDLE)
	@sha256sum $(BUNDLE)

# Check: unpack the packed bundle with the official CLI and install its environment with uv, as the
# desktop app does; tests/test_bundle.py then starts the unpacked server and speaks MCP to it.
mcpb-check: mcpb
	rm -rf $(BUNDLE_DIR)
	$(MCPB) unpack $(BUNDLE) $(BUNDLE_DIR)
	$(MCPB) validate $(BUNDLE_DIR)/manifest.json
	$(BIN)/uv sync --quiet --directory $(BUNDLE_DIR) --python $(CURDIR)/$(BIN)/python

dist: venv
	rm -rf dist/*.whl dist/*.tar.gz
	$(BIN)/python -m build --outdir dist

clean:
	rm -rf $(VENV) .venv-* build dist .pytest_cache .mypy_cache .ruff_cache $(NODE_TOOLS)/node_modules \
	  packaging/conformance/node_modules
