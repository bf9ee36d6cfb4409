"""Announcement screens: the card posted in a channel, and the one each recipient gets directly.

A channel gets one card per announcement however many people it names ("folded"): a lottery with
three winners is one message listing the three, not three messages that bury the conversation.
Each recipient also gets a personal card that speaks to them ("Happy birthday, Ana!") and repeats
the line and the points meant for them. Both are ordinary `Card`s, so every renderer draws them
(Adaptive Card on Teams, Block Kit on Slack, HTML on Telegram, text in the console and in email).
"""

from __future__ import annotations

from cards.model import Block, Card, Image, ItemList, Row, Text, Tone
from cards.screens import _is_web_url, _names, _plural
from rewards.services.announcements import AnnouncedItem, AnnouncementView

EMOJI = {
    "lottery": "🎉",
    "birthday": "🎂",
    "anniversary": "🎊",
    "award": "🏅",
    "nomination_open": "🗳️",
    "nomination_voting": "🗳️",
    "nomination_winners": "🏆",
    "nomination_cancelled": "🗳️",
    "redemption_requested": "🛍️",
    "redemption_decided": "🛍️",
    "admin_notice": "🛡️",
}
"""The lead of the title and of each line, per announcement kind (anything else: 🏅)."""

GREETING = {
    "lottery": "Congratulations, {name}!",
    "birthday": "Happy birthday, {name}!",
    "anniversary": "Happy work anniversary, {name}!",
    "award": "Congratulations, {name}!",
    "redemption_requested": "{name}, a redemption waits for your decision",
    "redemption_decided": "{name}, news about your redemption",
    "admin_notice": "{name}, a note from the admins",
}

FOLDED_LIMIT = 50
"""Lines shown in one channel card; beyond that the card says how many more (a channel message
listing hundreds of people is unreadable and hits platform limits)."""


def _emoji(kind: str) -> str:
    return EMOJI.get(kind, "🏅")


def _points(points: int) -> str:
    return f"+{_plural(points, 'point')}" if points > 0 else ""


def _icon(view: AnnouncementView) -> list[Block]:
    """The reward's picture when it is a web image; emoji or file names are not shown."""
    if view.icon and _is_web_url(view.icon):
        return [Image(view.icon, view.reward_name or view.title, "medium")]
    return []


def announcement(view: AnnouncementView) -> Card:
    """The channel card: the title, then one line per person with their text and points."""
    emoji = _emoji(view.kind)
    shown = view.items[:FOLDED_LIMIT]
    rows = tuple(
        Row(emoji, item.name, _points(item.points), item.text if item.text != item.name else "")
        for item in shown
    )
    body: list[Block] = [*_icon(view), ItemList(rows)]
    hidden = len(view.items) - len(shown)
    if hidden > 0:
        body.append(
            Text(f"…and {_plural(hidden, 'more person', 'more people')}.", tone=Tone.SUBTLE)
        )
    names = _names([item.name for item in view.items[:3]])
    if len(view.items) > 3:
        names = f"{', '.join(item.name for item in view.items[:3])} and {len(view.items) - 3} more"
    return Card(
        screen=f"announcement_{view.kind}",
        title=f"{emoji} {view.title}",
        summary=f"{view.title}: {names}",
        body=tuple(body),
    )


def personal(view: AnnouncementView, item: AnnouncedItem) -> Card:
    """The direct message (and email) to one recipient: a greeting, what it is for, the points."""
    emoji = _emoji(view.kind)
    first = item.name.split()[0] if item.name.strip() else item.name
    greeting = GREETING.get(view.kind, GREETING["award"]).format(name=first)
    body: list[Block] = [*_icon(view), Text(view.title, heading=True)]
    if item.text and item.text != item.name:
        body.append(Text(item.text))
    if item.points > 0:
        body.append(Text(_points(item.points), tone=Tone.GOOD))
    return Card(
        screen=f"announcement_{view.kind}_personal",
        title=f"{emoji} {greeting}",
        summary=f"{greeting} {view.title}",
        body=tuple(body),
    )
