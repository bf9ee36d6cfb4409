#!/usr/bin/env bash
# The run command: make sure .venv is installed and current, then start the bot server.
#
#   bash scripts/run.sh            # settings come from env/.env and the environment
#   bash scripts/run.sh --help     # arguments go to `rewards serve`
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_venv >&2
exec "$VENV_DIR/bin/rewards" serve "$@"
