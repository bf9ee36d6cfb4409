"""Slack Block Kit: every sample parses and validates with the real `slack_sdk` models, and
Slack's limits hold for oversize inputs (long names, long messages, 200 tags, 200 rows)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from cards.actions import decode
from cards.model import Action, Card, Fact, Facts, Field, FieldKind, Form, Text
from cards.render import custom_field_id
from cards.render.blockkit import escape, escape_cut, to_blocks, to_modal
from cards.samples import KUDOS, REWARDS, TAGS, sample_cards
from cards.screens import badge_picker, kudos_form, kudos_posted, leaderboard, notice
from rewards.catalog.model import RewardCore
from rewards.services.kudos import KudosView, TagView
from rewards.services.leaderboards import (
    Leaderboard,
    LeaderboardFilter,
    LeaderboardRow,
    Metric,
    Period,
)

SAMPLES = sample_cards()
LONG = "Maximiliana " * 40  # 480 characters


def check_blocks(blocks: list[dict[str, Any]]) -> None:
    assert len(blocks) <= 50
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()
        assert block.to_dict() == raw  # nothing we send is silently dropped by the SDK model


def check_modal(view: dict[str, Any]) -> None:
    model = View(**view)
    model.validate_json()
    assert len(view["blocks"]) <= 100
    assert len(view["title"]["text"]) <= 24


def all_nodes(node: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(node, dict):
        out.append(node)
        for value in node.values():
            out.extend(all_nodes(value))
    elif isinstance(node, list):
        for value in node:
            out.extend(all_nodes(value))
    return out


def check_limits(blocks: list[dict[str, Any]]) -> None:
    for node in all_nodes(blocks):
        kind = node.get("type")
        if kind == "section" and "text" in node:
            assert len(node["text"]["text"]) <= 3000
        if kind == "section" and "fields" in node:
            assert len(node["fields"]) <= 10
            assert all(len(f["text"]) <= 2000 for f in node["fields"])
        if kind == "header":
            assert len(node["text"]["text"]) <= 150
        if kind == "button":
            assert len(node["text"]["text"]) <= 75
            assert len(node["action_id"]) <= 255
        if kind in ("static_select", "multi_static_select"):
            assert 0 < len(node["options"]) <= 100
            for option in node["options"]:
                assert len(option["text"]["text"]) <= 75
                assert len(option.get("description", {}).get("text", "")) <= 75
        if kind == "actions":
            ids = [e["action_id"] for e in node["elements"]]
            assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_parse_and_validate(name: str) -> None:
    card = SAMPLES[name]
    blocks = to_blocks(card)
    check_blocks(blocks)
    check_limits(blocks)
    modal = to_modal(card, callback_id="rw1|kudos|send|", private_metadata='{"c": 1}')
    check_modal(modal)
    check_limits(modal["blocks"])


def test_buttons_carry_tokens() -> None:
    blocks = to_blocks(SAMPLES["leaderboard"])
    buttons = blocks[-1]["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Give kudos", "Full leaderboard"]
    for button in buttons:
        assert button["action_id"] == button["value"]
        decode(button["value"])
    assert buttons[0]["style"] == "primary"


@pytest.mark.parametrize(
    ("kind", "select"),
    [(FieldKind.PEOPLE, "multi_users_select"), (FieldKind.PERSON, "users_select")],
)
def test_people_fields_are_user_selects(kind: FieldKind, select: str) -> None:
    field = Field("who", "Who?", kind, value=("<@U0LI00001>", "W0GRID001", "ana@example.com"))
    card = Card("f", "F", "F", form=Form((field,), Action("Go", token="t", submits_form=True)))
    picker, typed = (b for b in to_modal(card, callback_id="t")["blocks"] if b["type"] == "input")
    assert picker["element"]["type"] == select and picker["block_id"] == "who"
    if kind is FieldKind.PEOPLE:
        assert picker["element"]["initial_users"] == ["U0LI00001", "W0GRID001"]
    else:
        assert picker["element"]["initial_user"] == "U0LI00001"
    assert typed["block_id"] == "who__custom"
    assert typed["element"]["initial_value"] == "ana@example.com"


def test_repeated_tokens_get_unique_action_ids() -> None:
    card = Card(
        "x", "x", "x", actions=(Action("A", token="rw1|a|b|"), Action("B", token="rw1|a|b|"))
    )
    blocks = to_blocks(card)
    check_blocks(blocks)
    ids = [e["action_id"] for e in blocks[-1]["elements"]]
    assert len(set(ids)) == 2
    assert {e["value"] for e in blocks[-1]["elements"]} == {"rw1|a|b|"}


def test_modal_inputs() -> None:
    modal = to_modal(SAMPLES["kudos_form_prefilled"], callback_id="rw1|kudos|send|")
    inputs = {b["block_id"]: b for b in modal["blocks"] if b["type"] == "input"}
    assert list(inputs) == [
        "recipients",
        custom_field_id("recipients"),
        "message",
        "tags",
        custom_field_id("tags"),
    ]
    for block_id, block in inputs.items():
        assert block["element"]["action_id"] == block_id
    # People are picked from Slack's user list; what was typed stays in the typed input.
    assert inputs["recipients"]["element"]["type"] == "multi_users_select"
    assert "initial_users" not in inputs["recipients"]["element"]
    typed = inputs[custom_field_id("recipients")]
    assert typed["element"]["type"] == "plain_text_input"
    assert typed["element"]["initial_value"] == "@li.wei"
    assert inputs["recipients"]["optional"] is typed["optional"] is True  # the dialog checks
    assert inputs["message"]["element"]["multiline"] is True
    assert inputs["message"]["element"]["max_length"] == 500
    assert inputs["tags"]["optional"] is True
    assert inputs["tags"]["element"]["type"] == "multi_static_select"
    assert [o["value"] for o in inputs["tags"]["element"]["initial_options"]] == ["teamwork"]
    assert modal["submit"]["text"] == "Send kudos"
    assert modal["close"]["text"] == "Cancel"
    assert modal["notify_on_close"] is True

    picker = to_modal(SAMPLES["badge_picker"], callback_id="rw1|badge|pick|")
    badge = next(b for b in picker["blocks"] if b.get("block_id") == "badge")
    assert badge["element"]["type"] == "static_select"
    assert badge["element"]["options"][0]["description"]["text"] == (
        "50 points · Always there for the team"
    )


def test_modal_rejects_oversize_metadata() -> None:
    with pytest.raises(ValueError, match="private_metadata"):
        to_modal(SAMPLES["kudos_form"], callback_id="x", private_metadata="x" * 3001)


def test_user_text_is_escaped() -> None:
    blocks = to_blocks(notice("<!channel> see <https://evil.example|this> & more"))
    text = blocks[1]["text"]["text"]
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt;" in text and "&amp; more" in text
    assert escape_cut("a&b" * 10, 10) == "a&amp;ba…"  # never cuts inside an entity
    assert escape("plain") == "plain"


def test_oversize_inputs_are_shortened_not_failed() -> None:
    tags = [TagView(f"tag-{i:03d}", f"{LONG} {i}", LONG, False) for i in range(200)]
    form = kudos_form(tags, submit="rw1|kudos|send|", cancel="rw1|kudos|cancel|")
    modal = to_modal(form, callback_id="rw1|kudos|send|")
    check_modal(modal)
    check_limits(modal["blocks"])
    select = next(b for b in modal["blocks"] if b.get("block_id") == "tags")["element"]
    assert len(select["options"]) == 100
    assert select["options"][0]["text"]["text"].endswith("…")

    rewards = [
        RewardCore(reward_id=i + 1, reward=LONG[:200], description=LONG, reward_category="X")
        for i in range(150)
    ]
    picker = to_modal(badge_picker(rewards, submit="rw1|b|s|", cancel="rw1|b|c|"), callback_id="x")
    check_modal(picker)
    check_limits(picker["blocks"])

    kudos = KudosView(
        1,
        1,
        LONG,
        tuple((i, LONG) for i in range(30)),
        "x" * 5000,
        ("t",) * 50,
        5,
        "public",
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    blocks = to_blocks(kudos_posted(kudos))
    check_blocks(blocks)
    check_limits(blocks)

    board = Leaderboard(
        Metric.POINTS,
        Period.ALL,
        None,
        LeaderboardFilter(department=LONG),
        tuple(LeaderboardRow(i, i, f"{LONG}{i}", LONG, 1000 - i) for i in range(1, 201)),
    )
    card = leaderboard(board, full="rw1|lb|full|", give_kudos="rw1|kudos|start|")
    blocks = to_blocks(card)
    check_blocks(blocks)
    check_limits(blocks)
    assert blocks[-1]["type"] == "actions"  # buttons survive the cap
    check_modal(to_modal(card, callback_id="x"))

    many = Card(
        "many",
        LONG,
        "many",
        body=(
            *(Text(LONG * 10) for _ in range(80)),
            Facts(tuple(Fact(LONG, LONG * 5) for _ in range(25))),
        ),
        actions=tuple(Action(LONG, token=f"rw1|a|b|{i}") for i in range(30)),
    )
    blocks = to_blocks(many)
    check_blocks(blocks)
    check_limits(blocks)
    check_modal(to_modal(many, callback_id="x"))


def test_samples_stay_readable() -> None:
    blocks = to_blocks(kudos_posted(KUDOS))
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "🎉 Kudos!", "emoji": True},
    }
    assert REWARDS and TAGS  # the samples used above exist


def test_sdk_validation_is_meaningful() -> None:
    """The SDK checks really run: an oversize header fails, so passing samples mean something."""
    from slack_sdk.errors import SlackObjectFormationError

    header = Block.parse({"type": "header", "text": {"type": "plain_text", "text": "x" * 151}})
    assert header is not None
    with pytest.raises(SlackObjectFormationError):
        header.validate_json()


def test_modal_without_body_still_has_a_block() -> None:
    modal = to_modal(Card("bare", "Bare", "Nothing to show"), callback_id="x")
    check_modal(modal)
    assert modal["blocks"][0]["text"]["text"] == "Nothing to show"
