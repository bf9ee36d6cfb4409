"""The Teams backend on the Microsoft 365 Agents SDK (`microsoft-agents-*`, Python 3.12+).

The SDK's own pieces, used the way its aiohttp samples do (`CloudAdapter` with an
`MsalConnectionManager`), except for the HTTP entry: the endpoint's input gate and loopback rule
(`bots.teams.adapter`) run first, then this backend authenticates and hands the parsed activity to
`CloudAdapter.process_activity`, as the SDK's `jwt_authorization_middleware` + `start_agent_process`
would:

- With an app id, the bearer token is checked by the SDK's `JwtTokenValidator` (signature against
  the published Bot Framework / Entra keys, audience = the app id) with its issuer allow-list
  switched on (the SDK leaves it off by default), and a token naming a `serviceUrl` must name the
  activity's (the SDK only logs a mismatch unless a host validator is configured). Without an app
  id the identity is anonymous: replies go out without a token, which is why the endpoint only
  serves loopback clients and loopback `serviceUrl`s then.
- The SDK asks for two outbound tokens before every turn: one for the connector (replies) and one
  for the user-token service (sign-in cards). The bot never signs users in, so the user-token
  client is built anonymous (`_NoUserTokens`): one token request fewer per turn.
- Proactive posts: `continue_conversation` with the app id's claims (anonymous without one).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

from jwt import PyJWKClient
from microsoft_agents.activity import Activity, ActivityTypes, ConversationReference, InvokeResponse
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.aiohttp import CloudAdapter
from microsoft_agents.hosting.core import (
    AccessTokenProviderBase,
    AgentAuthConfiguration,
    ClaimsIdentity,
    ConnectionManager,
    ConnectorClientBase,
    JwtTokenValidator,
    RestChannelServiceClientFactory,
    TurnContext,
)

from bots.teams.backends import Logic, TeamsBackend, TeamsContext, Unauthenticated, as_json
from rewards.settings import Settings

log = logging.getLogger("bots.teams")

CONNECTION = "SERVICE_CONNECTION"


class Context(TeamsContext):
    """An Agents SDK `TurnContext` as the bot sees turns."""

    sdk: TurnContext

    async def send(self, activity: dict[str, Any] | str) -> str:
        outbound = activity if isinstance(activity, str) else Activity.model_validate(activity)
        response = await self.sdk.send_activity(outbound)
        return (response.id if response else None) or ""

    async def update(self, activity: dict[str, Any]) -> None:
        await self.sdk.update_activity(Activity.model_validate(activity))

    async def invoke_response(self, status: int, body: Any) -> None:
        value = InvokeResponse(status=status, body=body)
        await self.sdk.send_activity(Activity(type=ActivityTypes.invoke_response, value=value))

    async def member(self, account_id: str) -> dict[str, Any] | None:
        """`GET /v3/conversations/{team or conversation}/members/{id}` through the turn's own
        connector client, as `TeamsInfo.get_member` does (its package, microsoft-agents-hosting-
        teams, is deprecated; its successor, -msteams, brings the Graph SDK along)."""
        connector = self.sdk.services.get(ConnectorClientBase)  # type: ignore[type-abstract]
        if connector is None:
            raise LookupError("no connector client in this turn")
        data = self.activity.channel_data if isinstance(self.activity.channel_data, dict) else {}
        team = data.get("team") if isinstance(data.get("team"), dict) else {}
        where = (team or {}).get("id") or self.activity.conversation.id
        profile = await connector.conversations.get_conversation_member(where, account_id)
        found: dict[str, Any] | None = as_json(profile) if profile is not None else None
        return found

    def reference(self) -> dict[str, Any]:
        found: dict[str, Any] = as_json(self.activity.get_conversation_reference())
        return found


class _NoUserTokens(RestChannelServiceClientFactory):
    """The SDK's client factory, with the user-token client (OAuth sign-in, unused) anonymous."""

    async def create_user_token_client(
        self, context: Any, claims_identity: ClaimsIdentity, use_anonymous: bool = False
    ) -> Any:
        return await super().create_user_token_client(context, claims_identity, True)


