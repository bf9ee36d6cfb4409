"""`POST /rewards/api/v1/members/{member_id}/forget` (admin scope): erase a member's personal data.

The same erasure as `/forget me` and `rewards members forget` (`rewards.privacy.erasure`). The
member is named by id, never by email, so the request's own audit row and idempotency record
carry no personal data. A second call answers 200 with `already: true` and changes nothing. The
request needs no body; one that is sent must be `{}` (anything else is refused, nothing erased).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bots.api.auth import needs
from bots.api.bodies import Body, path_id, read_body
from bots.api.idempotency import idempotent
from bots.api.openapi import documented
from bots.server import CORE
from rewards.core import Core
from rewards.privacy.erasure import PLACEHOLDER_NAME, forget_member

routes = web.RouteTableDef()


class Forget(Body):
    """No fields: the member is named by the path. A body, when sent, must be this (`{}`), so a
    malformed or unexpected body is refused before anything is erased."""


@routes.post(r"/rewards/api/v1/members/{member_id:\d{1,18}}/forget")
@needs("admin")
@documented(path={"member_id": "The member's id."})
async def forget(request: web.Request) -> web.Response:
    """Erase the member's personal data (name, email, accounts, birthday, text they wrote); their
    points stay in the ledger under an anonymous "Former member". 404 for an unknown member."""
    core: Core = request.app[CORE]
    member_id = path_id(request, "member_id")
    if request.can_read_body:
        await read_body(request, Forget)

    async def work() -> tuple[int, dict[str, Any]]:
        done = await forget_member(core.db, member_id, now=core.clock.now())
        return 200, {
            "member_id": done.member_id,
            "display_name": PLACEHOLDER_NAME,
            "already": done.already,
            "accounts_removed": done.accounts,
            "texts_erased": done.texts,
            "records_cleaned": done.records,
        }

    return await idempotent(request, work)
