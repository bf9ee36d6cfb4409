"""Bounding a command's mentions before any of them is resolved.

Resolving an unknown mention may cost a platform look-up (Slack `users.info`, the Teams roster)
and, where the membership policy allows, a new member. So the count is checked on the raw
mentions first: a `/kudos` naming a thousand people is refused at once, having looked nobody up.
"""

from __future__ import annotations

from rewards.errors import InvalidInput


def check_mention_count(count: int, limit: int) -> None:
    """Raise InvalidInput (the kudos service's own sentence) when `count` exceeds `limit`."""
    if count > limit:
        raise InvalidInput(f"Kudos can go to at most {limit} people at once.")
