"""Streaming a file to an HTTP client: the signed download links (`GET /rewards/files/{token}`)
and the API's export downloads share `stream_file`.

Everything that can refuse (the token, the recipe, the kind, the dates, the person's rights) is
checked before the first byte, so a refusal is a proper error response; once the headers are
out, a failure can only cut the connection (it is logged), which the client sees as an
incomplete download rather than a file that looks whole.
"""

from __future__ import annotations

import logging

from aiohttp import web

from rewards.core import Core
from rewards.errors import NotAllowed, RewardsError
from rewards.exports.files import OutgoingFile, file_for
from rewards.exports.links import verify
from rewards.services._subjects import load_person
from rewards.services.admins import is_admin

log = logging.getLogger("bots.files")


async def stream_file(request: web.Request, file: OutgoingFile) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": file.content_type,
            "Content-Disposition": f'attachment; filename="{file.name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    response.enable_chunked_encoding()
    started = False
    try:
        async for piece in file.open():
            if not started:
                await response.prepare(request)
                started = True
            await response.write(piece)
        if not started:
            await response.prepare(request)
    except Exception as problem:
        if started:
            log.warning("download of %s stopped: %r", file.name, problem)
        raise
    await response.write_eof()
    return response


async def allowed(core: Core, recipe: dict[str, object], member_id: int) -> None:
    """Whether the person a link was made for may still have its file: an export only while
    they are an admin, member data only their own."""
    if recipe.get("what") == "data":
        if recipe.get("member") != member_id:
            raise NotAllowed("This link is for someone else's data.")
        return
    async with core.db.read() as session:
        person = await load_person(session, member_id)
    if recipe.get("by") != member_id or not is_admin(core.settings, person.subject):
        raise NotAllowed("Exports are for admins (REWARDS_ADMINS).")


async def download(request: web.Request) -> web.StreamResponse:
    """A signed download link: the file it names, if still valid and still allowed."""
    from bots.server import CORE

    core: Core = request.app[CORE]
    now = core.clock.now()
    try:
        link = verify(core.settings.link_secret, request.match_info["token"], now)
        await allowed(core, link.recipe, link.member_id)
        file = file_for(core.db, core.settings, link.recipe, now)
    except RewardsError as problem:
        return web.Response(status=403, text=str(problem), content_type="text/plain")
    return await stream_file(request, file)
