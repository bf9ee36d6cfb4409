"""Every sample screen, rendered by the official Adaptive Cards JS renderer (npm `adaptivecards`)
with the Microsoft Teams host config in headless Chromium (`tools/cardrender/render.js`).

The JSON schema check says a card is well-formed; this says the renderer Teams is built on accepts
it: no parse warnings (unknown element/action types, invalid enum values, misspelt properties that
would be silently dropped, duplicate ids, required inputs without labels...) and the texts we expect
actually show up. One Chromium launch renders all cards.

Needs node, `tools/cardrender/node_modules` (`npm ci`) and Chromium (/usr/bin/chromium or
$CHROMIUM); `scripts/test.sh` installs them (`ensure_card_renderer`) and sets
REWARDS_CARD_RENDERER and REWARDS_TEST_REQUIRE_RENDERER=1, so there a missing renderer fails the
run. Elsewhere the test is skipped when the renderer is not set up.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RENDERER = REPO_ROOT / "tools" / "cardrender" / "render.js"


@dataclass
class Rendered:
    name: str
    warnings: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    buttons: list[str] = field(default_factory=list)


def _renderer() -> Path:
    """render.js, or skip (fail when the renderer is required) with the reason it is unusable."""
    configured = os.environ.get("REWARDS_CARD_RENDERER", "")
    required = os.environ.get("REWARDS_TEST_REQUIRE_RENDERER") == "1" or bool(configured)
    script = Path(configured) if configured else DEFAULT_RENDERER
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    problems = []
    if shutil.which("node") is None:
        problems.append("node is not on PATH")
    if not script.is_file():
        problems.append(f"{script} does not exist")
    if not (script.parent / "node_modules").is_dir():
        problems.append(f"{script.parent / 'node_modules'} is missing (npm ci there)")
    if not os.access(chromium, os.X_OK):
        problems.append(
            f"Chromium not found at {chromium} (apt-get install chromium, or set CHROMIUM)"
        )
    if problems:
        reason = "card renderer unavailable: " + "; ".join(problems)
        reason += " -- scripts/test.sh sets it up (ensure_card_renderer in scripts/lib.sh)"
        if required:
            pytest.fail(reason + " [REWARDS_TEST_REQUIRE_RENDERER=1 or REWARDS_CARD_RENDERER set]")
        pytest.skip(reason)
    return script


def _import_or_skip(module: str) -> Any:
    """Import a `cards` module; skip only while the module itself does not exist yet."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            pytest.skip(f"{module} does not exist yet")
        raise


@pytest.fixture(scope="module")
def samples() -> dict[str, Any]:
    cards = _import_or_skip("cards.samples").sample_cards()
    assert cards, "cards.samples.sample_cards() returned no cards"
    return dict(cards)


@pytest.fixture(scope="module")
def rendered(
    samples: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Rendered]:
    script = _renderer()
    to_adaptive = _import_or_skip("cards.render.adaptive").to_adaptive
    card_dir = tmp_path_factory.mktemp("adaptive-cards")
    for name, card in samples.items():
        (card_dir / f"{name}.json").write_text(
            json.dumps(to_adaptive(card), ensure_ascii=False, indent=1), encoding="utf-8"
        )
    return _render(script, card_dir)


