"""The catalogue (rewards, categories, groups, types), a member's rewards, and badge_assign."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from aiohttp import web
from pydantic import Field

from bots.api import views
from bots.api.auth import api_key
from bots.api.bodies import Body, Id, path_id, read_body
from bots.api.idempotency import idempotent
from bots.api.openapi import documented, param
from bots.api.pagination import int_cursor_of, limit_of, page, page_after
from bots.server import CORE
from rewards.errors import InvalidInput
from rewards.services import catalog, members
from rewards.services.awards import MAX_MESSAGE, AwardSource
from rewards.services.profile import member_awards
from rewards.store.db import Database

MemberRef = Id | Annotated[str, Field(min_length=1, max_length=320)]

routes = web.RouteTableDef()


class BadgeAssign(Body):
    reward_id: Id
    giver: MemberRef
    receiver: MemberRef
    message: Annotated[str, Field(max_length=MAX_MESSAGE)] | None = None


@routes.get("/rewards/api/v1/rewards")
@documented(paged=True, summary="The catalogue's rewards, by id.")
async def list_rewards(request: web.Request) -> web.Response:
    found = await catalog.list_definitions(request.app[CORE].db)
    return web.json_response(page_after(request, found, lambda d: d.reward_id, views.reward))


@routes.get(r"/rewards/api/v1/rewards/{reward_id:\d{1,18}}")
@documented(summary="One reward of the catalogue.")
async def get_reward(request: web.Request) -> web.Response:
    found = await catalog.get_definition(request.app[CORE].db, path_id(request, "reward_id"))
    return web.json_response(views.reward(found))


def _names_route(path: str, lister: Callable[[Database], Awaitable[list[str]]]) -> None:
    async def handler(request: web.Request) -> web.Response:
        names = await lister(request.app[CORE].db)
        return web.json_response(page_after(request, sorted(names), str, lambda n: {"name": n}))

    what = path.rpartition("/")[2].replace("_", " ")
    routes.get(path)(documented(paged=True, summary=f"The {what}, by name.")(handler))


_names_route("/rewards/api/v1/reward_categories", catalog.list_categories)
_names_route("/rewards/api/v1/reward_groups", catalog.list_groups)
_names_route("/rewards/api/v1/reward_types", catalog.list_reward_types)


@routes.get("/rewards/api/v1/users_rewards")
@documented(
    paged=True,
    query={"member": param({"type": "string", "minLength": 1}, "An id or email.", required=True)},
    summary="A member's rewards, newest first.",
)
async def users_rewards(request: web.Request) -> web.Response:
    ref = request.query.get("member", "").strip()
    if not ref:
        raise InvalidInput("Say whose rewards to list: ?member= followed by an id or an email.")
    db = request.app[CORE].db
    member = await members.resolve(db, ref)
    limit = limit_of(request)
    found = await member_awards(db, member.id, limit=limit + 1, before_id=int_cursor_of(request))
    return web.json_response(page(found, limit, lambda a: a.id, views.award))


@routes.post("/api/v1/badge_assign")
@documented(body=BadgeAssign, status=201, summary="Give a reward as `giver`.")
async def badge_assign(request: web.Request) -> web.Response:
    """Give a reward as `giver`, whose own right to give it is checked (the seed's contract, so
    a write key may name the giver); the award records the key (`via_api_key`)."""
    body = await read_body(request, BadgeAssign)
    core = request.app[CORE]

    async def work() -> tuple[int, dict[str, object]]:
        giver = await members.resolve(core.db, body.giver)
        receiver = await members.resolve(core.db, body.receiver)
        view = await core.awards.award(
            body.reward_id, to=receiver.id, by=giver.id, message=body.message,
            source=AwardSource.API, api_key_id=api_key(request).id,
        )  # fmt: skip
        return 201, views.award(view)

    return await idempotent(request, work)
