# shellcheck shell=bash
# Shared by scripts/test.sh and scripts/run.sh (sourced, never executed).
#
# After sourcing: REPO_ROOT is the repository root, the shell is cd'ed there, and
# `ensure_venv` creates .venv (python3.11 or any python3 >= 3.11) and installs the project
# editable with its dev extras. The install is skipped when .venv/.nav-rewards-installed holds the
# sha256 of the current pyproject.toml, so reruns cost nothing; editing pyproject.toml (or
# deleting the stamp) triggers a reinstall. Source changes never need one (editable install).

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

# Print the first interpreter that is Python >= 3.11.
find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3.11 python3.12 python3.13 python3.14 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
                >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

pyproject_hash() {
    sha256sum "$REPO_ROOT/pyproject.toml" | cut -d' ' -f1
}

ensure_venv() {
    local python
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

    local want have=""
    want="$(pyproject_hash)"
    [[ -f "$VENV_STAMP" ]] && have="$(cat "$VENV_STAMP")"
    if [[ "$have" == "$want" && -x "$VENV_DIR/bin/rewards" ]]; then
        info ".venv is up to date with pyproject.toml ($(cut -c1-12 <<<"$want")); pip step skipped"
        return 0
    fi

    # pip's chatter (build back-end warnings and the like) goes to a log shown only on failure.
    local log="$VENV_DIR/pip-install.log"
    info "installing the project into .venv: pip install -e '.[dev]' (log: .venv/pip-install.log)"
    rm -f "$VENV_STAMP"
    if ! PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
        "$VENV_DIR/bin/python" -m pip install --progress-bar off -e '.[dev]' </dev/null >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        die "pip install -e '.[dev]' failed (full log: $log)"
    fi
    printf '%s\n' "$want" >"$VENV_STAMP"
}
