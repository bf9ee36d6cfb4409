"""The rewards shop over the REST API: items, a member's wallet and redemptions, the
redemption queue with its decisions, and admin grants. Thin routes over `core.shop`, the same
service as the chat and `rewards redemptions` / `rewards points`.

Scopes: reading items and a member's wallet and redemptions needs `read` (like a member's
history); redeeming for a member needs `write` (an integration records what a member asked for,
as it records kudos from a named giver: the member's own rights, balance and limits are checked,
and an item that needs approval still waits for an admin); the queue, decisions and grants need
`admin`. A decision is recorded as made by the API key ("API key NAME") unless an admin key
names an admin member with `as`.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import Field

from bots.api.auth import api_key, needs
from bots.api.bodies import Body, path_id, read_body
from bots.api.idempotency import idempotent
from bots.api.openapi import documented, param
from bots.api.pagination import encode_cursor, int_cursor_of, limit_of, page_after
from bots.api.rewards_routes import MemberRef
from bots.server import CORE
from rewards.core import Core
from rewards.economy.grants import MAX_GRANT, Grant
from rewards.economy.redemptions import MAX_NOTE, MAX_REASON
from rewards.economy.shop.model import STATES, Balance, RedemptionView, ShopItem
from rewards.errors import NotAllowed
from rewards.services import members
from rewards.services._subjects import load_person
from rewards.services.admins import is_admin

routes = web.RouteTableDef()

REDEMPTION = r"/rewards/api/v1/redemptions/{redemption_id:\d{1,18}}"
STATE = param({"type": "string", "enum": list(STATES)}, "Only redemptions in this state.")
MEMBER = param({"type": "string"}, "Only this member's redemptions (id or email).")


class Redeem(Body):
    member: MemberRef
    item: (
        Annotated[int, Field(ge=1, le=2**31 - 1)]
        | Annotated[str, Field(min_length=1, max_length=200)]
    )
    note: Annotated[str, Field(max_length=MAX_NOTE)] | None = None


class Decide(Body):
    as_: MemberRef | None = Field(default=None, alias="as")


class Reject(Body):
    reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON)]
    as_: MemberRef | None = Field(default=None, alias="as")


class GrantPoints(Body):
    points: Annotated[int, Field(ge=-MAX_GRANT, le=MAX_GRANT)]
    reason: Annotated[str, Field(min_length=1, max_length=500)]


def _core(request: web.Request) -> Core:
    return request.app[CORE]


def _item(item: ShopItem, stock_left: int | None) -> dict[str, Any]:
    return {**item.to_json(), "stock_left": stock_left}


def _balance(member_id: int, name: str, balance: Balance) -> dict[str, Any]:
    return {
        "member_id": member_id,
        "display_name": name,
        "earned": balance.earned,
        "spent": balance.spent,
        "spendable": balance.spendable,
    }


def _grant(done: Grant) -> dict[str, Any]:
    return {
        "entry_id": done.entry_id,
        "kind": "adjustment",
        "member_id": done.member_id,
        "points": done.points,
        "reason": done.reason,
        "created_at": done.created_at.isoformat(),
        "balance": _balance(done.member_id, done.member_name, done.balance),
    }


async def _by(request: web.Request, ref: int | str | None) -> str:
    """Who a decision is recorded as made by: the key, or the admin member `as` names."""
    core = _core(request)
    if ref is None:
        return f"API key {api_key(request).name}"
    member = await members.resolve(core.db, ref)
    async with core.db.read() as session:
        person = await load_person(session, member.id)
    if not is_admin(core.settings, person.subject):
        raise NotAllowed(f"{member.email} is not an admin (REWARDS_ADMINS).")
    return member.email


async def _paged_redemptions(
    request: web.Request, *, state: str | None, member_id: int | None
) -> dict[str, Any]:
    limit = limit_of(request)
    found = await _core(request).shop.list(
        state=state, member_id=member_id, limit=limit + 1, before_id=int_cursor_of(request)
    )
    shown = found[:limit]
    return {
        "items": [view.to_json() for view in shown],
        "next": encode_cursor(shown[-1].id) if len(found) > limit and shown else None,
    }


@routes.get("/rewards/api/v1/shop/items")
@documented(paged=True)
async def list_items(request: web.Request) -> web.Response:
    """The shop's items on offer, by id, with what is left of their stock."""
    found = await _core(request).shop.items()
    return web.json_response(
        page_after(request, found, lambda pair: pair[0].item_id, lambda pair: _item(*pair))
    )


