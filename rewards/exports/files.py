"""Files the bot hands to people: an export, or a member's own data, described by a `recipe`.

A recipe is a small JSON-able dict saying what to produce, so the same description serves
every way a file leaves the bot: the chat uploads the bytes (Slack, Telegram), Teams gets a
download link whose signed token carries the recipe (`rewards.exports.links`), and the link's
route produces the file again when it is opened. Producing it is streaming (`open()` yields the
file in pieces), never the whole file in memory.

    {"what": "export", "kind": "kudos", "from": "2026-01-01", "to": "2026-01-31",
     "format": "csv", "by": 12}          # by: the admin who asked (checked again on download)
    {"what": "data", "member": 12}        # a member's own data document
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from rewards.errors import InvalidInput
from rewards.exports.formats import FORMATS, encode, format_named
from rewards.exports.kinds import kind_named
from rewards.exports.mydata import as_json, member_data
from rewards.exports.stream import export_rows
from rewards.exports.window import window
from rewards.settings import Settings
from rewards.store.db import Database

Recipe = Mapping[str, Any]


@dataclass(frozen=True)
class OutgoingFile:
    """A file ready to be produced: its name, media type, a one-line caption, its recipe, and
    `open()`, which yields its bytes in pieces (call it once per delivery)."""

    name: str
    content_type: str
    caption: str
    recipe: Recipe
    open: Callable[[], AsyncIterator[bytes]]


def export_file(db: Database, settings: Settings, recipe: Recipe) -> OutgoingFile:
    kind = kind_named(str(recipe.get("kind", "")))
    fmt = format_named(recipe.get("format"))
    span = window(recipe.get("from"), recipe.get("to"), settings.timezone)

    async def chunks() -> AsyncIterator[bytes]:
        async with aclosing(export_rows(db, kind, span)) as rows:
            async for piece in encode(kind.columns, rows, fmt):
                yield piece

    return OutgoingFile(
        name=f"{kind.name}-{span.label()}.{fmt}",
        content_type=FORMATS[fmt],
        caption=f"Export of {kind.name} ({span.label().replace('_', ' to ')}), {fmt.upper()}.",
        recipe=dict(recipe),
        open=chunks,
    )


def data_file(db: Database, member_id: int, now: datetime) -> OutgoingFile:
    async def chunks() -> AsyncIterator[bytes]:
        yield as_json(await member_data(db, member_id, now=now))

    return OutgoingFile(
        name=f"my-rewards-data-{now:%Y-%m-%d}.json",
        content_type="application/json",
        caption="Everything the rewards bot stores about you.",
        recipe={"what": "data", "member": member_id},
        open=chunks,
    )


def file_for(db: Database, settings: Settings, recipe: Recipe, now: datetime) -> OutgoingFile:
    """The file a recipe describes; `InvalidInput` for a recipe that describes nothing."""
    if recipe.get("what") == "export":
        return export_file(db, settings, recipe)
    if recipe.get("what") == "data" and isinstance(recipe.get("member"), int):
        return data_file(db, int(recipe["member"]), now)
    raise InvalidInput("That is not a file I can produce.")


class FileSender(Protocol):
    """Delivers a file into a member's direct chat on one platform (bots/files)."""

    async def send_file(self, member_id: int, file: OutgoingFile) -> bool:
        """True when it was sent (or, on Teams, its download link was); False when the bot cannot
        reach the member's direct chat on this platform (it has never met them there)."""
        ...


class FileDelivery:
    """The senders of the running server, by platform; bound by the server at start-up (without
    one, e.g. in `rewards chat`, a platform cannot receive files and the dialog says so)."""

    def __init__(self) -> None:
        self._find: Callable[[str], FileSender | None] = lambda platform: None

    def bind(self, find: Callable[[str], FileSender | None]) -> None:
        self._find = find

    def sender(self, platform: str) -> FileSender | None:
        return self._find(platform)
