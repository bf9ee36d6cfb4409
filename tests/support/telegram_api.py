"""A fake Telegram Bot API on 127.0.0.1 for offline end-to-end tests.

Serves `/bot{token}/{method}` like api.telegram.org: parameters may come form-encoded (what
python-telegram-bot sends; nested values such as `reply_markup` arrive as JSON strings) or as a
JSON body. Every call is recorded (`calls`, `params(method)`), and the answers have the shapes the
real API returns, so PTB parses them into its own objects. `getUpdates` serves `queue_update`s;
`sendDocument` takes a multipart upload (its name and size are recorded under `document`, the
upload with its bytes in `files`); `getChatMember` answers from `set_chat_member` (someone never
added there has `left`, as on Telegram). `rate_limit(method, retry_after)` answers the next call of
`method` like Telegram's flood control (429, `parameters.retry_after`), once; `getMe` failing
(`failures`) or the fake being closed is how a test makes the start fail.
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
ADMIN_RIGHTS = (
    "is_anonymous",
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)
RESTRICTED_RIGHTS = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
    "can_edit_tag",
    "can_react_to_messages",
)


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


def _chat_member(user_id: int, status: str, is_member: bool) -> dict[str, Any]:
    """A ChatMember object of the given status, with the fields its type requires."""
    answer: dict[str, Any] = {
        "status": status,
        "user": {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"},
    }
    if status == "creator":
        answer["is_anonymous"] = False
    if status == "administrator":
        answer.update({name: True for name in ADMIN_RIGHTS}, can_be_edited=False)
    if status == "restricted":
        answer.update({name: False for name in RESTRICTED_RIGHTS}, is_member=is_member)
        answer["until_date"] = 0
    if status == "kicked":
        answer["until_date"] = 0
    return answer


@dataclass
class FakeBotAPI:
    token: str = TOKEN
    calls: list[Call] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, tuple[int, str]] = field(default_factory=dict)
    chat_members: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    rate_limits: dict[str, int] = field(default_factory=dict)  # method: retry_after, once
    limited: list[str] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)  # uploads: params and `content`
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

    def rate_limit(self, method: str, retry_after: int = 1) -> None:
        """Answer the next call of `method` with a 429 asking to retry after `retry_after` s."""
        self.rate_limits[method] = retry_after

    def queue_update(self, update: dict[str, Any]) -> None:
        self.updates.append(update)

    def set_chat_member(
        self, chat_id: int | str, user_id: int, status: str = "member", *, is_member: bool = True
    ) -> None:
        """What getChatMember says of `user_id` in `chat_id`: creator, administrator, member,
        restricted (with `is_member`), left or kicked."""
        self.chat_members[(str(chat_id), str(user_id))] = _chat_member(user_id, status, is_member)

    def chat_member_calls(self, user_id: int | None = None) -> list[dict[str, Any]]:
        calls = self.params("getChatMember")
        return [c for c in calls if user_id is None or str(c["user_id"]) == str(user_id)]

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
            # Uploaded files (sendDocument): their name and size under the field's name, their
            # bytes in `files` (what the recipient would download).
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    content = value.file.read()
                    params[name] = {"filename": value.filename, "size": len(content)}
                    self.files.append({**params, name: params[name], "content": content})
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
        if method in self.rate_limits:
            wait = self.rate_limits.pop(method)
            self.limited.append(method)
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {wait}",
                    "parameters": {"retry_after": wait},
                },
                status=429,
            )
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
        if method == "sendDocument":
            message = self._message(params, next(self._ids))
            document = params.get("document") or {}
            message["document"] = {
                "file_id": f"doc-{message['message_id']}",
                "file_unique_id": f"u-{message['message_id']}",
                "file_name": document.get("filename") if isinstance(document, dict) else None,
            }
            message["caption"] = params.get("caption")
            return message
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
        if method == "getChatMember":
            key = (str(params["chat_id"]), str(params["user_id"]))
            return self.chat_members.get(key) or _chat_member(int(key[1]), "left", False)
        return None

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates:
            await asyncio.sleep(min(float(params.get("timeout") or 0), 0.2))
        return list(self.updates)
