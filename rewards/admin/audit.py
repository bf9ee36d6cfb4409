"""The audit log of admin actions: who did what to what, when and why.

Each action records its row in its own transaction (`record` takes the action's session), so an
action is never done unrecorded and a refused or failed one leaves nothing. Who acted is an
`Actor`: a member in the chat (or the CLI's `--as`), the CLI as the system, or a REST API key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from rewards.clock import as_utc
from rewards.store.db import Database
from rewards.store.models import AdminAudit

AUDIT_TABLE = AdminAudit.__table__  # type: ignore[attr-defined]
_INSERT = insert(AUDIT_TABLE)

# The actions, as stored and shown.
AWARD_REVOKE = "award.revoke"
KUDOS_REVOKE = "kudos.revoke"
MEMBER_LOCK = "member.lock"
MEMBER_UNLOCK = "member.unlock"
CAMPAIGN_VOTING = "campaign.voting"
CAMPAIGN_CLOSE = "campaign.close"
CAMPAIGN_CANCEL = "campaign.cancel"
ACTIONS = (
    AWARD_REVOKE,
    KUDOS_REVOKE,
    MEMBER_LOCK,
    MEMBER_UNLOCK,
    CAMPAIGN_VOTING,
    CAMPAIGN_CLOSE,
    CAMPAIGN_CANCEL,
)


@dataclass(frozen=True)
class Actor:
    """Who performs an admin action.

    `member_id` is checked against `REWARDS_ADMINS` before anything is written; without it the
    actor is the CLI acting as the system, or an API key whose admin scope the route checked.
    """

    via: str  # "chat", "cli" or "api"
    label: str  # as a person would name them: an email, "cli", "API key ops-tool"
    member_id: int | None = None
    api_key_id: int | None = None

    @classmethod
    def member(cls, via: str, member_id: int, label: str = "") -> Actor:
        return cls(via=via, label=label or f"member {member_id}", member_id=member_id)

    @classmethod
    def cli(cls) -> Actor:
        return cls(via="cli", label="cli (system)")

    @classmethod
    def api_key(cls, key_id: int, name: str) -> Actor:
        return cls(via="api", label=f"API key {name}", api_key_id=key_id)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    via: str
    actor: str
    actor_member_id: int | None
    action: str
    target_kind: str
    target_id: int
    target_label: str
    reason: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "via": self.via,
            "actor": self.actor,
            "actor_member_id": self.actor_member_id,
            "action": self.action,
            "target": {"kind": self.target_kind, "id": self.target_id, "label": self.target_label},
            "reason": self.reason,
        }


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    *,
    target_kind: str,
    target_id: int,
    target_label: str,
    reason: str | None,
    now: datetime,
) -> None:
    """One audit row, in the caller's (the action's) transaction."""
    await session.execute(
        _INSERT,
        {
            "created_at": now,
            "via": actor.via,
            "actor": actor.label[:320],
            "actor_member_id": actor.member_id,
            "api_key_id": actor.api_key_id,
            "action": action,
            "target_kind": target_kind,
            "target_id": target_id,
            "target_label": target_label[:300],
            "reason": (reason or None) and reason[:500],
        },
    )


async def entries(
    db: Database,
    *,
    limit: int = 50,
    before_id: int | None = None,
    action: str | None = None,
    target_kind: str | None = None,
    target_id: int | None = None,
) -> list[AuditEntry]:
    """The newest entries first (by id), a page at a time (`before_id`: the smallest id of the
    previous page), optionally for one action or one target."""
    query = select(AdminAudit)
    if before_id is not None:
        query = query.where(col(AdminAudit.id) < before_id)
    if action:
        query = query.where(col(AdminAudit.action) == action)
    if target_kind:
        query = query.where(col(AdminAudit.target_kind) == target_kind)
    if target_id is not None:
        query = query.where(col(AdminAudit.target_id) == target_id)
    query = query.order_by(col(AdminAudit.id).desc()).limit(max(1, min(limit, 1000)))
    async with db.read() as session:
        rows = (await session.scalars(query)).all()
    return [
        AuditEntry(
            id=int(row.id or 0),
            at=as_utc(row.created_at),
            via=row.via,
            actor=row.actor,
            actor_member_id=row.actor_member_id,
            action=row.action,
            target_kind=row.target_kind,
            target_id=row.target_id,
            target_label=row.target_label,
            reason=row.reason,
        )
        for row in rows
    ]
