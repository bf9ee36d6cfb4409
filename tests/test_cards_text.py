"""Plain text for the console and CLI, and the `cards.text` compatibility re-export."""

from __future__ import annotations

import unicodedata

from cards import text as legacy
from cards.model import Choice, Field, FieldKind
from cards.render.text import field_prompt_text, leaderboard_text, to_text
from cards.samples import BOARD, sample_cards
from rewards.services.leaderboards import Leaderboard, LeaderboardFilter, Metric, Period

SAMPLES = sample_cards()


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def test_every_sample_renders() -> None:
    for name, card in SAMPLES.items():
        text = to_text(card)
        assert text.splitlines()[0] == card.title, name


def test_leaderboard_is_aligned() -> None:
    text = leaderboard_text(BOARD)
    lines = text.splitlines()
    assert lines[0] == "🏆 Top points this month"
    assert lines[1] == "Since 1 Nov 2026"
    assert lines[2].startswith("🥇 Li Wei ")
    assert lines[5].startswith("#4 Chidi Okafor ")
    # values line up on screen (a medal emoji is two columns wide, like "4.")
    assert len({width(line[: line.index("pts")]) for line in lines[2:7]}) == 1
    assert lines[-1].endswith("40 pts  Sales")  # no buttons: the CLI passes no tokens


def test_empty_leaderboard_says_so() -> None:
    board = Leaderboard(Metric.BADGES, Period.ALL, None, LeaderboardFilter(group="Guild"), ())
    text = leaderboard_text(board)
    assert "Nobody yet. Send some kudos to get things started!" in text
    assert "All time · Group: Guild" in text


def test_legacy_module_still_works() -> None:
    assert legacy.leaderboard_text(BOARD) == leaderboard_text(BOARD)
    board = Leaderboard(Metric.POINTS, Period.MONTH, None, LeaderboardFilter("Eng", tag="x"), ())
    assert legacy.leaderboard_title(board) == "Top points this month (Eng, #x)"
    assert legacy.MEDALS[1] == "🥇"


def test_help_puts_descriptions_under_commands() -> None:
    lines = to_text(SAMPLES["help"]).splitlines()
    assert lines[1] == "• /kudos @someone message #tag"
    assert lines[2] == "    Thank one or more people, with tags."


def test_forms_list_fields_and_buttons() -> None:
    text = to_text(SAMPLES["badge_picker"])
    assert "  - Message (optional)" in text
    assert text.endswith("[Next] [Cancel]")


def test_field_prompt_numbers_choices() -> None:
    form = SAMPLES["badge_picker"].form
    assert form is not None
    assert field_prompt_text(form.fields[0]) == (
        "Badge\n"
        "  (Choose a badge)\n"
        "  1) Team Player - 50 points · Always there for the team\n"
        "  2) Bug Hunter - 30 points · Found and fixed a nasty bug\n"
        "  3) Above & Beyond - 100 points"
    )
    assert field_prompt_text(Field("ok", "Sure?", FieldKind.CONFIRM)) == "Sure?\n  (yes or no)"
    tags = Field(
        "tags",
        "Tags",
        FieldKind.MULTI_CHOICE,
        required=False,
        choices=(Choice("a", "A"),),
        allow_custom=True,
        value=("a", "new"),
    )
    assert field_prompt_text(tags) == (
        "Tags (optional, Enter to skip)\n"
        "  (numbers separated by spaces, or new names)\n"
        "  1) A\n"
        "  current: A, new"
    )
