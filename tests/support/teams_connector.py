"""A fake Bot Connector (the service behind an activity's `serviceUrl`) for Teams tests.

It records what the bot sends and answers like the real one:
- POST /v3/conversations/{id}/activities[/{activityId}] -> {"id": "<new id>"}
- PUT /v3/conversations/{id}/activities/{activityId} -> {"id": activityId}
- GET /v3/conversations/{id}/members/{userId} -> the profile registered with `add_profile`
  (404 otherwise), which is how the bot learns a user's email; every such roster look-up is
  recorded in `lookups`.
- `host`: where it listens, 127.0.0.1 by default; `0.0.0.0` lets a test reach it through a
  non-loopback address of this machine (`url_on`), to prove the bot never calls such a URL.
- `openid_url`: OpenID metadata with one RSA key, for tests that check that a token signed with
  some other key is refused. The SDK fetches it with blocking `requests` on the event loop, so
  it is served from a thread of its own (on the loop it would deadlock).

The bot's connector client sends from `requests` threads, so the server runs on the test's loop
and simply awaits them.

The SDK behind the bot (`TEAMS_SDK`): `current_sdk()` is `REWARDS_TEST_TEAMS_SDK` (default
botbuilder) unless the `teams_sdk` fixture picked another for the test; `sdk_options` are what
the chosen backend needs to talk to this fake (the Agents SDK asks for an outbound token before
every authenticated turn, so it gets `FakeTokens` instead of Entra).
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

DEFAULT_SDK = os.environ.get("REWARDS_TEST_TEAMS_SDK", "botbuilder")
AGENTS_SDK = importlib.util.find_spec("microsoft_agents") is not None  # Python 3.12+
_chosen = {"sdk": DEFAULT_SDK}


def current_sdk() -> str:
    return _chosen["sdk"]


def choose_sdk(name: str) -> None:
    _chosen["sdk"] = name


class FakeTokens:
    """An outbound token provider for the Agents SDK (its `ConnectionManager` builds one per
    connection from the configuration): a fixed token, no Entra."""

    def __init__(self, configuration: Any) -> None:
        self.configuration = configuration

    async def get_access_token(
        self, resource_url: str, scopes: list[str], force_refresh: bool = False
    ) -> str:
        return "fake-outbound-token"


def sdk_options(sdk: str, openid_metadata_url: str | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {"openid_metadata_url": openid_metadata_url}
    if sdk == "agents":
        options["token_provider"] = FakeTokens
    return options


@dataclass
class Sent:
    method: str
    conversation: str
    activity_id: str | None
    body: dict[str, Any]

    @property
    def cards(self) -> list[dict[str, Any]]:
        return [
            a["content"]
            for a in self.body.get("attachments") or []
            if a.get("contentType") == "application/vnd.microsoft.card.adaptive"
        ]

    @property
    def text(self) -> str:
        return str(self.body.get("text") or "")


@dataclass
class FakeConnector:
    sent: list[Sent] = field(default_factory=list)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)  # user ids asked of the roster
    requests: int = 0  # every request to the connector API, whatever it was
    host: str = "127.0.0.1"
    kid: str = "bf-signing-key"
    server: TestServer | None = None
    keys_server: ThreadingHTTPServer | None = None
    _next: int = 1000

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def add_profile(self, user_id: str, **profile: Any) -> None:
        """Register what GET .../members/{user_id} returns (id, name, aadObjectId, email...)."""
        self.profiles[user_id] = {"id": user_id, **profile}

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/"))

    def url_on(self, address: str) -> str:
        """The connector's base URL through another address of this machine."""
        assert self.server is not None and self.server.port is not None
        return f"http://{address}:{self.server.port}/"

    @property
    def openid_url(self) -> str:
        assert self.keys_server is not None
        host, port = self.keys_server.server_address[:2]
        return f"http://{host!s}:{port}/openid"

    def _key_documents(self) -> dict[str, bytes]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, use="sig", endorsements=["msteams"])
        base = self.openid_url.rsplit("/", 1)[0]
        openid = {
            "issuer": "https://api.botframework.com",
            "jwks_uri": base + "/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
        }
        return {
            "/openid": json.dumps(openid).encode(),
            "/keys": json.dumps({"keys": [jwk]}).encode(),
        }

    def _start_keys_server(self) -> None:
        connector = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = connector._key_documents().get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body or b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.keys_server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.keys_server.serve_forever, daemon=True).start()

    def _new_id(self) -> str:
        self._next += 1
        return f"1763478{self._next:06d}"

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.sent.append(
            Sent("POST", request.match_info["conv"], request.match_info.get("aid"), body)
        )
        return web.json_response({"id": self._new_id()})

    async def _put(self, request: web.Request) -> web.Response:
        body = await request.json()
        aid = request.match_info["aid"]
        self.sent.append(Sent("PUT", request.match_info["conv"], aid, body))
        return web.json_response({"id": aid})

    async def _member(self, request: web.Request) -> web.Response:
        self.lookups.append(request.match_info["user"])
        profile = self.profiles.get(request.match_info["user"])
        if profile is None:
            return web.json_response(
                {"error": {"code": "MemberNotFoundInConversation"}}, status=404
            )
        return web.json_response(profile)

    @web.middleware
    async def _count(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests += 1
        response: web.StreamResponse = await handler(request)
        return response

    async def __aenter__(self) -> FakeConnector:
        app = web.Application(middlewares=[self._count])
        app.router.add_post("/v3/conversations/{conv}/activities", self._post)
        app.router.add_post("/v3/conversations/{conv}/activities/{aid}", self._post)
        app.router.add_put("/v3/conversations/{conv}/activities/{aid}", self._put)
        app.router.add_get("/v3/conversations/{conv}/members/{user}", self._member)
        self.server = TestServer(app, host=self.host)
        await self.server.start_server()
        self._start_keys_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        await self.server.close()
        if self.keys_server is not None:
            self.keys_server.shutdown()
            self.keys_server.server_close()

    def posted(self) -> list[Sent]:
        return [s for s in self.sent if s.method == "POST"]

    def updated(self) -> list[Sent]:
        return [s for s in self.sent if s.method == "PUT"]

    def clear(self) -> None:
        self.sent.clear()
        self.lookups.clear()
        self.requests = 0
