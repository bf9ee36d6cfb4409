"""Training callbacks (the seed's Sales Mastery workflow)."""

from __future__ import annotations

from typing import Any

from rewards.callbacks import Notification
from rewards.functions.base import EvaluationEnv, Recipient, RewardRef
from rewards.functions.registry import completion_callback


def certificate_text(member_name: str, program: str, day: str) -> str:
    """A plain-text certificate; plain so every channel (email, chat) can carry it unchanged."""
    line = "=" * 60
    return (
        f"{line}\n"
        f"{'CERTIFICATE OF COMPLETION':^60}\n"
        f"{line}\n\n"
        f"{'This certifies that':^60}\n\n"
        f"{member_name:^60}\n\n"
        f"{'has completed':^60}\n\n"
        f"{program:^60}\n\n"
        f"{'on ' + day:^60}\n"
        f"{line}\n"
    )


@completion_callback("rewards.callbacks.training.send_certificate")
async def send_certificate(
    member: Recipient, reward: RewardRef, env: EvaluationEnv, **kwargs: Any
) -> Notification:
    """An email to the member with a completion certificate for the training program attached."""
    day = env.today.isoformat()
    return Notification(
        channel="email",
        member_id=member.id,
        to=member.email,
        subject=f"Your certificate: {reward.reward}",
        body=(
            f"Hi {member.display_name},\n\n"
            f"congratulations on completing {reward.reward}. Your certificate is attached.\n"
        ),
        reward_id=reward.reward_id,
        attachments={
            f"certificate-{reward.reward_id}-{member.id}.txt": certificate_text(
                member.display_name, reward.reward, day
            )
        },
    )
