"""Golden files: each sample card rendered for every platform, compared byte for byte.

They are checked in so reviewers can read exactly what users will get. After an intended change,
regenerate with ``UPDATE_GOLDEN=1 pytest tests/test_cards_golden.py`` and review the diff.

Per sample ``<name>``: ``.adaptive.json`` (Teams), ``.blockkit.json`` (message blocks, plus the
modal for form cards), ``.telegram.json`` (message, plus one prompt per form field) and ``.txt``
(console: the card, plus one prompt per form field).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from cards.model import Card
from cards.render.adaptive import to_adaptive
from cards.render.blockkit import to_blocks, to_modal
from cards.render.telegram import TelegramMessage, field_prompt, to_telegram
from cards.render.text import field_prompt_text, to_text
from cards.samples import sample_cards

GOLDEN = Path(__file__).parent / "golden" / "cards"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
SAMPLES = sample_cards()


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _telegram(message: TelegramMessage) -> dict[str, Any]:
    return {"text": message.text, "keyboard": message.keyboard}


def renderings(card: Card) -> dict[str, str]:
    fields = card.form.fields if card.form is not None else ()
    blockkit: dict[str, Any] = {"blocks": to_blocks(card)}
    if card.form is not None:
        blockkit["modal"] = to_modal(card, callback_id=card.form.submit.token or "")
    telegram: dict[str, Any] = {"message": _telegram(to_telegram(card))}
    if fields:
        telegram["prompts"] = {f.name: _telegram(field_prompt(f)) for f in fields}
    text = to_text(card) + "\n"
    for f in fields:
        text += f"\n--- prompt: {f.name}\n{field_prompt_text(f)}\n"
    return {
        "adaptive.json": _json(to_adaptive(card)),
        "blockkit.json": _json(blockkit),
        "telegram.json": _json(telegram),
        "txt": text,
    }


def golden_mismatches(folder: Path, name: str, card: Card) -> list[str]:
    """The golden files of `card` under `folder` that its renderings no longer match (with
    ``UPDATE_GOLDEN=1``: rewrite them and report none)."""
    mismatched = []
    for suffix, rendered in renderings(card).items():
        path = folder / f"{name}.{suffix}"
        if UPDATE:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rendered, encoding="utf-8")
            continue
        assert path.exists(), f"{path} is missing; run with UPDATE_GOLDEN=1"
        if path.read_text(encoding="utf-8") != rendered:
            mismatched.append(path.name)
    return mismatched


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_golden(name: str) -> None:
    mismatched = golden_mismatches(GOLDEN, name, SAMPLES[name])
    assert not mismatched, f"changed: {mismatched}; review, then regenerate with UPDATE_GOLDEN=1"


def test_no_stale_golden_files() -> None:
    expected = {f"{name}.{suffix}" for name in SAMPLES for suffix in renderings(SAMPLES[name])}
    present = {p.name for p in GOLDEN.iterdir()} if GOLDEN.exists() else set()
    assert present <= expected, f"stale golden files: {sorted(present - expected)}"
