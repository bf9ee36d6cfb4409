#!/usr/bin/env bash
# The run command: make sure .venv holds what the server needs, then start the bot server.
#
#   bash scripts/run.sh            # settings come from env/.env and the environment
#   bash scripts/run.sh --help     # arguments go to `rewards serve`
#
# Only the project and its runtime dependencies are installed (`pip install -e .`, no dev
# extras: scripts/test.sh adds those). A first run downloads them and says so as it goes; later
# runs skip pip while pyproject.toml is unchanged. Everything the script itself prints goes to
# standard error, so the server's own output is all that reaches standard output.
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start="$(now)"
{
    printf 'run.sh: checking .venv (Python environment)\n'
    ensure_venv serve
    compile_project
    printf 'run.sh: .venv ready in %s; starting rewards serve (migrates the database and loads the catalogue first)\n' \
        "$(elapsed_since "$start")"
} >&2
exec "$VENV_DIR/bin/rewards" serve "$@"
