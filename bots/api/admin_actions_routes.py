"""Admin actions over the REST API (admin scope): revoking kudos, locking and unlocking a member's
giving, starting a campaign's vote now, and reading the audit log.

The same `core.admin` actions as the chat and the CLI, so each is recorded in the audit log
(`GET /rewards/api/v1/audit`) in its own transaction, with the key that made it and, when the
body names a member (`as`), that member, who must then be an admin as in the chat. (Revoking an
award is `POST /awards/{id}/revoke`; closing and cancelling a campaign are
`POST /nominations/{id}/close|cancel`: they are recorded the same way.)
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import Field

from bots.api.auth import api_key, needs
from bots.api.bodies import Body, path_id, read_body
from bots.api.idempotency import idempotent
from bots.api.openapi import documented, param
from bots.api.pagination import encode_cursor, int_cursor_of, limit_of
from bots.api.principals import acting_member
from bots.api.rewards_routes import MemberRef
from bots.server import CORE
from rewards.admin.audit import ACTIONS, Actor
from rewards.admin.locks import MAX_REASON, LockState
from rewards.core import Core
from rewards.errors import InvalidInput
from rewards.services import members

routes = web.RouteTableDef()

Reason = Annotated[str, Field(max_length=MAX_REASON)]


class RevokeKudos(Body):
    as_: MemberRef | None = Field(default=None, alias="as")
    reason: Reason | None = None


class Lock(Body):
    as_: MemberRef | None = Field(default=None, alias="as")
    reason: Reason | None = None


class Unlock(Body):
    as_: MemberRef | None = Field(default=None, alias="as")


def _core(request: web.Request) -> Core:
    return request.app[CORE]


async def actor_of(request: web.Request, ref: int | str | None, field: str = "as") -> Actor:
    """The key acting as itself, or as the member its body names (an admin key only)."""
    key = api_key(request)
    member = await acting_member(request, ref, field)
    label = f"API key {key.name}"
    if member is None:
        return Actor(via="api", label=label, api_key_id=key.id)
    view = await members.get_member(_core(request).db, member)
    return Actor(via="api", label=f"{view.email} ({label})", member_id=member, api_key_id=key.id)


def _lock_json(state: LockState, locked: bool) -> dict[str, Any]:
    return {
        "member_id": state.member_id,
        "name": state.name,
        "locked": locked,
        "locked_at": state.locked_at.isoformat() if locked and state.locked_at else None,
        "reason": state.reason if locked else None,
    }


@routes.post(r"/rewards/api/v1/kudos/{kudos_id:\d{1,18}}/revoke")
@needs("admin")
@documented(body=RevokeKudos)
async def revoke_kudos(request: web.Request) -> web.Response:
    """Revoke kudos: reversal entries take each receiver's points back; the receivers and the
    giver are told by a direct message. 409 when they were already revoked."""
    kudos_id = path_id(request, "kudos_id")
    body = await read_body(request, RevokeKudos)

    async def work() -> tuple[int, dict[str, Any]]:
        who = await actor_of(request, body.as_)
        done = await _core(request).admin.revoke_kudos(kudos_id, body.reason, who)
        return 200, {
            "kudos_id": done.kudos_id,
            "giver": {"member_id": done.giver_id, "name": done.giver_name},
            "receivers": [{"member_id": m, "name": n} for m, n in done.receivers],
            "points_reversed": {str(m): p for m, p in sorted(done.points.items())},
            "reason": done.reason,
            "revoked_at": done.revoked_at.isoformat(),
        }

    return await idempotent(request, work)


@routes.post("/rewards/api/v1/members/{ref}/lock")
@needs("admin")
@documented(body=Lock, path={"ref": "The member's id or email."})
async def lock(request: web.Request) -> web.Response:
    """Lock a member's giving: they can still receive, but not give kudos or badges, nominate
    or vote. 409 when already locked."""
    body = await read_body(request, Lock)
    core = _core(request)

    async def work() -> tuple[int, dict[str, Any]]:
        member = await members.resolve(core.db, request.match_info["ref"])
        state = await core.admin.lock(member.id, body.reason, await actor_of(request, body.as_))
        return 200, _lock_json(state, True)

    return await idempotent(request, work)


@routes.post("/rewards/api/v1/members/{ref}/unlock")
@needs("admin")
@documented(body=Unlock, path={"ref": "The member's id or email."})
async def unlock(request: web.Request) -> web.Response:
    """Lift a member's giving lock. 409 when not locked."""
    body = await read_body(request, Unlock)
    core = _core(request)

    async def work() -> tuple[int, dict[str, Any]]:
        member = await members.resolve(core.db, request.match_info["ref"])
        state = await core.admin.unlock(member.id, await actor_of(request, body.as_))
        return 200, _lock_json(state, False)

    return await idempotent(request, work)


ACTION = param({"type": "string", "enum": list(ACTIONS)}, "Only this action.")
TARGET = param(
    {"type": "string", "pattern": r"^[a-z]{1,20}:\d{1,18}$"},
    "Only this target, as KIND:ID (member:12, award:7, kudos:3, campaign:2).",
)


@routes.get("/rewards/api/v1/audit")
@needs("admin")
@documented(paged=True, query={"action": ACTION, "target": TARGET})
async def audit_log(request: web.Request) -> web.Response:
    """The audit log of admin actions, newest first: when, via (chat, cli, api), who, the
    action, its target and the reason."""
    action = request.query.get("action") or None
    if action is not None and action not in ACTIONS:
        raise InvalidInput(f"Unknown action {action!r}; one of: {', '.join(ACTIONS)}.")
    kind, target_id = None, None
    if target := request.query.get("target"):
        kind, _, number = target.partition(":")
        if not kind or not number.isdigit() or len(number) > 18:
            raise InvalidInput("The target is KIND:ID, e.g. member:12.")
        target_id = int(number)
    limit = limit_of(request)
    found = await _core(request).admin.audit_log(
        limit=limit + 1,
        before_id=int_cursor_of(request),
        action=action,
        target_kind=kind,
        target_id=target_id,
    )
    shown = found[:limit]
    return web.json_response(
        {
            "items": [entry.to_json() for entry in shown],
            "next": encode_cursor(shown[-1].id) if len(found) > limit and shown else None,
        }
    )
