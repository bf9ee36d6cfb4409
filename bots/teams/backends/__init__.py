"""The SDK behind the Teams endpoint, behind one small interface (`TEAMS_SDK`).

Two SDKs speak the Bot Framework protocol for us: the Bot Framework SDK (`botbuilder`, 4.17, its
final release) and its successor, the Microsoft 365 Agents SDK (`microsoft_agents`, Python 3.12+).
The bot (`bots.teams.bot`), its boundary, its people and its gateway are written once against
this module; each SDK gets a thin implementation (`bots.teams.backends.botbuilder`,
`bots.teams.backends.agents`) of:

- `TeamsBackend`: parse an inbound activity, authenticate and run a turn (`process`), run a turn
  in a stored conversation (`continue_conversation`);
- `TeamsContext`: one turn as the bot sees it: the inbound activity (both SDKs' models read the
  same: `activity.from_property.id`, `activity.conversation.conversation_type`...), and the ways
  to answer (`send`, `update`, `invoke_response`), the roster (`member`) and the conversation
  reference (`reference`).

What goes out and what is stored is plain Bot Framework JSON (dicts with the protocol's camelCase
keys), so a conversation reference stored under one SDK is used by the other, and nothing above
this package ever builds an SDK object. This module imports no SDK: the one chosen is imported
when the endpoint is built (`load`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from rewards.settings import Settings, SettingsError

__all__ = [
    "SDKS",
    "TeamsBackend",
    "TeamsContext",
    "Unauthenticated",
    "as_json",
    "check_installed",
    "load",
    "wrap",
]

# TEAMS_SDK -> the module implementing it.
SDKS = {
    "botbuilder": "bots.teams.backends.botbuilder",
    "agents": "bots.teams.backends.agents",
}


class Unauthenticated(Exception):
    """The request's token was refused (missing, malformed, forged, for another bot): a 401."""


def as_json(model: Any) -> Any:
    """The Bot Framework JSON of an SDK model object: msrest models (`botbuilder`) serialise with
    `serialize()`, pydantic ones (`microsoft_agents`) with `model_dump`; JSON stays as it is."""
    if model is None or isinstance(model, dict | list | str | int | float | bool):
        return model
    dump = getattr(model, "model_dump", None)
    if dump is not None:
        return dump(mode="json", by_alias=True, exclude_none=True)
    serialize = getattr(model, "serialize", None)
    if serialize is not None:  # msrest leaves out what its model does not map (a mention's fields)
        extra = getattr(model, "additional_properties", None) or {}
        return {**extra, **serialize()}
    raise TypeError(f"not a Bot Framework model: {type(model).__name__}")


class TeamsContext(ABC):
    """One turn: the inbound `activity` (the SDK's model) and the ways to answer it."""

    def __init__(self, sdk_context: Any) -> None:
        self.sdk = sdk_context

    @property
    def activity(self) -> Any:
        return self.sdk.activity

    @abstractmethod
    async def send(self, activity: dict[str, Any] | str) -> str:
        """Post an activity (Bot Framework JSON, or a plain text) to the conversation; its id."""

    @abstractmethod
    async def update(self, activity: dict[str, Any]) -> None:
        """Replace the activity whose id `activity["id"]` names."""

    @abstractmethod
    async def invoke_response(self, status: int, body: Any) -> None:
        """The HTTP answer to an invoke (sent once, at the end of the turn)."""

    @abstractmethod
    async def member(self, account_id: str) -> dict[str, Any] | None:
        """The roster entry of an account (`id`, `name`, `aadObjectId`, `email`...), None when the
        roster has none. Raises on transport errors (the caller decides whether that matters)."""

    @abstractmethod
    def reference(self) -> dict[str, Any]:
        """The inbound activity's conversation reference, as Bot Framework JSON."""


Logic = Callable[[TeamsContext], Awaitable[None]]


class TeamsBackend(ABC):
    """One SDK: its adapter (`adapter`), built from the settings."""

    name: str
    adapter: Any

    @abstractmethod
    def parse(self, body: dict[str, Any]) -> Any:
        """The SDK's Activity for a JSON body, or None when it is not shaped like one."""

    @abstractmethod
    async def process(
        self, auth_header: str, activity: Any, logic: Callable[[Any], Awaitable[None]]
    ) -> tuple[int, Any] | None:
        """Authenticate (with an app id) and run `logic` on the SDK's turn context; the invoke
        response as (status, JSON body), None for other activities. Raises `Unauthenticated`
        before `logic` runs when the token is refused."""

    @abstractmethod
    async def continue_conversation(self, reference: dict[str, Any], logic: Logic) -> None:
        """Run `logic` in the conversation of a stored reference (proactive posts)."""

    @abstractmethod
    def wrap(self, sdk_context: Any) -> TeamsContext:
        """This SDK's turn context as a `TeamsContext`."""


# The package each SDK is imported as (looked for without importing it).
_PACKAGES = {"botbuilder": "botbuilder", "agents": "microsoft_agents"}


def check_installed(settings: Settings) -> None:
    """Stop at start, with a sentence, when the SDK `TEAMS_SDK` names is not installed (the
    Agents SDK needs Python 3.12+), rather than at the first Teams request."""
    name = settings.teams_sdk
    if importlib.util.find_spec(_PACKAGES[name]) is None:
        version = ".".join(map(str, sys.version_info[:2]))
        raise SettingsError(
            f"TEAMS_SDK={name}, but its SDK is not installed in this Python ({version})"
            + (
                "; the Microsoft 365 Agents SDK needs Python 3.12 or newer"
                if name == "agents"
                else ""
            )
            + ". Install the project again (pip install -e .) or set TEAMS_SDK=botbuilder."
        )


def load(settings: Settings, **options: Any) -> TeamsBackend:
    """The backend `settings.teams_sdk` names, built (this imports its SDK).

    `options` are the backends' test seams (`openid_metadata_url`, `token_provider`); a backend
    ignores those it has no use for.
    """
    check_installed(settings)
    module = importlib.import_module(SDKS[settings.teams_sdk])
    backend: TeamsBackend = module.Backend(settings, **options)
    return backend


def wrap(sdk_context: Any) -> TeamsContext:
    """A turn context of either SDK as a `TeamsContext` (a `TeamsContext` stays as it is).

    The SDK is told by the context's own module, which is already imported by then."""
    if isinstance(sdk_context, TeamsContext):
        return sdk_context
    root = type(sdk_context).__module__.split(".", 1)[0]
    name = "agents" if root == "microsoft_agents" else "botbuilder"
    module = importlib.import_module(SDKS[name])
    context: TeamsContext = module.Context(sdk_context)
    return context
