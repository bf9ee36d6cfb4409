# shellcheck shell=bash
# Shared by scripts/test.sh and scripts/run.sh (sourced, never executed).
#
# After sourcing: REPO_ROOT is the repository root, the shell is cd'ed there, and
# `ensure_venv` creates .venv (python3.11 or any python3 >= 3.11) and installs the project
# editable with its dev extras (`ensure_venv serve`: only what the server needs). The install is
# skipped when .venv/.nav-rewards-installed holds the sha256 of the current pyproject.toml (and a
# kind that covers the one asked for), so reruns cost nothing; editing pyproject.toml (or deleting
# the stamp) triggers a reinstall. Source changes never need one (editable install).

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT" || exit 1

VENV_DIR="$REPO_ROOT/.venv"
VENV_STAMP="$VENV_DIR/.nav-rewards-installed"

# Current time in seconds with decimals, for step timings.
now() {
    if [[ -n "${EPOCHREALTIME:-}" ]]; then
        printf '%s' "${EPOCHREALTIME/,/.}"
    else
        date +%s.%N
    fi
}

elapsed_since() {
    awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1fs", end - start }'
}

section() {
    printf '\n==================== %s ====================\n' "$*"
}

info() {
    printf '  %s\n' "$*"
}

die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

# first_python MINOR CANDIDATE...: print the first candidate (a command or a path) that is
# Python >= 3.MINOR.
first_python() {
    local minor="$1" candidate
    shift
    for candidate in "$@"; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c "import sys; sys.exit(0 if sys.version_info >= (3, $minor) else 1)" \
                >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# Print the first interpreter that is Python >= 3.11.
find_python() {
    # shellcheck disable=SC2086  # PYTHON unset or empty adds no candidate
    first_python 11 ${PYTHON:-} python3.11 python3.12 python3.13 python3.14 python3
}

pyproject_hash() {
    sha256sum "$REPO_ROOT/pyproject.toml" | cut -d' ' -f1
}

# pip's own progress, a line each: what it collects, downloads, builds and installs (everything
# else goes to the log only). The first install downloads about a hundred packages: without these
# lines it would look stuck for minutes.
_pip_progress() {
    local line words
    while IFS= read -r line; do
        printf '%s\n' "$line" >>"$1"
        line="${line#"${line%%[![:space:]]*}"}"
        case "$line" in
            Downloading*.metadata*) ;;
            # These two name every package on one long line: the count is enough on the terminal.
            "Installing collected packages: "*)
                read -ra words <<<"${line#*: }"
                printf '    pip: installing %d packages (no output until it is done)\n' "${#words[@]}"
                ;;
            "Successfully installed "*)
                read -ra words <<<"${line#Successfully installed }"
                printf '    pip: installed %d packages\n' "${#words[@]}"
                ;;
            Collecting* | Downloading* | Building* | Installing* | Successfully*)
                printf '    pip: %s\n' "$line"
                ;;
        esac
    done
}