@routes.get("/rewards/api/v1/members/{ref}/wallet")
@documented(summary="A member's points: earned, spent in the shop, and spendable.")
async def wallet(request: web.Request) -> web.Response:
    core = _core(request)
    member = await members.resolve(core.db, request.match_info["ref"])
    found = await core.shop.balance(member.id)
    return web.json_response(_balance(member.id, member.display_name, found))


@routes.get("/rewards/api/v1/members/{ref}/redemptions")
@documented(paged=True, query={"state": STATE})
async def member_redemptions(request: web.Request) -> web.Response:
    """A member's redemptions, newest first."""
    member = await members.resolve(_core(request).db, request.match_info["ref"])
    state = request.query.get("state") or None
    return web.json_response(await _paged_redemptions(request, state=state, member_id=member.id))


@routes.get("/rewards/api/v1/redemptions")
@needs("admin")
@documented(paged=True, query={"state": STATE, "member": MEMBER})
async def list_redemptions(request: web.Request) -> web.Response:
    """Redemptions, newest first (`state=requested`: the approval queue)."""
    core = _core(request)
    ref = request.query.get("member")
    member_id = (await members.resolve(core.db, ref)).id if ref else None
    state = request.query.get("state") or None
    return web.json_response(await _paged_redemptions(request, state=state, member_id=member_id))


@routes.get(REDEMPTION)
@needs("admin")
@documented(summary="One redemption, with who decided and when.")
async def get_redemption(request: web.Request) -> web.Response:
    view = await _core(request).shop.get(path_id(request, "redemption_id"))
    return web.json_response(view.to_json())


@routes.post("/rewards/api/v1/redemptions")
@documented(body=Redeem, status=201)
async def redeem(request: web.Request) -> web.Response:
    """Redeem an item (id or name) for a member, who must be allowed it, afford it and be under
    its limit; an item that needs approval is "requested" and the admins are told."""
    body = await read_body(request, Redeem)
    core = _core(request)

    async def work() -> tuple[int, dict[str, Any]]:
        member = await members.resolve(core.db, body.member)
        view = await core.shop.redeem(member.id, body.item, body.note)
        return 201, view.to_json()

    return await idempotent(request, work)


async def _decide(request: web.Request, body_model: type[Decide] | type[Reject]) -> web.Response:
    redemption_id = path_id(request, "redemption_id")
    body = await read_body(request, body_model)
    shop = _core(request).shop
    action = request.path.rsplit("/", 1)[-1]

    async def work() -> tuple[int, dict[str, Any]]:
        by = await _by(request, body.as_)
        view: RedemptionView
        if isinstance(body, Reject):
            view = await shop.reject(redemption_id, by=by, reason=body.reason)
        elif action == "approve":
            view = await shop.approve(redemption_id, by=by)
        else:
            view = await shop.fulfil(redemption_id, by=by)
        return 200, view.to_json()

    return await idempotent(request, work)


@routes.post(REDEMPTION + "/approve")
@needs("admin")
@documented(body=Decide)
async def approve(request: web.Request) -> web.Response:
    """Approve a requested redemption (the member is told); 403 when it was already decided."""
    return await _decide(request, Decide)


@routes.post(REDEMPTION + "/reject")
@needs("admin")
@documented(body=Reject)
async def reject(request: web.Request) -> web.Response:
    """Reject a redemption waiting for approval (or approved on request, its item needing none):
    its points and stock are given back; 403 once an admin decided it."""
    return await _decide(request, Reject)


@routes.post(REDEMPTION + "/fulfil")
@needs("admin")
@documented(body=Decide)
async def fulfil(request: web.Request) -> web.Response:
    """Mark an approved redemption fulfilled (handed over; the member is told)."""
    return await _decide(request, Decide)


@routes.post("/rewards/api/v1/members/{ref}/grants")
@needs("admin")
@documented(body=GrantPoints, status=201)
async def grant(request: web.Request) -> web.Response:
    """Grant points (negative: a correction, never below what the member can still spend) as a
    ledger entry of kind "adjustment", shown in the member's history."""
    body = await read_body(request, GrantPoints)
    core = _core(request)

    async def work() -> tuple[int, dict[str, Any]]:
        member = await members.resolve(core.db, request.match_info["ref"])
        done = await core.shop.grant(member.id, body.points, reason=body.reason)
        return 201, _grant(done)

    return await idempotent(request, work)
