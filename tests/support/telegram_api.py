"""A fake Telegram Bot API on 127.0.0.1 for offline end-to-end tests.

Serves `/bot{token}/{method}` like api.telegram.org: parameters may come form-encoded (what
python-telegram-bot sends; nested values such as `reply_markup` arrive as JSON strings) or as a
JSON body. Every call is recorded (`calls`, `params(method)`), and the answers have the shapes the
real API returns, so PTB parses them into its own objects. `getUpdates` serves `queue_update`s.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

TOKEN = "123456:TEST-telegram-token"
BOT_USER = {
    "id": 123456,
    "is_bot": True,
    "first_name": "Rewards",
    "username": "RewardsBot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
JSON_PARAMS = ("reply_markup", "commands", "allowed_updates", "entities", "link_preview_options")
DATE = 1795100400  # 2026-11-18


@dataclass
class Call:
    method: str
    params: dict[str, Any]


def _plain(text: str) -> str:
    """What Telegram stores of an HTML-formatted text: the tags parsed away."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def _chat(chat_id: Any) -> dict[str, Any]:
    number = int(chat_id)
    if number > 0:
        return {"id": number, "type": "private", "first_name": "Someone"}
    return {"id": number, "type": "supergroup", "title": "Team chat"}


@dataclass
class FakeBotAPI:
    token: str = TOKEN
    calls: list[Call] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, tuple[int, str]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    server: TestServer | None = None

    # --- test helpers ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.server is not None, "start the fake first"
        return str(self.server.make_url("")).rstrip("/")

    def methods(self) -> list[str]:
        return [c.method for c in self.calls]

    def params(self, method: str) -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.method == method]

    def clear(self) -> None:
        self.calls.clear()

    def queue_update(self, update: dict[str, Any]) -> None:
        self.updates.append(update)

    async def wait_for(self, method: str, count: int = 1, within: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while len(self.params(method)) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{method} not called {count}x; calls: {self.methods()}")
            await asyncio.sleep(0.02)

    # --- server ------------------------------------------------------------------------------

    async def start(self) -> FakeBotAPI:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            body = await request.json()
            return dict(body) if isinstance(body, dict) else {}
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        for name in JSON_PARAMS:
            if isinstance(params.get(name), str):
                params[name] = json.loads(params[name])
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append(Call(method, params))
        if method in self.failures:
            status, description = self.failures[method]
            return web.json_response(
                {"ok": False, "error_code": status, "description": description}, status=status
            )
        result = await self._result(method, params)
        if result is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        return web.json_response({"ok": True, "result": result})

    def _message(self, params: dict[str, Any], message_id: int) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": BOT_USER,
            "chat": _chat(params["chat_id"]),
            "date": DATE,
            "text": _plain(str(params.get("text", ""))),
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    async def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return BOT_USER
        if method == "sendMessage":
            return self._message(params, next(self._ids))
        if method in ("editMessageText", "editMessageReplyMarkup"):
            message = self._message(params, int(params["message_id"]))
            message["edit_date"] = DATE + 60
            return message
        if method in (
            "answerCallbackQuery",
            "setMyCommands",
            "setWebhook",
            "deleteWebhook",
            "deleteMyCommands",
        ):
            return True
        if method == "getUpdates":
            return await self._get_updates(params)
        return None

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates:
            await asyncio.sleep(min(float(params.get("timeout") or 0), 0.2))
        return list(self.updates)
