"""Telegram: callback_data within 64 bytes, HTML that Telegram's parser accepts (only its tags,
properly nested, every user string escaped), text within 4096 characters."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from cards.actions import BadToken, decode, parse_choice_token
from cards.model import Action, Card, Choice, Field, FieldKind, Text
from cards.render.telegram import (
    MAX_TEXT,
    TelegramMessage,
    choice_token,
    field_prompt,
    text_length,
    to_telegram,
)
from cards.samples import sample_cards
from cards.screens import kudos_form, leaderboard, notice
from rewards.services.kudos import TagView
from rewards.services.leaderboards import (
    Leaderboard,
    LeaderboardFilter,
    LeaderboardRow,
    Metric,
    Period,
)

SAMPLES = sample_cards()
ALLOWED = {"b", "i", "u", "s", "a", "code", "pre", "tg-spoiler", "blockquote"}
ENTITY = re.compile(r"&(amp|lt|gt|quot|#x27|#\d+);")


class TelegramHtml(HTMLParser):
    """Fails on tags Telegram rejects, bad nesting, and attributes other than <a href>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in ALLOWED, tag
        if tag == "a":
            assert [name for name, _ in attrs] == ["href"], attrs
            assert (attrs[0][1] or "").startswith(("http://", "https://"))
        else:
            assert attrs == [], attrs
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (self.stack, tag)
        self.stack.pop()


def check_html(text: str) -> None:
    assert text_length(text) <= MAX_TEXT
    parser = TelegramHtml()
    parser.feed(text)
    parser.close()
    assert parser.stack == []
    # Outside our tags, no raw < > and every & starts an entity.
    bare = re.sub(r"</?(?:" + "|".join(ALLOWED) + r")(?: href=\"[^\"]*\")?>", "", text)
    assert "<" not in bare and ">" not in bare, bare
    assert all(ENTITY.match(bare, m.start()) for m in re.finditer("&", bare)), bare


def check_keyboard(message: TelegramMessage) -> None:
    buttons = [b for row in message.keyboard for b in row]
    assert len(buttons) <= 100
    for button in buttons:
        assert button["text"]
        if "callback_data" in button:
            assert len(button["callback_data"].encode("utf-8")) <= 64
            decode(button["callback_data"])
        else:
            assert button["url"].startswith(("http://", "https://"))


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples(name: str) -> None:
    card = SAMPLES[name]
    message = to_telegram(card)
    check_html(message.text)
    check_keyboard(message)
    if card.form is not None:
        for f in card.form.fields:
            prompt = field_prompt(f)
            check_html(prompt.text)
            check_keyboard(prompt)


def test_display_names_are_escaped() -> None:
    board = Leaderboard(
        Metric.POINTS,
        Period.WEEK,
        None,
        LeaderboardFilter(tag="<b>"),
        (LeaderboardRow(1, 1, "<script>&", "R&D <team>", 5),),
    )
    message = to_telegram(leaderboard(board))
    check_html(message.text)
    assert "&lt;script&gt;&amp;" in message.text
    assert "R&amp;D &lt;team&gt;" in message.text
    assert "<script>" not in message.text


def test_leaderboard_layout() -> None:
    message = to_telegram(SAMPLES["leaderboard"])
    assert message.text.startswith("<b>🏆 Top points this month</b>\n\n<i>Since 1 Nov 2026</i>")
    assert "🥇 <b>Li Wei</b> · 180 pts" in message.text
    assert [[b["text"] for b in row] for row in message.keyboard] == [
        ["Give kudos", "Full leaderboard"]
    ]
    assert message.reply_markup() == {"inline_keyboard": message.keyboard}
    assert to_telegram(notice("x")).reply_markup() is None


def test_long_text_is_cut_between_blocks() -> None:
    card = Card("long", "Long", "Long", body=tuple(Text("a&b " * 200) for _ in range(40)))
    message = to_telegram(card)
    check_html(message.text)
    assert message.text.endswith("\n…")


def test_unsafe_urls_are_dropped() -> None:
    card = Card("x", "x", "x", actions=(Action("Bad", url="javascript:alert(1)"),))
    assert to_telegram(card).keyboard == []


def test_form_card_offers_cancel_and_names_the_fields() -> None:
    message = to_telegram(SAMPLES["kudos_form"])
    assert "I'll ask you for: Who do you want to thank?, What did they do?, Tags." in message.text
    assert message.keyboard == [[{"text": "Cancel", "callback_data": "rw1|kudos|cancel|"}]]


def test_field_prompts_map_back() -> None:
    form = SAMPLES["kudos_form"].form
    assert form is not None
    tags = form.fields[2]
    prompt = field_prompt(tags)
    *choices, last = prompt.keyboard
    for index, row in enumerate(choices):
        assert parse_choice_token(row[0]["callback_data"]) == ("tags", index)
        assert row[0]["text"] == tags.choices[index].title
    assert [b["text"] for b in last] == ["Done", "Skip"]
    assert decode(last[0]["callback_data"]).verb == "done"
    assert decode(last[1]["callback_data"]).verb == "skip"

    confirm = field_prompt(Field("sure", "Sure?", FieldKind.CONFIRM))
    assert [parse_choice_token(b["callback_data"]) for b in confirm.keyboard[0]] == [
        ("sure", 0),
        ("sure", 1),
    ]
    people = field_prompt(form.fields[0])
    assert people.keyboard == []
    assert "@name or email" in people.text


def test_many_choices_fit_the_keyboard() -> None:
    tags = [TagView(f"t{i}", f"<Tag> & {'x' * 100} {i}", None, False) for i in range(200)]
    card = kudos_form(tags, submit="rw1|k|s|", cancel="rw1|k|c|")
    assert card.form is not None
    prompt = field_prompt(card.form.fields[2])
    check_html(prompt.text)
    check_keyboard(prompt)
    assert sum(len(row) for row in prompt.keyboard) == 100
    assert "Showing the first 98 of 200" in prompt.text


def test_field_name_too_long_for_callback_data() -> None:
    with pytest.raises(BadToken):
        choice_token("f" * 60, 1)
    with pytest.raises(BadToken):
        field_prompt(Field("f" * 60, "x", FieldKind.CHOICE, choices=(Choice("a", "A"),)))


def test_prefilled_choice_shows_its_title() -> None:
    field = Field("badge", "Badge", FieldKind.CHOICE, choices=(Choice("101", "Team <Player>"),))
    prompt = field_prompt(Field(**{**field.__dict__, "value": "101"}))
    assert "Current: Team &lt;Player&gt;" in prompt.text


def test_emoji_count_double_toward_the_limit() -> None:
    assert text_length("🥇a") == 3
    card = Card("long", "Long", "Long", body=tuple(Text("🥇" * 300) for _ in range(20)))
    message = to_telegram(card)
    check_html(message.text)
    assert len(message.text) < MAX_TEXT // 2 + 10
