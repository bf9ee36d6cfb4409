"""The refusals of the membership layer, each a sentence fit for a chat reply.

They name no internals (no ids, no setting names a member cannot act on): the person reading
them can only ask their admin or link an account, so that is what they say.
"""

from __future__ import annotations

from rewards.errors import NotAllowed

OUTSIDE_REFUSAL = "Sorry, this rewards app only serves its own organisation."
BOT_REFUSAL = "Bots can't take part in rewards: they can't give or receive kudos, badges or votes."


def not_a_member_sentence(platform: str) -> str:
    """What an unknown person is told; on Telegram they can also link an account they have."""
    sentence = "You're not in this rewards programme yet. Please ask your admin to add you."
    if platform == "telegram":
        sentence += (
            " If you already use it on Slack or Teams, send /link there and then"
            " /link CODE here to join the two."
        )
    return sentence


class OutsideBoundary(NotAllowed):
    """A request from a workspace, tenant or chat that is not the organisation's."""

    code = "outside-boundary"

    def __init__(self, sentence: str = OUTSIDE_REFUSAL) -> None:
        super().__init__(sentence)


class NotAMember(NotAllowed):
    """Someone the membership policy does not admit (yet)."""

    code = "not-a-member"


class BotRefused(NotAllowed):
    """A bot acting or being named: bots never become members."""

    code = "bot-refused"

    def __init__(self, sentence: str = BOT_REFUSAL) -> None:
        super().__init__(sentence)