class _KeysAt:
    """Signing keys read from an OpenID metadata document instead of Microsoft's (tests: a fake
    key server). Quacks like the validator's key cache: `get_signing_key(jwks_uri, header)`."""

    def __init__(self, openid_metadata_url: str) -> None:
        self.openid_metadata_url = openid_metadata_url
        self._client: PyJWKClient | None = None
        self._lock = threading.Lock()

    def _key(self, kid: str) -> Any:
        with self._lock:
            if self._client is None:
                with urllib.request.urlopen(self.openid_metadata_url, timeout=10) as answer:  # noqa: S310 - a configured http(s) URL
                    metadata = json.load(answer)
                self._client = PyJWKClient(metadata["jwks_uri"])
            return self._client.get_signing_key(kid)

    async def get_signing_key(self, jwks_uri: str, header: dict[str, Any]) -> Any:
        return await asyncio.to_thread(self._key, header["kid"])


class Backend(TeamsBackend):
    name = "agents"

    def __init__(
        self,
        settings: Settings,
        *,
        openid_metadata_url: str | None = None,
        token_provider: type[AccessTokenProviderBase] | None = None,
        **_: Any,
    ) -> None:
        # The Activity model logs every body it cannot read at ERROR, with a traceback, before
        # raising; `parse` answers those 400 itself, so that is only noise a caller can cause.
        logging.getLogger("microsoft_agents.activity.activity").setLevel(logging.CRITICAL)
        self.settings = settings
        self.config = AgentAuthConfiguration(
            client_id=settings.bot_app_id or None,
            tenant_id=settings.bot_tenant_id or "botframework.com",
            client_secret=settings.bot_app_secret or None,
            connection_name=CONNECTION,
            anonymous_allowed=not settings.bot_app_id,
            validate_issuer=True,
        )
        configurations = {CONNECTION: self.config}
        connections: ConnectionManager = (
            ConnectionManager(token_provider, connections_configurations=configurations)
            if token_provider is not None  # tests: outbound tokens without Entra
            else MsalConnectionManager(connections_configurations=configurations)
        )
        self.adapter = CloudAdapter(channel_service_client_factory=_NoUserTokens(connections))
        self._keys = _KeysAt(openid_metadata_url) if openid_metadata_url else None

        async def on_error(context: TurnContext, error: Exception) -> None:
            # The SDK's default sends the exception's text to the chat.
            log.error("teams: turn failed", exc_info=error)

        self.adapter.on_turn_error = on_error

    def parse(self, body: dict[str, Any]) -> Any:
        # A null field is an absent one (botbuilder reads it so): `"from": null` is then refused
        # for what it is, an activity without a sender.
        try:
            return Activity.model_validate({k: v for k, v in body.items() if v is not None})
        except Exception:  # not shaped like an Activity
            return None

    async def _identity(self, auth_header: str, activity: Any) -> ClaimsIdentity:
        if not self.settings.bot_app_id:
            return ClaimsIdentity()  # anonymous: the endpoint served a loopback client only
        scheme, _, token = auth_header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip() or " " in token.strip():
            raise Unauthenticated("no bearer token")
        validator = JwtTokenValidator(self.config)
        if self._keys is not None:
            validator._jwk_client_manager = self._keys  # type: ignore[assignment]
        try:
            identity = await validator.validate_token(token.strip())
        except Exception as problem:  # PyJWTError, ValueError, a key that cannot be fetched
            raise Unauthenticated(type(problem).__name__) from problem
        claimed = identity.get_claim_value("serviceurl")
        if claimed and claimed.rstrip("/") != (activity.service_url or "").rstrip("/"):
            raise Unauthenticated("the token names another serviceUrl")
        return identity

    async def process(
        self, auth_header: str, activity: Any, logic: Callable[[Any], Awaitable[None]]
    ) -> tuple[int, Any] | None:
        identity = await self._identity(auth_header, activity)
        invoke = await self.adapter.process_activity(identity, activity, logic)
        if activity.type != ActivityTypes.invoke:
            return None
        if invoke is None:
            return 501, None
        return invoke.status, as_json(invoke.body)

    async def continue_conversation(self, reference: dict[str, Any], logic: Logic) -> None:
        async def turn(context: TurnContext) -> None:
            await logic(Context(context))

        stored = ConversationReference.model_validate(reference)
        continuation = stored.get_continuation_activity()
        if self.settings.bot_app_id:
            await self.adapter.continue_conversation(self.settings.bot_app_id, continuation, turn)
        else:
            await self.adapter.continue_conversation_with_claims(
                ClaimsIdentity(), continuation, turn
            )

    def wrap(self, sdk_context: Any) -> TeamsContext:
        return Context(sdk_context)
