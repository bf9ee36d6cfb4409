"""A fake Slack Web API on 127.0.0.1 for the Slack adapter's tests.

Point `AsyncWebClient(base_url=fake.api_url)` at it (`SLACK_API_URL`). It records every call
(method, parameters from the query string, form or JSON body, and the Authorization header) and
answers like Slack for the methods the bot uses: auth.test, chat.postMessage, chat.postEphemeral,
chat.update, views.open, users.info and users.list (paged by `limit` and `cursor`, from `users`),
conversations.open, and the three steps of a file upload (`files_upload_v2`):
files.getUploadURLExternal hands out an upload URL on this server, the bytes POSTed there are kept,
and files.completeUploadExternal shares them into `channel_id`; `files()` lists the files shared,
with their channel, title, comment and bytes. `response_url` posts go to `fake.response_url(name)`
and are recorded under the method name `response_url`. The message a slash command's HTTP answer
carries (`answered`) is posted by Slack itself: an ephemeral one is recorded like a `response_url`
post (the sender sees the same), an `in_channel` one under `in_channel` (in the command's channel);
`public()` lists what the whole channel sees.

`auth.test` names the token's workspace (`team_id`, and `enterprise_id` for Grid) and its bot user
(`BOT_USER`); set `auth_error` (e.g. "invalid_auth") to make it fail like a revoked token.
`add_user(..., team_id=..., enterprise_id=..., is_bot=...)` adds people of other workspaces, of
Grid orgs (`enterprise_user`) and bots. `broken[method] = (status, content_type, body)` answers a
method with something that is not Slack's JSON (the call is still recorded).

`rate_limit(method, retry_after)` makes the next call of `method` answer like Slack's rate limiter
(HTTP 429, `Retry-After`, `{"ok": false, "error": "ratelimited"}`), once; the refused call is
recorded under `method` in `limited`, not in `calls`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

BOT_USER = "UBOT0001"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    auth: str | None


@dataclass
class FakeSlackApi:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    team_id: str = "T0001"
    enterprise_id: str | None = None
    auth_error: str | None = None
    users_info_error: str | None = None  # e.g. "fatal_error": users.info fails for everyone
    # method -> (status, content type, body): answered instead of Slack's JSON, as a proxy or an
    # outage would (an HTML page, plain text, a truncated JSON body).
    broken: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    rate_limits: dict[str, int] = field(default_factory=dict)  # method: Retry-After, once
    limited: list[str] = field(default_factory=list)
    post_delay: float = 0.0  # seconds chat.postMessage hangs before answering (a hung Slack)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)  # file id -> its upload

    def __post_init__(self) -> None:
        self._ts = itertools.count(1)
        self._changed = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{name}", self._response)
        app.router.add_post("/upload/{file_id}", self._upload)
        self.server = TestServer(app, host="127.0.0.1")

    async def __aenter__(self) -> FakeSlackApi:
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.close()

    @property
    def api_url(self) -> str:
        return str(self.server.make_url("/api/"))

    def response_url(self, name: str = "cmd") -> str:
        return str(self.server.make_url(f"/response/{name}"))

    def add_user(
        self,
        user_id: str,
        real_name: str,
        email: str,
        tz: str = "Europe/Oslo",
        *,
        team_id: str | None = None,
        is_bot: bool = False,
        is_app_user: bool = False,
        enterprise_id: str | None = None,
    ) -> None:
        grid = {"enterprise_user": {"enterprise_id": enterprise_id}} if enterprise_id else {}
        self.users[user_id] = grid | {
            "id": user_id,
            "team_id": team_id or self.team_id,
            "name": real_name.lower().replace(" ", "."),
            "real_name": real_name,
            "tz": tz,
            "is_bot": is_bot,
            "is_app_user": is_app_user,
            "profile": {"real_name": real_name, "display_name": real_name, "email": email},
        }

    def answered(self, body: str) -> None:
        """Record the message in a slash command's HTTP answer, as Slack would post it."""
        if not body.strip().startswith("{"):
            return  # empty, or a plain sentence of bolt's own
        message = json.loads(body)
        if isinstance(message, dict) and ("text" in message or "blocks" in message):
            public = message.get("response_type") == "in_channel"
            method = "in_channel" if public else "response_url"
            self.calls.append(Call(method, {**message, "via": "ack"}, None))
            self._changed.set()

    def public(self) -> list[dict[str, Any]]:
        """What the whole channel sees: `chat.postMessage` calls and `in_channel` answers."""
        return [
            c.params
            for c in self.calls
            if c.method in ("chat.postMessage", "in_channel")
            or (c.method == "response_url" and c.params.get("response_type") == "in_channel")
        ]

    def rate_limit(self, method: str, retry_after: int = 0) -> None:
        """Answer the next call of `method` with a 429 and `Retry-After: retry_after`."""
        self.rate_limits[method] = retry_after

    def of(self, method: str) -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.method == method]

    def methods(self) -> list[str]:
        """The calls the bot made (not auth.test, nor what Slack posts from a command's answer)."""
        return [
            c.method for c in self.calls if c.method != "auth.test" and c.params.get("via") != "ack"
        ]

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(await request.post())
        for key in ("blocks", "view"):  # form-encoded calls carry these as JSON strings
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params

    def _record(self, method: str, params: dict[str, Any], request: web.Request) -> None:
        self.calls.append(Call(method, params, request.headers.get("Authorization")))
        self._changed.set()

    async def wait_for(self, method: str, count: int = 1) -> None:
        """Wait (at most 10 s) until `method` was called at least `count` times."""
        async with asyncio.timeout(10):
            while len(self.of(method)) < count:
                self._changed.clear()
                await self._changed.wait()

    def files(self) -> list[dict[str, Any]]:
        """The files shared by files.completeUploadExternal: channel, title, comment, content."""
        return [u for u in self.uploads.values() if u.get("channel")]

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="unknown upload")
        upload["content"] = await request.read()
        self._changed.set()
        return web.Response(text=f"OK - {len(upload['content'])}")

    async def _response(self, request: web.Request) -> web.Response:
        self._record("response_url", await request.json(), request)
        return web.Response(text="ok")

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        if method in self.rate_limits:
            self.limited.append(method)
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(self.rate_limits.pop(method))},
            )
        self._record(method, params, request)
        if method == "chat.postMessage" and self.post_delay:
            await asyncio.sleep(self.post_delay)
        if method in self.broken:
            status, content_type, body = self.broken[method]
            return web.Response(status=status, text=body, content_type=content_type)
        return web.json_response(self._answer(method, params))

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        ts = f"1763990000.{next(self._ts):06d}"
        if method == "auth.test":
            if self.auth_error:
                return {"ok": False, "error": self.auth_error}
            return {
                "ok": True,
                "url": "https://example.slack.com/",
                "team": "Example",
                "user": "rewards",
                "team_id": self.team_id,
                "user_id": BOT_USER,
                "bot_id": "B0001",
                "enterprise_id": self.enterprise_id,
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            return {"ok": True, "channel": params.get("channel"), "ts": ts, "message": {"ts": ts}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "chat.update":
            return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts")}
        if method == "views.open":
            view = dict(params.get("view") or {})
            view.update(id="V0001", hash="1763990000.abc", team_id=self.team_id)
            return {"ok": True, "view": view}
        if method == "users.info":
            if self.users_info_error:
                return {"ok": False, "error": self.users_info_error}
            user = self.users.get(str(params.get("user")))
            return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
        if method == "users.list":
            start, limit = int(params.get("cursor") or 0), int(params.get("limit") or 100)
            page = list(self.users.values())[start : start + limit]
            more = start + limit < len(self.users)
            cursor = str(start + limit) if more else ""
            return {"ok": True, "members": page, "response_metadata": {"next_cursor": cursor}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{len(self.uploads) + 1:07d}"
            self.uploads[file_id] = {"filename": params.get("filename"), "content": None}
            url = str(self.server.make_url(f"/upload/{file_id}"))
            return {"ok": True, "upload_url": url, "file_id": file_id}
        if method == "files.completeUploadExternal":
            listed = params.get("files")
            listed = json.loads(listed) if isinstance(listed, str) else listed or []
            done = []
            for entry in listed:
                upload = self.uploads.get(entry.get("id"))
                if upload is None or upload["content"] is None:
                    return {"ok": False, "error": "file_not_found"}
                upload.update(
                    channel=params.get("channel_id"),
                    title=entry.get("title"),
                    comment=params.get("initial_comment"),
                )
                done.append({"id": entry.get("id"), "title": entry.get("title")})
            return {"ok": True, "files": done}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(params.get("users", ""))[1:]}}
        return {"ok": False, "error": "unknown_method"}
