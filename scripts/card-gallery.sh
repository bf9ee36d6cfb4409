#!/usr/bin/env bash
# The card gallery: every sample screen (cards.samples.sample_cards()) rendered as Microsoft Teams
# would draw it, by the official Adaptive Cards JS renderer (npm `adaptivecards`, Teams light host
# config) in headless Chromium, saved as docs/cards/<screen>.png (480 CSS px wide, 2x scale).
#
#   bash scripts/card-gallery.sh            # all samples -> docs/cards/
#   bash scripts/card-gallery.sh OUT_DIR    # somewhere else
#
# Fails (exit 1) when any card has renderer parse warnings or errors; the PNGs are still written
# so you can look at them. Hints (text that renders, but probably not as meant) are printed only. Sets up .venv, Chromium and tools/cardrender/node_modules when missing
# (ensure_venv / ensure_card_renderer in scripts/lib.sh). CHROMIUM=/path/to/chromium overrides the
# browser.
set -euo pipefail

# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OUT_DIR="$(realpath -m "${1:-$REPO_ROOT/docs/cards}")"
SCRIPT_START="$(now)"

section "Python environment"
ensure_venv

section "Card renderer"
ensure_card_renderer

section "Sample cards -> Adaptive Card JSON"
CARD_TMP="$(mktemp -d "${TMPDIR:-/tmp}/nav-rewards-cards.XXXXXX")"
trap 'rm -rf "$CARD_TMP"' EXIT
"$VENV_DIR/bin/python" - "$CARD_TMP" <<'EOF'
import json
import sys
from pathlib import Path

from cards.render.adaptive import to_adaptive
from cards.samples import sample_cards

out = Path(sys.argv[1])
cards = sample_cards()
if not cards:
    sys.exit("cards.samples.sample_cards() returned no cards")
for name, card in cards.items():
    (out / f"{name}.json").write_text(
        json.dumps(to_adaptive(card), ensure_ascii=False, indent=1), encoding="utf-8"
    )
print(f"  {len(cards)} card(s): {', '.join(sorted(cards))}")
EOF

section "Render (adaptivecards + Teams host config, headless Chromium) -> $OUT_DIR"
mkdir -p "$OUT_DIR"
# Screens that no longer exist must not linger in the gallery.
find "$OUT_DIR" -maxdepth 1 -name '*.png' -delete
start="$(now)"
node "$REPO_ROOT/tools/cardrender/render.js" "$CARD_TMP" "$OUT_DIR" --png --width 480 --scale 2 \
    >"$CARD_TMP/results.jsonl" || die "render.js failed"

"$VENV_DIR/bin/python" - "$CARD_TMP/results.jsonl" "$REPO_ROOT" <<'EOF'
import json
import sys
from pathlib import Path

root = Path(sys.argv[2])
bad = 0
for line in Path(sys.argv[1]).read_text(encoding="utf-8").splitlines():
    r = json.loads(line)
    # The Teams people picker: its `choices.data` is a 1.6 property to this renderer (Teams honours
    # it in 1.5 cards), which then finds the choice set empty. Accepted, as in test_card_render.py.
    picker = {w.get("source") for w in r["warnings"] if '"choices.data"' in w["message"]}
    accepted = ("UnsupportedProperty", "CollectionCantBeEmpty")
    warnings = [w for w in r["warnings"] if not (w.get("source") in picker and w["event"] in accepted)]
    problems = [("ERROR", e) for e in r["errors"]] + [("WARNING", w) for w in warnings]
    png = Path(r["png"]).relative_to(root) if r["png"] and Path(r["png"]).is_relative_to(root) else r["png"]
    status = "ok" if not problems else f"{len(problems)} problem(s)"
    print(f"  {r['name']:<28} {r['ms']:>5} ms  {status:<14} {png}")
    for kind, p in problems:
        source = f" at {p['source']}" if p.get("source") else ""
        print(f"      {kind} {p['event']}{source}: {p['message']}")
    for h in r.get("hints", []):
        print(f"      hint {h['event']}: {h['message']}")
    bad += bool(problems)
if bad:
    sys.exit(f"\nFAILED: {bad} card(s) with renderer warnings or errors (see above)")
EOF
info "rendered in $(elapsed_since "$start"); total $(elapsed_since "$SCRIPT_START")"