def _render(script: Path, card_dir: Path) -> dict[str, Rendered]:
    """Run render.js over every card JSON in `card_dir`."""
    started = time.monotonic()
    proc = subprocess.run(
        ["node", str(script), str(card_dir), "--texts", "500"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=script.parent,
    )
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        pytest.fail(
            f"render.js failed (exit {proc.returncode}) after {elapsed:.1f}s:\n"
            f"{proc.stderr[-4000:]}\n{proc.stdout[-2000:]}"
        )
    results: dict[str, Rendered] = {}
    for line in proc.stdout.splitlines():
        if not line.strip():
            continue
        data = json.loads(line)
        results[data["name"]] = Rendered(
            name=data["name"],
            warnings=data["warnings"],
            errors=data["errors"],
            texts=data["texts"],
            buttons=data["buttons"],
        )
    return results


def _fmt(event: dict[str, Any]) -> str:
    source = f" at {event['source']}" if event.get("source") else ""
    return f"{event['event']}{source}: {event['message']}"


def test_every_sample_is_rendered(samples: dict[str, Any], rendered: dict[str, Rendered]) -> None:
    assert sorted(rendered) == sorted(samples), "render.js did not report every sample card"
    problems = [
        f"{name}: {_fmt(error)}" for name, result in rendered.items() for error in result.errors
    ]
    assert not problems, "cards the renderer could not render:\n" + "\n".join(problems)


def _people_picker_warnings(result: Rendered) -> list[dict[str, Any]]:
    """The warnings we accept, for the Teams people picker alone: the renderer reads its
    `choices.data` as a 1.6 property and ignores it in a 1.5 card (Teams honours it in any
    version; see `cards.render.adaptive`), and then finds the choice set without choices. So this
    renderer, like the Agents Playground, draws an empty choice set, and the typed input under it
    carries the answer."""
    pickers = {
        w.get("source")
        for w in result.warnings
        if w.get("event") == "UnsupportedProperty"
        and str(w.get("source", "")).startswith("Input.ChoiceSet#")
        and '"choices.data"' in str(w.get("message", ""))
    }
    return [
        w
        for w in result.warnings
        if w.get("source") in pickers
        and w.get("event") in ("UnsupportedProperty", "CollectionCantBeEmpty")
    ]


def test_no_parse_warnings(rendered: dict[str, Rendered]) -> None:
    problems = [
        f"{name}: {_fmt(warning)}"
        for name, result in sorted(rendered.items())
        for warning in result.warnings
        if warning not in _people_picker_warnings(result)
    ]
    pickers = {name for name, result in rendered.items() if _people_picker_warnings(result)}
    assert pickers == {"kudos_form", "kudos_form_prefilled", "badge_picker"}, pickers
    assert not problems, (
        "the Adaptive Cards renderer (Teams host config, target 1.5) reported:\n"
        + "\n".join(problems)
    )


def _blocks(card: Any) -> list[Any]:
    """Every body block, with the blocks inside Columns flattened."""
    out: list[Any] = []
    pending = list(getattr(card, "body", ()))
    while pending:
        block = pending.pop(0)
        out.append(block)
        for column in getattr(block, "columns", ()) or ():
            pending.extend(column)
    return out


def _plain(text: str) -> str:
    """Text as the renderer shows it, compared loosely: without emphasis characters, whitespace
    collapsed (user text shows as typed: see test_user_text_shows_as_typed)."""
    for mark in ("**", "__", "*", "_", "`"):
        text = text.replace(mark, "")
    return " ".join(text.split())


TYPED = (
    "if a<b and c>d",
    "*not bold* _not italic_ **nor this** `nor code` ~x~",
    "[click me](https://evil.example/login) & <https://evil.example> &lt;b&gt;",
    "1. not a list",
    "- not a bullet",
    "back\\slash \\*",
)


def test_user_text_shows_as_typed(tmp_path: Path) -> None:
    """What people type (in a kudos message, a name) is drawn character for character by the
    renderer Teams is built on: no text between < and > vanishes, no emphasis, link or list."""
    from cards.model import Card, Fact, Facts, Text

    script = _renderer()
    to_adaptive = _import_or_skip("cards.render.adaptive").to_adaptive
    card = Card(
        "typed",
        "a<b *title*",
        "typed",
        body=(*(Text(t) for t in TYPED), Facts((Fact("<why>", "*because*"),))),
    )
    (tmp_path / "typed.json").write_text(json.dumps(to_adaptive(card)), encoding="utf-8")
    result = _render(script, tmp_path)["typed"]
    assert not result.errors and not result.warnings, result
    shown = [" ".join(t.split()) for t in result.texts]
    for typed in ("a<b *title*", *TYPED, "<why>", "*because*"):
        assert typed in shown, (typed, shown)


def test_titles_rows_and_buttons_show(
    samples: dict[str, Any], rendered: dict[str, Rendered]
) -> None:
    problems = []
    for name, card in sorted(samples.items()):
        result = rendered.get(name)
        if result is None or result.errors:
            continue  # reported by test_every_sample_is_rendered
        shown = "\n".join(_plain(t) for t in result.texts)
        wanted = [card.title] if getattr(card, "title", "") else []
        for block in _blocks(card):
            wanted.extend(row.text for row in getattr(block, "rows", ()) or ())
        problems += [
            f"{name}: text {text!r} not rendered" for text in wanted if _plain(text) not in shown
        ]
        actions = list(getattr(card, "actions", ()) or ())
        if actions and actions[0].title not in result.buttons:
            problems.append(
                f"{name}: button {actions[0].title!r} not rendered (buttons: {result.buttons})"
            )
    assert not problems, "\n".join(problems)


def test_leaderboard_shows_its_names(
    samples: dict[str, Any], rendered: dict[str, Rendered]
) -> None:
    boards = {
        name: [row for block in _blocks(card) for row in getattr(block, "rows", ()) or ()]
        for name, card in samples.items()
        if "leaderboard" in name.lower()
    }
    assert any(boards.values()), f"no leaderboard with rows among the samples: {sorted(samples)}"
    for name, rows in boards.items():
        texts = rendered[name].texts
        for row in rows:
            assert any(_plain(row.text) in _plain(text) for text in texts), (
                f"{name}: {row.text!r} is not among the rendered texts {texts}"
            )
