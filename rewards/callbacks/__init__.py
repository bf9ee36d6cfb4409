"""Workflow callbacks named in `completion_callbacks` / `step_callbacks`.

A callback is ``async def f(member, reward, env, **kwargs)``. The built-in ones do not send
anything themselves: they compose the message and return a `Notification`. The caller (the
workflow engine, a later issue) records what they return together with the completion, and the
notifier delivers it (email, Teams, Slack, Telegram) and retries; a message sent from inside a
callback could be lost, or sent for a completion that then rolled back. Returning None means
"nothing to send".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rewards.functions.base import EvaluationEnv, Recipient, RewardRef
from rewards.functions.registry import completion_callback


@dataclass(frozen=True)
class Notification:
    """A message to deliver to one member."""

    channel: Literal["email", "direct_message"]
    member_id: int
    to: str
    subject: str
    body: str
    reward_id: int
    attachments: dict[str, str] = field(default_factory=dict)


@completion_callback("rewards.callbacks.send_completion_email")
async def send_completion_email(
    member: Recipient, reward: RewardRef, env: EvaluationEnv, **kwargs: Any
) -> Notification:
    """An email telling the member they completed the workflow and earned the reward."""
    points = f" and {reward.points} points" if reward.points else ""
    return Notification(
        channel="email",
        member_id=member.id,
        to=member.email,
        subject=f"You completed {reward.reward}",
        body=(
            f"Hi {member.display_name},\n\n"
            f"you completed every step of {reward.reward} on {env.today.isoformat()} "
            f"and earned the badge{points}. Congratulations!\n"
        ),
        reward_id=reward.reward_id,
    )
