#!/usr/bin/env bash
# The test matrix (`make matrix`): the suite on every Python of PYTHONS, then EXTRA_JOBS, MATRIX_JOBS at a time.
#
# A run of the suite spends about half its time waiting (subprocesses, loopback servers, timeouts), so two
# runs side by side take little longer than one. Each job writes to build/matrix/<job>.log, printed whole
# when the job ends (no interleaved lines); a time per job and the verdict come last. Exits 1 if any job
# failed or a Python that REQUIRE_PYTHONS requires is missing.
set -uo pipefail
: "${PYTHONS:?}" "${BIN:?}" "${MAIN_VERSION:?}" "${BUNDLE_DIR:?}"
EXTRA_JOBS="${EXTRA_JOBS:-}"
PYTEST_ARGS="${PYTEST_ARGS:--q -p no:cacheprovider}"
MATRIX_JOBS="${MATRIX_JOBS:-2}"
MAKE="${MAKE:-make}"
logs=build/matrix
rm -rf "$logs" && mkdir -p "$logs"

# One job: make its venv if needed, then the suite. Its exit code goes to <job>.rc, its time to <job>.time.
run_job() {
    local name="$1" venv="$2" start=$SECONDS code
    {
        if [ -n "$venv" ]; then "$MAKE" --no-print-directory "$venv/.installed" || exit 1; fi
        py="${venv:-${BIN%/bin}}/bin/python"
        echo "== pytest, $name ($("$py" -c 'import importlib.metadata as m, sys; print("Python %d.%d," % sys.version_info[:2], "mcp", m.version("mcp"))'))"
        # shellcheck disable=SC2086 # PYTEST_ARGS is a list of words
        ALEPH_MCP_BUNDLE_DIR="$BUNDLE_DIR" "$py" -m pytest $PYTEST_ARGS
    } >"$logs/$name.log" 2>&1
    code=$?
    echo "$code" >"$logs/$name.rc"
    echo "$((SECONDS - start))" >"$logs/$name.time"
    cat "$logs/$name.log"
    return "$code"
}

jobs_list=()
missing=()
for v in $PYTHONS; do
    if [ "$v" = "$MAIN_VERSION" ]; then jobs_list+=("python-$v:")
    elif scripts/find-python "$v" >/dev/null; then jobs_list+=("python-$v:.venv-$v")
    elif [ -n "${REQUIRE_PYTHONS:-}" ]; then echo "error: Python $v is required (REQUIRE_PYTHONS) but not found" >&2; exit 1
    else echo; echo "WARNING: Python $v not found on this machine: its test run is SKIPPED" >&2; echo; missing+=("$v"); fi
done
for job in $EXTRA_JOBS; do jobs_list+=("$job:.venv-$job"); done

start=$SECONDS
running=0
for entry in "${jobs_list[@]}"; do
    if [ "$running" -ge "$MATRIX_JOBS" ]; then wait -n; running=$((running - 1)); fi
    run_job "${entry%%:*}" "${entry#*:}" &
    running=$((running + 1))
done
wait

failed=0
echo "== test matrix done in $((SECONDS - start))s, $MATRIX_JOBS jobs at a time:"
for entry in "${jobs_list[@]}"; do
    name="${entry%%:*}"
    code="$(cat "$logs/$name.rc" 2>/dev/null || echo 1)"
    verdict=passed; [ "$code" = 0 ] || { verdict="FAILED (exit $code)"; failed=1; }
    echo "  $name: $(cat "$logs/$name.time" 2>/dev/null || echo '?')s, $verdict"
done
for v in "${missing[@]}"; do echo "  python $v: SKIPPED (not installed)"; done
exit "$failed"
