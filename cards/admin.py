"""Cards of the admins' commands: who is locked (`/lock` alone)."""

from __future__ import annotations

from collections.abc import Sequence

from cards.model import Card, ItemList, Row
from cards.screens import _date, _plural
from rewards.admin.locks import LockState


def locked_list(states: Sequence[LockState]) -> Card:
    """The members whose giving is locked, oldest lock first, each with since when and why."""
    rows = tuple(
        Row(
            "🔒",
            state.name,
            f"since {_date(state.locked_at)}" if state.locked_at else "",
            state.reason or "",
        )
        for state in states
    )
    return Card(
        screen="admin_locked",
        title="🔒 Locked members",
        summary=f"{_plural(len(states), 'member')} locked",
        body=(
            ItemList(rows, empty="Nobody is locked. /lock @someone [reason] pauses their giving."),
        ),
    )
