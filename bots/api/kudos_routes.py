"""Kudos tags and giving kudos."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field

from bots.api import views
from bots.api.auth import api_key
from bots.api.bodies import Body, read_body
from bots.api.idempotency import idempotent
from bots.api.openapi import documented, param
from bots.api.pagination import int_cursor_of, limit_of, page, page_after
from bots.api.rewards_routes import MemberRef
from bots.server import CORE
from rewards.services import members
from rewards.services.kudos import MAX_TAG_LENGTH, MAX_TAGS, KudosView, list_kudos, list_tags

routes = web.RouteTableDef()

MAX_KUDOS_TEXT = 4000  # the configured KUDOS_MAX_MESSAGE (at most this) is checked by the core
MAX_RECEIVERS = 100  # likewise KUDOS_MAX_RECEIVERS


class GiveKudos(Body):
    giver: MemberRef
    receivers: Annotated[list[MemberRef], Field(min_length=1, max_length=MAX_RECEIVERS)]
    message: Annotated[str, Field(min_length=1, max_length=MAX_KUDOS_TEXT)]
    tags: Annotated[
        list[Annotated[str, Field(max_length=MAX_TAG_LENGTH + 1)]], Field(max_length=MAX_TAGS)
    ] = Field(default_factory=list)


@routes.get("/kudos/api/v1/kudos_tags")
@documented(paged=True, summary="The kudos tags, by name.")
async def kudos_tags(request: web.Request) -> web.Response:
    found = sorted(await list_tags(request.app[CORE].db), key=lambda t: t.name)
    return web.json_response(page_after(request, found, lambda t: t.name, views.tag))


@routes.get("/kudos/api/v1/user_kudos")
@documented(paged=True, query={"member": param({"type": "string"}, "An id or email.")})
async def user_kudos(request: web.Request) -> web.Response:
    """Public kudos, newest first; `?member=` (id or email) keeps those they gave or received."""
    db = request.app[CORE].db
    ref = request.query.get("member", "").strip()
    member_id = (await members.resolve(db, ref)).id if ref else None
    limit = limit_of(request)
    found = await list_kudos(
        db, member_id=member_id, limit=limit + 1, before_id=int_cursor_of(request)
    )
    return web.json_response(page(found, limit, lambda k: k.id, views.kudos))


@routes.post("/kudos/api/v1/user_kudos")
@documented(body=GiveKudos, status=201, summary="Give kudos as `giver`.")
async def give_kudos(request: web.Request) -> web.Response:
    """Give kudos as `giver` (the seed's contract, so a write key may name the giver); the
    kudos record the key (`via_api_key`)."""
    body = await read_body(request, GiveKudos)
    core = request.app[CORE]

    async def give() -> KudosView:
        giver = await members.resolve(core.db, body.giver)
        receivers = [(await members.resolve(core.db, ref)).id for ref in body.receivers]
        return await core.kudos.give(
            giver.id, receivers, body.message, body.tags, api_key_id=api_key(request).id
        )

    async def work() -> tuple[int, dict[str, object]]:
        # One unit of work: the people named are read once (`give` takes them from the turn's
        # cache) and the kudos commits with one transaction on one connection, one whose
        # statements are planned once (it touches only the people it names).
        return 201, views.kudos(await core.db.transact(give, planned_once=True))

    return await idempotent(request, work)