# ensure_venv [dev|serve]: .venv with the project installed editable, with the dev extras (the
# default: tests, linters) or with only what `rewards serve` needs (`serve`, for scripts/run.sh).
# The stamp holds the pyproject.toml hash and which of the two was installed; a dev install also
# serves, so `serve` is satisfied by either.
ensure_venv() {
    local python kind="${1:-dev}" target
    [[ "$kind" == dev || "$kind" == serve ]] || die "ensure_venv: unknown kind '$kind'"
    # A missing, broken or too old .venv is (re)created.
    if ! "$VENV_DIR/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
        >/dev/null 2>&1; then
        python="$(find_python)" || die "need python3.11 (or any python3 >= 3.11) on PATH"
        info "creating .venv with $python ($("$python" --version 2>&1))"
        rm -rf "$VENV_DIR"
        if ! "$python" -m venv "$VENV_DIR"; then
            # Debian's own python3 ships without ensurepip until python3-venv is installed.
            if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
                info "python venv support missing: apt-get install python3-venv"
                rm -rf "$VENV_DIR"
                DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null &&
                    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv \
                        </dev/null >/dev/null &&
                    "$python" -m venv "$VENV_DIR" || die "could not create $VENV_DIR"
            else
                die "could not create $VENV_DIR (on Debian/Ubuntu: apt-get install python3-venv)"
            fi
        fi
    fi

    local want have="" have_kind
    want="$(pyproject_hash)"
    [[ -f "$VENV_STAMP" ]] && have="$(cat "$VENV_STAMP")"
    have_kind="${have#* }"
    [[ "$have" == *" "* ]] || have_kind=dev # a stamp of before the two kinds: always dev
    if [[ "${have%% *}" == "$want" && -x "$VENV_DIR/bin/rewards" ]] &&
        [[ "$have_kind" == dev || "$kind" == serve ]]; then
        info ".venv is up to date with pyproject.toml ($(cut -c1-12 <<<"$want"), $have_kind); pip step skipped"
        return 0
    fi

    target="."
    [[ "$kind" == dev ]] && target=".[dev]"
    local log="$VENV_DIR/pip-install.log" start rc=0
    info "installing the project into .venv: pip install -e '$target' (log: .venv/pip-install.log)"
    info "a first install downloads about 60 packages (dev: about 100), a minute or more; progress follows"
    start="$(now)"
    rm -f "$VENV_STAMP"
    : >"$log"
    PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
        "$VENV_DIR/bin/python" -m pip install --progress-bar off -e "$target" </dev/null 2>&1 |
        _pip_progress "$log" || rc=$?
    if [[ "$rc" -ne 0 ]]; then
        tail -n 60 "$log" >&2
        die "pip install -e '$target' failed (full log: $log)"
    fi
    printf '%s %s\n' "$want" "$kind" >"$VENV_STAMP"
    info "installed in $(elapsed_since "$start")"
}

# Write the bytecode of the project's own packages (.pyc in __pycache__), if missing or stale.
# `pip install -e` compiles the dependencies, not an editable project, and where the environment
# sets PYTHONDONTWRITEBYTECODE=1 (as this machine and many containers do), Python never writes
# them itself: every start then compiled the ~300 modules again, 0.2-0.3 s of the server's cold
# start. Python reads existing .pyc files whatever that variable says. About 0.5 s the first
# time, 0.15 s when they are up to date.
compile_project() {
    "$VENV_DIR/bin/python" -m compileall -q -j 0 \
        "$REPO_ROOT/rewards" "$REPO_ROOT/bots" "$REPO_ROOT/dialogs" "$REPO_ROOT/cards" \
        >/dev/null || info "compiling the project's bytecode failed; starting without it"
}

# The Microsoft 365 Agents SDK (TEAMS_SDK=agents) needs Python >= 3.12, which the main .venv may
# not have (Debian 12's python3 is 3.11). `ensure_agents_venv` makes .venv-agents with the first
# Python >= 3.12 on PATH (PYTHON_AGENTS picks one) and the project with its dev extras, the same
# way ensure_venv makes .venv; it prints nothing and returns 1 when there is no such Python.
AGENTS_VENV_DIR="$REPO_ROOT/.venv-agents"

find_python_312() {
    local candidate pyenv_pythons=()
    # pyenv's shims answer only for the selected version: look at its installed ones directly.
    while IFS= read -r candidate; do
        pyenv_pythons+=("$candidate")
    done < <(compgen -G "${PYENV_ROOT:-$HOME/.pyenv}/versions/3.1[2-9]*/bin/python3" | sort -V)
    # shellcheck disable=SC2086  # PYTHON_AGENTS unset or empty adds no candidate
    first_python 12 ${PYTHON_AGENTS:-} python3.12 python3.13 python3.14 "${pyenv_pythons[@]}" python3
}

ensure_agents_venv() {
    local python
    python="$(find_python_312)" || return 1
    if ! "$AGENTS_VENV_DIR/bin/python" -c \
        'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then
        rm -rf "$AGENTS_VENV_DIR"
        info "creating .venv-agents with $python ($("$python" --version 2>&1))"
        "$python" -m venv "$AGENTS_VENV_DIR" || die "could not create $AGENTS_VENV_DIR"
    fi
    VENV_DIR="$AGENTS_VENV_DIR" VENV_STAMP="$AGENTS_VENV_DIR/.nav-rewards-installed" ensure_venv dev
}

# Root, or passwordless sudo, for apt-get; prints the command prefix (empty for root). Fails otherwise.
_root_prefix() {
    if [[ "$(id -u)" -eq 0 ]]; then
        printf ''
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        printf 'sudo -n'
    else
        return 1
    fi
}

