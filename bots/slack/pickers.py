"""People picked in a Slack modal: the user selects, and the typed input next to them.

The kudos, badge and nomination modals pick people with `multi_users_select` / `users_select`
(`cards.render.blockkit`). What Slack submits are user ids, and they are treated exactly as the
`<@U…>` mentions of a slash command, because that is what they become here (`picked_value`):
the Slack adapter bounds, vets (`bots.slack.people`: bots, deactivated accounts, people of
another organisation, the membership policy) and admits them before anything is written, then
rewrites them to the member's `@email` for the dialog (`rewrite_values`). A refusal names the
modal field it concerns (`FieldRefusal`), so the modal stays open with the reason under it.

Next to each picker an optional text input (`<field>__custom`) takes someone the list cannot
offer, typed as an email (a member who is not in Slack) or as a Slack `@handle`. Slack leaves a
typed `@liwei` as plain text, so `resolve_typed` looks handles up in the workspace's user list
(`HandleDirectory`, `users.list` cached for a few minutes) and turns each into the `<@U…>` it
names, which then goes through the same vetting as a pick. A handle Slack does not know is left
to the members' own names and emails (`rewards.services.mentions`), and refused with a sentence
saying to pick the person from the list when that finds no one either.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.failures import WEB_API_FAILURES, reason
from bots.slack.people import SLACK_MENTION, SlackPeople, mention_ids
from cards.render import custom_field_id
from dialogs.events import Action, Event
from dialogs.forms import people_refs
from dialogs.replies import Say
from rewards.services.mentions import candidates
from rewards.store.db import Database

log = logging.getLogger("bots.slack.pickers")

PICKER_TYPES = frozenset({"users_select", "multi_users_select"})
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
DIRECTORY_TTL = 600.0  # seconds a users.list snapshot answers handle look-ups
MAX_PAGES = 100  # users.list pages read at most
PAGE_SIZE = 200  # people per users.list page (Slack's recommended at most)
PICKED = "the person you picked"


@dataclass(frozen=True)
class FieldRefusal(Say):
    """A refusal about one field of a modal; the adapter shows it under that field
    (`response_action: errors`). `text` is plain text: Slack shows field errors as typed."""

    field: str = ""


def picked_value(element: Mapping[str, Any]) -> str | list[str] | None:
    """A users select's answer in `view.state` as mentions (`<@U…>`), or None for any other
    element. Ids that are not Slack user ids are dropped, never passed on."""
    kind = element.get("type")
    if kind == "users_select":
        user = element.get("selected_user")
        return f"<@{user}>" if isinstance(user, str) and USER_ID.match(user) else ""
    if kind == "multi_users_select":
        users = element.get("selected_users") or []
        return [f"<@{u}>" for u in users if isinstance(u, str) and USER_ID.match(u)]
    return None


def typed_fields(state: Mapping[str, Any]) -> list[str]:
    """The typed companions (`<field>__custom`) of the users selects in `view.state.values`."""
    fields: list[str] = []
    for block_id, elements in state.items():
        if not isinstance(elements, Mapping):
            continue
        if any(isinstance(e, Mapping) and e.get("type") in PICKER_TYPES for e in elements.values()):
            companion = custom_field_id(str(block_id))
            if companion in state:
                fields.append(companion)
    return fields


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []


def picked_ids(event: Event) -> list[str]:
    """The distinct Slack users a submitted form names (picked, or typed handles resolved)."""
    if not isinstance(event, Action) or not event.values:
        return []
    found = [uid for v in event.values.values() for t in _texts(v) for uid in mention_ids(t)]
    return list(dict.fromkeys(found))


async def rewrite_values(people: SlackPeople, values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` with every `<@U…>` replaced by `@email` of the member it names (all vetted)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, str):
            out[key] = await people.rewrite(value)
        elif isinstance(value, list):
            out[key] = [await people.rewrite(v) if isinstance(v, str) else v for v in value]
        else:
            out[key] = value
    return out


def _plain(sentence: str) -> str:
    """A sentence written for Slack markup, for a field error (plain text): `<@U…>` becomes
    "the person you picked" (capitalised at the start)."""

    def name(match: re.Match[str]) -> str:
        return PICKED.capitalize() if match.start() == 0 else PICKED

    return SLACK_MENTION.sub(name, sentence)


def picked_refusal(event: Event, sentence: str, user_id: str | None = None) -> FieldRefusal | None:
    """`sentence` as a refusal under the modal field that holds `user_id` (any field naming
    people when no one in particular is meant); None when the event is no submitted form."""
    if not isinstance(event, Action) or not event.values:
        return None
    for key, value in event.values.items():
        ids = [uid for t in _texts(value) for uid in mention_ids(t)]
        if ids and (user_id is None or user_id in ids):
            return FieldRefusal(_plain(sentence), field=str(key))
    return None


def _key(name: str) -> str:
    """How a handle or name is compared: case-folded, without the @, dots and underscores as
    spaces (`@Li.Wei`, `@li_wei` and "Li Wei" are one key; `@liwei` is another)."""
    text = name.strip().lstrip("@").strip().strip('"').casefold()
    return " ".join(text.replace(".", " ").replace("_", " ").split())


class HandleDirectory:
    """Slack handles and names to user ids, from `users.list`, read at most once per `ttl`.

    One snapshot answers every look-up meanwhile (users.list is rate limited, and a form is
    submitted by people, not in bulk). Deactivated accounts are left out: their handles may have
    passed to someone else. A failed read is not cached, so the next look-up tries again.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        ttl: float = DIRECTORY_TTL,
        clock: Callable[[], float] = time.monotonic,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.page_size = page_size
        self.clock = clock
        self._index: dict[str, list[str]] = {}
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def _read(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        cursor = ""
        for _ in range(MAX_PAGES):
            answer = await self.client.users_list(limit=self.page_size, cursor=cursor or None)
            for user in answer.get("members") or []:
                if not isinstance(user, dict) or user.get("deleted") or not user.get("id"):
                    continue
                profile = user.get("profile") or {}
                names = {
                    user.get("name"),
                    user.get("real_name"),
                    profile.get("display_name"),
                    profile.get("display_name_normalized"),
                    profile.get("real_name"),
                }
                for name in {_key(n) for n in names if isinstance(n, str) and n.strip()}:
                    index.setdefault(name, []).append(str(user["id"]))
            cursor = str((answer.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                break
        return index

    async def find(self, handle: str) -> list[str] | None:
        """The user ids going by `handle`; None when Slack could not be asked."""
        async with self._lock:
            now = self.clock()
            if self._read_at is None or now - self._read_at > self.ttl:
                try:
                    self._index = await self._read()
                except WEB_API_FAILURES as problem:
                    log.warning("users.list failed: %s", reason(problem))
                    return None
                self._read_at = now
        return list(dict.fromkeys(self._index.get(_key(handle), [])))


def _is_handle(ref: str) -> bool:
    """`@liwei` or `@"Li Wei"`: not an email, not a `<@U…>` mention."""
    return ref.startswith("@") and "@" not in ref[1:] and len(ref) > 1


async def resolve_typed(
    values: dict[str, Any], fields: list[str], directory: HandleDirectory, db: Database
) -> FieldRefusal | None:
    """Turn the `@handles` typed in the people fields' companions into `<@U…>` mentions, in
    place, or say why one cannot be. Reads only (Slack's user list, the members)."""
    for field in fields:
        text = values.get(field)
        if not isinstance(text, str) or not text.strip():
            continue
        refs: list[str] = []
        for ref in people_refs(text):
            if not _is_handle(ref):
                refs.append(ref)  # an email, a mention or a name: the dialog resolves it
                continue
            found = await directory.find(ref)
            if found is not None and len(found) == 1:
                refs.append(f"<@{found[0]}>")
                continue
            if found is not None and len(found) > 1:
                return FieldRefusal(
                    f"Several people in Slack go by {ref}. Please pick the right one from the"
                    " list.",
                    field=field,
                )
            if await candidates(db, ref):
                refs.append(ref)  # a member's own name or email: the dialog resolves it
                continue
            if found is None:
                sentence = f"I couldn't look up {ref} in Slack just now."
            else:
                sentence = f"I can't find {ref} in this Slack workspace."
            return FieldRefusal(
                f"{sentence} Please pick them from the list, or type their email address.",
                field=field,
            )
        values[field] = ", ".join(refs)
    return None
