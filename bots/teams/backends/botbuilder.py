"""The Teams backend on the Bot Framework SDK (`botbuilder-*` 4.17, the family's final release).

Authentication is the SDK's own (`ConfigurationBotFrameworkAuthentication`): with an app id every
request must carry a Bot Framework or Entra token signed by a published key, for this app id, and
naming the activity's `serviceUrl`. Outbound calls get their token from the SDK when first made.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from botbuilder.core import InvokeResponse, TurnContext, serializer_helper
from botbuilder.core.teams import TeamsInfo
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity, ActivityTypes, ConversationReference
from botframework.connector.auth import AuthenticationConstants as Auth
from botframework.connector.auth import CallerIdConstants

from bots.teams.backends import Logic, TeamsBackend, TeamsContext, Unauthenticated, as_json
from rewards.settings import Settings

log = logging.getLogger("bots.teams")


class _Config:
    """What ConfigurationBotFrameworkAuthentication reads (attribute names are the SDK's)."""

    def __init__(self, settings: Settings, openid_metadata_url: str | None) -> None:
        self.APP_ID = settings.bot_app_id
        self.APP_PASSWORD = settings.bot_app_secret
        self.APP_TENANTID = settings.bot_tenant_id
        # Single tenant sign-in needs an app id; the Emulator (none) keeps REWARDS_TENANT_ID
        # for the boundary only.
        single = bool(settings.bot_app_id and settings.bot_tenant_id)
        self.APP_TYPE = "SingleTenant" if single else "MultiTenant"
        if openid_metadata_url:
            # Any one of these switches the SDK to its "parameterized" cloud, which needs them
            # all: the public cloud's values, with the signing keys read from elsewhere (tests).
            self.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = openid_metadata_url
            self.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL = openid_metadata_url
            self.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = Auth.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER
            self.TO_CHANNEL_FROM_BOT_LOGIN_URL = (
                Auth.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX + Auth.DEFAULT_CHANNEL_AUTH_TENANT
            )
            self.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = Auth.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE
            self.OAUTH_URL = Auth.OAUTH_URL
            self.CALLER_ID = CallerIdConstants.public_azure_channel.value


class Context(TeamsContext):
    """A botbuilder `TurnContext` as the bot sees turns."""

    sdk: TurnContext

    async def send(self, activity: dict[str, Any] | str) -> str:
        outbound = activity if isinstance(activity, str) else Activity().deserialize(activity)
        response = await self.sdk.send_activity(outbound)
        return (response.id if response else None) or ""

    async def update(self, activity: dict[str, Any]) -> None:
        await self.sdk.update_activity(Activity().deserialize(activity))

    async def invoke_response(self, status: int, body: Any) -> None:
        value = InvokeResponse(status=status, body=body)
        await self.sdk.send_activity(Activity(type=ActivityTypes.invoke_response, value=value))

    async def member(self, account_id: str) -> dict[str, Any] | None:
        profile = await TeamsInfo.get_member(self.sdk, account_id)
        found: dict[str, Any] | None = as_json(profile) if profile is not None else None
        return found

    def reference(self) -> dict[str, Any]:
        found: dict[str, Any] = TurnContext.get_conversation_reference(self.activity).serialize()
        return found


class Backend(TeamsBackend):
    name = "botbuilder"

    def __init__(
        self, settings: Settings, *, openid_metadata_url: str | None = None, **_: Any
    ) -> None:
        # msrest warns about every Teams channelData field it has no model for: just noise.
        logging.getLogger("msrest.serialization").setLevel(logging.ERROR)
        self.settings = settings
        self.adapter = CloudAdapter(
            ConfigurationBotFrameworkAuthentication(_Config(settings, openid_metadata_url))
        )

        async def on_error(context: TurnContext, error: Exception) -> None:
            log.error("teams: turn failed", exc_info=error)

        self.adapter.on_turn_error = on_error

    def parse(self, body: dict[str, Any]) -> Any:
        try:
            return Activity().deserialize(body)
        except Exception:  # not shaped like an Activity
            return None

    async def process(
        self, auth_header: str, activity: Any, logic: Callable[[Any], Awaitable[None]]
    ) -> tuple[int, Any] | None:
        started = False

        async def turn(context: TurnContext) -> None:
            nonlocal started
            started = True
            await logic(context)

        try:
            invoke = await self.adapter.process_activity(auth_header, activity, turn)
        except Exception as problem:
            if not started:  # authentication (or the token's key lookup) failed
                raise Unauthenticated(f"{type(problem).__name__}: {problem}") from problem
            raise
        if invoke is None:
            return None
        body = invoke.body
        if body is not None and not isinstance(body, dict | list | str | int | float | bool):
            body = serializer_helper(body)
        return invoke.status, body

    async def continue_conversation(self, reference: dict[str, Any], logic: Logic) -> None:
        async def turn(context: TurnContext) -> None:
            await logic(Context(context))

        stored = ConversationReference().deserialize(reference)
        await self.adapter.continue_conversation(stored, turn, self.settings.bot_app_id)

    def wrap(self, sdk_context: Any) -> TeamsContext:
        return Context(sdk_context)