# The card renderer check (tools/cardrender/render.js): the official Adaptive Cards JS renderer in
# headless Chromium. Installs Debian's chromium plus the fonts screenshots need when /usr/bin/chromium
# (or $CHROMIUM) is missing, node/npm when missing, and runs `npm ci` in tools/cardrender when
# node_modules is missing or older than package-lock.json. Quiet and quick when everything is there.
ensure_card_renderer() {
    local dir="$REPO_ROOT/tools/cardrender" chromium="${CHROMIUM:-/usr/bin/chromium}"
    local need_apt=() prefix start
    [[ -x "$chromium" ]] || need_apt+=(chromium fonts-noto-color-emoji fonts-liberation2)
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        need_apt+=(nodejs npm)
    fi
    if [[ "${#need_apt[@]}" -gt 0 ]]; then
        command -v apt-get >/dev/null 2>&1 ||
            die "card renderer needs: ${need_apt[*]} (apt-get is unavailable: install them, or set CHROMIUM=/path/to/chromium)"
        prefix="$(_root_prefix)" ||
            die "card renderer needs: ${need_apt[*]}; not root and no passwordless sudo: run apt-get install -y --no-install-recommends ${need_apt[*]}"
        info "card renderer: apt-get install ${need_apt[*]}"
        start="$(now)"
        # shellcheck disable=SC2086  # $prefix is empty or "sudo -n"
        $prefix env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null ||
            die "apt-get update failed"
        # shellcheck disable=SC2086
        $prefix env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${need_apt[@]}" </dev/null >/dev/null || die "apt-get install ${need_apt[*]} failed"
        info "card renderer: apt-get done in $(elapsed_since "$start")"
        [[ -x "$chromium" ]] || die "chromium was installed but $chromium is still missing"
    fi

    _npm_ci "$dir" "card renderer"
}

# `npm ci` in DIR (a project-local npm tool under tools/) when its node_modules is missing or older
# than its package-lock.json; LABEL names the tool in the messages. Quiet when nothing changed.
_npm_ci() {
    local dir="$1" label="$2" start log
    if [[ ! -d "$dir/node_modules" || "$dir/package-lock.json" -nt "$dir/node_modules" ]]; then
        start="$(now)"
        log="$(mktemp "${TMPDIR:-/tmp}/nav-rewards-npm-ci.XXXXXX")"
        info "$label: npm ci in ${dir#"$REPO_ROOT"/} (log: $log)"
        if ! (cd "$dir" && npm ci --no-audit --no-fund </dev/null >"$log" 2>&1); then
            tail -n 40 "$log" >&2
            die "npm ci in ${dir#"$REPO_ROOT"/} failed (full log: $log)"
        fi
        # npm ci does not always bump the directory's mtime: mark it fresh for the check above.
        touch "$dir/node_modules"
        rm -f "$log"
        info "$label: npm ci done in $(elapsed_since "$start")"
    fi
}

# The OpenAPI lint (tools/openapi-lint: Redocly CLI, run by tests/test_openapi_lint.py on the
# document the server serves). Needs node and npm, which ensure_card_renderer installs.
ensure_openapi_lint() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
        die "openapi lint needs node and npm (apt-get install nodejs npm)"
    _npm_ci "$REPO_ROOT/tools/openapi-lint" "openapi lint"
    info "openapi lint: Redocly CLI $(node -p "require('$REPO_ROOT/tools/openapi-lint/node_modules/@redocly/cli/package.json').version")"
}

# The Teams end-to-end test (tests/test_playground.py): the Microsoft 365 Agents Playground and
# playwright-core from npm in tools/playground, driving the Chromium ensure_card_renderer installs
# (call that first: it apt-installs chromium, node and npm when missing).
ensure_playground() {
    local chromium="${CHROMIUM:-/usr/bin/chromium}"
    command -v npm >/dev/null 2>&1 || die "Agents Playground needs node and npm (ensure_card_renderer installs them)"
    [[ -x "$chromium" ]] || die "Agents Playground needs Chromium at $chromium (ensure_card_renderer installs it)"
    _npm_ci "$REPO_ROOT/tools/playground" "Agents Playground"
    info "Agents Playground: $(cd "$REPO_ROOT/tools/playground" && node -p 'require("@microsoft/m365agentsplayground/package.json").version')"
}

