"""Action tokens: round trips, the 64-byte Telegram limit, and junk rejected with `BadToken`."""

from __future__ import annotations

import pytest

from cards.actions import (
    ActionToken,
    BadToken,
    choice_token,
    decode,
    done_token,
    encode,
    is_token,
    parse_choice_token,
    skip_token,
)


def test_round_trip() -> None:
    token = encode("kudos", "send", "4711")
    assert token == "rw1|kudos|send|4711"
    assert decode(token) == ActionToken("kudos", "send", "4711")
    assert decode(encode("lb", "full")) == ActionToken("lb", "full", "")


def test_bad_token_is_a_value_error() -> None:
    assert issubclass(BadToken, ValueError)


@pytest.mark.parametrize(
    ("dialog", "verb", "ref"),
    [
        ("Kudos", "send", ""),  # upper case
        ("", "send", ""),
        ("kudos", "send now", ""),
        ("kudos", "send", "a|b"),  # the separator
        ("kudos", "send", "ä"),  # not URL-safe
        ("kudos", "send", "a b"),
        ("a_very_long_dialog_name", "send", ""),
    ],
)
def test_encode_rejects_bad_parts(dialog: str, verb: str, ref: str) -> None:
    with pytest.raises(BadToken):
        encode(dialog, verb, ref)


def test_encode_enforces_64_bytes() -> None:
    fits = encode("kudos", "send", "x" * (64 - len("rw1|kudos|send|")))
    assert len(fits.encode()) == 64
    with pytest.raises(BadToken, match="64 bytes"):
        encode("kudos", "send", "x" * (65 - len("rw1|kudos|send|")))


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "hello",
        "rw1|kudos|send",
        "rw1|kudos|send|1|2",
        "rw2|kudos|send|1",
        "rw1|Kudos|send|1",
        "rw1|kudos|send|ä",
        "rw1|kudos|send|" + "x" * 60,
        "rw1||send|1",
    ],
)
def test_decode_rejects_junk(junk: str) -> None:
    with pytest.raises(BadToken):
        decode(junk)
    assert not is_token(junk)


def test_is_token() -> None:
    assert is_token("rw1|me|show|")
    assert not is_token(None)
    assert not is_token(42)


def test_choice_tokens() -> None:
    token = choice_token("tags", 12)
    assert token == "rw1|form|pick|tags.12"
    assert parse_choice_token(token) == ("tags", 12)
    assert parse_choice_token(choice_token("a.b", 0)) == ("a.b", 0)
    assert decode(done_token("tags")) == ActionToken("form", "done", "tags")
    assert decode(skip_token("message")) == ActionToken("form", "skip", "message")
    with pytest.raises(BadToken):
        choice_token("tags", -1)
    for other in (
        "rw1|form|pick|tags",
        "rw1|form|pick|.1",
        "rw1|form|done|tags.1",
        "rw1|x|pick|t.1",
    ):
        with pytest.raises(BadToken):
            parse_choice_token(other)
