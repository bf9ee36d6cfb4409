"""Who belongs to the programme: the organisation's boundary, the membership policy, bots, and
account linking.

Every platform adapter asks this package before it writes anything for a person:

- `Boundary` says whether a Slack workspace, a Teams tenant or a Telegram chat is ours;
- `admit` turns what a platform says about a person (`Person`) into a member, or refuses with a
  polite sentence (`NotAMember`, `BotRefused`) and writes nothing;
- `check_mention_count` bounds a command's raw mentions before any of them is looked up;
- `issue_code` / `redeem_code` join an account on another platform to a member (`/link`).
"""

from rewards.membership.admission import (
    Person,
    admit,
    known_member,
    refusal_for,
    strangers_allowed,
)
from rewards.membership.boundary import Boundary
from rewards.membership.errors import (
    BOT_REFUSAL,
    OUTSIDE_REFUSAL,
    BotRefused,
    NotAMember,
    OutsideBoundary,
    not_a_member_sentence,
)
from rewards.membership.linking import LINK_TTL, Linked, issue_code, redeem_code
from rewards.membership.mentions import check_mention_count

__all__ = [
    "BOT_REFUSAL",
    "LINK_TTL",
    "OUTSIDE_REFUSAL",
    "BotRefused",
    "Boundary",
    "Linked",
    "NotAMember",
    "OutsideBoundary",
    "Person",
    "admit",
    "check_mention_count",
    "issue_code",
    "known_member",
    "not_a_member_sentence",
    "redeem_code",
    "refusal_for",
    "strangers_allowed",
]