# The RabbitMQ server for the event manager tests (tests/support/rabbitmq.py starts a private
# node on free 127.0.0.1 ports per pytest session; this only makes sure the binaries exist).
# apt-installs Debian's rabbitmq-server when /usr/lib/rabbitmq/bin/rabbitmq-server is missing,
# without letting the package start a system-wide broker: a policy-rc.d that denies every service
# start is put in place for the install (unless one already exists), and a broker started anyway
# (by systemd, say) is stopped. An epmd the package may leave on port 4369 is harmless: the test
# node runs its own epmd on a free port.
RABBITMQ_SERVER_BIN=/usr/lib/rabbitmq/bin/rabbitmq-server

ensure_rabbitmq() {
    local prefix start policy=/usr/sbin/policy-rc.d own_policy=0 rc=0
    if [[ -x "$RABBITMQ_SERVER_BIN" ]]; then
        info "rabbitmq: $RABBITMQ_SERVER_BIN present ($(_rabbitmq_version))"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "rabbitmq: $RABBITMQ_SERVER_BIN missing and apt-get is unavailable: install RabbitMQ >= 3.9 (Debian package rabbitmq-server)"
    prefix="$(_root_prefix)" ||
        die "rabbitmq: $RABBITMQ_SERVER_BIN missing; not root and no passwordless sudo: run apt-get install -y --no-install-recommends rabbitmq-server"
    info "rabbitmq: apt-get install rabbitmq-server"
    start="$(now)"
    if [[ ! -e "$policy" ]]; then
        # 101 = "action forbidden": invoke-rc.d and deb-systemd-invoke start no service.
        # shellcheck disable=SC2086  # $prefix is empty or "sudo -n"
        $prefix sh -c "printf '#!/bin/sh\nexit 101\n' >'$policy' && chmod 755 '$policy'" ||
            die "rabbitmq: could not write $policy"
        own_policy=1
    fi
    # shellcheck disable=SC2086
    $prefix env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null || rc=$?
    if [[ "$rc" -eq 0 ]]; then
        # shellcheck disable=SC2086
        $prefix env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            rabbitmq-server </dev/null >/dev/null || rc=$?
    fi
    if [[ "$own_policy" -eq 1 ]]; then
        # shellcheck disable=SC2086
        $prefix rm -f "$policy" || true
    fi
    [[ "$rc" -eq 0 ]] || die "rabbitmq: apt-get update/install rabbitmq-server failed (exit $rc)"
    _stop_system_rabbitmq "$prefix"
    info "rabbitmq: apt-get done in $(elapsed_since "$start")"
    [[ -x "$RABBITMQ_SERVER_BIN" ]] ||
        die "rabbitmq-server was installed but $RABBITMQ_SERVER_BIN is still missing"
    info "rabbitmq: $(_rabbitmq_version)"
}

# Should the package have started its broker anyway (a policy-rc.d that was already there and
# allows starts, or systemd), stop it: it would hold port 5672 and memory for nothing. Only
# processes of the package's own `rabbitmq` user are touched, and only right after the install.
_stop_system_rabbitmq() {
    local prefix="$1" pids
    pids="$(pgrep -u rabbitmq -x beam.smp 2>/dev/null || true)"
    [[ -n "$pids" ]] || return 0
    info "rabbitmq: stopping the system broker the package started"
    # shellcheck disable=SC2086  # $prefix is empty or "sudo -n"
    $prefix service rabbitmq-server stop </dev/null >/dev/null 2>&1 || true
    sleep 1
    pids="$(pgrep -u rabbitmq -x beam.smp 2>/dev/null || true)"
    if [[ -n "$pids" ]]; then
        # shellcheck disable=SC2086
        $prefix kill $pids 2>/dev/null || true
    fi
}

# The installed server's version, from its directory name (no node needs to run for it).
_rabbitmq_version() {
    local dir
    dir="$(compgen -G '/usr/lib/rabbitmq/lib/rabbitmq_server-*' | sort -V | tail -n 1 || true)"
    printf 'RabbitMQ %s' "${dir##*rabbitmq_server-}"
}
