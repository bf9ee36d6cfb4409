"""The Teams activity handler: activities in, dialog events through the engine, replies out.

Every SDK object stays in `bots/teams/`; the dialog engine only sees `dialogs.events`. The bot is
written once for both SDKs (`TEAMS_SDK`): it sees a turn as a `bots.teams.backends.TeamsContext`
and sends plain Bot Framework JSON, and dispatches the few activity types it answers itself.

- Every activity and invoke first passes the boundary (`bots.teams.boundary`): another tenant, or
  a non-loopback `serviceUrl` without an app id, is refused before any handler runs, and nothing
  is written.
- Then the people (`bots.teams.people`): the mentions are bounded before any is looked up, the
  sender and everyone mentioned must be admitted by the membership policy, and all of that is
  decided before anything is written for anyone. A refusal is a polite reply.
- A message's text loses the bot's own `<at>` mention; every other `<at>` mention becomes the
  mentioned member and is rewritten to `@email`, which the engine's mention resolver matches
  exactly.
- People picked in a card (the people picker submits Azure AD object ids) are vetted and
  admitted like mentions and reach the dialog as `@email` (`bots.teams.pickers`).
- `Action.Submit` arrives as a message whose `value` holds `{"token": ..., inputs...}`;
  `Action.Execute` as an `adaptiveCard/action` invoke whose `value.action` holds the verb and
  data. Both become `dialogs.events.Action`. An invoke is always answered: with the updated card,
  or with a short message.
- The conversation reference is stored on install and on every admitted message, so the gateway
  can post proactively later.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bots.teams.backends import TeamsContext, wrap
from bots.teams.boundary import answers_back, conversation_tenant, outside_reason, refuse
from bots.teams.people import (
    PLATFORM,
    Mention,
    Roster,
    RosterMemory,
    bound_mentions,
    mentions_of,
    refusal_for,
)
from bots.teams.pickers import bound_picks, picked_ids, picked_person, rewrite_picked
from cards.model import Card
from cards.model import Text as TextBlock
from cards.render.adaptive import to_adaptive
from dialogs.commands import COMMANDS
from dialogs.engine import APOLOGY, DialogEngine, is_keyed
from dialogs.events import Action, Command, Event, Text, Turn
from dialogs.link import admit_sender
from dialogs.nominations import Private
from dialogs.replies import Reply, Say, Show, Update
from rewards.core import Core
from rewards.membership import BotRefused, Boundary, NotAMember, Person, admit
from rewards.services.channels import first_delivery, remember_channel
from rewards.services.conversations import ConversationKey

log = logging.getLogger("bots.teams")

ADAPTIVE = "application/vnd.microsoft.card.adaptive"
MESSAGE = "application/vnd.microsoft.activity.message"
COMMAND_NAMES = frozenset(c.name for c in COMMANDS)
_TAGS = re.compile(r"</?(p|div|span|br)\b[^>]*>", re.IGNORECASE)


def card_activity(card: Card, *, execute: bool = True) -> dict[str, Any]:
    """A message carrying `card` as an Adaptive Card attachment (Bot Framework JSON)."""
    # A client without Universal Actions (the Emulator) cannot search the directory either.
    content = to_adaptive(card, execute=execute, people_picker=execute)
    attachment = {"contentType": ADAPTIVE, "content": content}
    activity: dict[str, Any] = {
        "type": "message",
        "attachmentLayout": "list",
        "attachments": [attachment],
        "inputHint": "acceptingInput",
    }
    if card.summary:
        activity["summary"] = card.summary
    return activity


def tenant_of(activity: Any) -> str:
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = data.get("tenant") or {}
    if isinstance(tenant, dict) and tenant.get("id"):
        return str(tenant["id"])
    return conversation_tenant(activity)


def base_conversation_id(conversation_id: str) -> str:
    """A channel thread's id without `;messageid=...`: posting there starts a new thread."""
    return conversation_id.split(";messageid=", 1)[0]


def conversation_kind(activity: Any) -> str:
    kind = (activity.conversation.conversation_type or "") if activity.conversation else ""
    return kind if kind in ("personal", "channel", "groupChat") else "personal"


def reference_of(context: TeamsContext) -> dict[str, Any]:
    """The serialised conversation reference, pointing at the conversation (not a thread)."""
    reference = context.reference()
    reference.pop("activityId", None)
    conversation = dict(reference.get("conversation") or {})
    conversation["id"] = base_conversation_id(str(conversation.get("id") or ""))
    return {**reference, "conversation": conversation}


def parse_text(text: str) -> Event:
    """`/kudos ...` or `kudos ...` is a command; anything else is an answer or chatter."""
    line = text.strip()
    if line.startswith("/"):
        return Text(line)
    word, _, rest = line.partition(" ")
    if word.lower() in COMMAND_NAMES:
        return Command(word.lower(), rest.strip())
    return Text(line)


def action_values(data: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(token, inputs) of submitted card data; Teams' own `msteams` keys are dropped."""
    token = str(data.get("token") or "")
    values = {k: v for k, v in data.items() if k != "token" and not k.startswith("msteams")}
    return token, values


def plain_text(activity: Any, emails: Mapping[str, str] | None = None) -> str:
    """The message text without markup: each mention in `emails` as `@email`, other `<at>`
    mentions (this bot's, anyone not resolved) removed."""
    text = activity.text or ""
    for mention in mentions_of(activity):
        email = (emails or {}).get(mention.account_id)
        text = text.replace(mention.shown, f" @{email} " if email else " ", 1)
    text = re.sub(r"<at>[^<]*</at>", " ", text)  # this bot's mention, or one without an entity
    text = html.unescape(_TAGS.sub(" ", text)).replace("\xa0", " ")
    return " ".join(text.split())


@dataclass(frozen=True)
class Admitted:
    """Everyone in a turn, admitted: the sender's member id and each mention's email."""

    member_id: int
    emails: dict[str, str]


class RewardsTeamsBot:
    """One instance per app; the `Core` is read per turn (it is created at app start-up).

    `on_turn` takes either SDK's turn context (`bots.teams.backends.wrap`)."""

    def __init__(self, core: Callable[[], Core]) -> None:
        self._core = core
        self._memory = RosterMemory()

    # --- the boundary ----------------------------------------------------------------------------

    async def on_turn(self, sdk_context: Any) -> None:
        """Every activity and invoke is checked against the boundary before any handler runs."""
        turn_context = wrap(sdk_context)
        activity = turn_context.activity
        if activity is not None:
            boundary = Boundary.from_settings(self._core().settings)
            reason = outside_reason(activity, boundary)
            if reason is not None:
                # Another tenant is routine (the app is visible to them); a remote serviceUrl
                # without an app id is someone probing this machine.
                level = logging.INFO if answers_back(activity, boundary) else logging.WARNING
                log.log(level, "teams: refused a %s activity: %s", activity.type, reason)
                if answers_back(activity, boundary):
                    await refuse(turn_context)
                return
            await self._dispatch(turn_context)

    async def _dispatch(self, turn_context: TeamsContext) -> None:
        """The activity types the bot answers; the rest (typing, reactions...) are ignored. An
        invoke is always answered (501 for kinds the bot does not handle, as the SDKs do)."""
        activity = turn_context.activity
        if activity.type == "message":
            await self.on_message_activity(turn_context)
        elif activity.type == "invoke":
            await turn_context.invoke_response(*await self.on_invoke_activity(turn_context))
        elif activity.type == "conversationUpdate":
            await self.on_conversation_update_activity(turn_context)
        elif activity.type == "installationUpdate" and activity.action in ("add", "add-upgrade"):
            await self.on_installation_update_add(turn_context)

    # --- people --------------------------------------------------------------------------------

    async def _admit(
        self,
        context: TeamsContext,
        core: Core,
        mentions: Sequence[Mention],
        event: Event,
    ) -> Admitted | list[Reply]:
        """The sender and the mentioned people admitted, or the replies refusing the turn.

        Decided before anything is written for anyone: the sender first (a stranger's refusal,
        or their `/link CODE`, ends the turn), then every mention, reading only; then the writes.
        """
        picks = picked_ids(event)
        too_many = bound_picks(picks, core.settings.kudos_max_receivers)
        if too_many is not None:
            return [Say(too_many)]
        roster = Roster(context, core, tenant_of(context.activity), self._memory)
        sender = await roster.sender(context.activity)
        if await refusal_for(core, sender) is not None:
            early = await admit_sender(core, sender, event)
            if isinstance(early, list):
                return early
        people: dict[str, Person] = {}
        for mention in mentions:
            if mention.account_id in people:
                continue
            person = await roster.person(mention.account_id, mention.aad, mention.name)
            refusal = await refusal_for(core, person, mentioned=mention.name)
            if refusal is not None:
                return [Say(refusal)]
            people[mention.account_id] = person
        for aad in picks:  # people picked in the card, keyed by their AAD object id
            picked = await picked_person(roster, core, aad)
            if isinstance(picked, str):
                return [Say(picked)]
            people[aad] = picked
        admitted = await admit_sender(core, sender, event)
        if isinstance(admitted, list):
            return admitted
        emails: dict[str, str] = {}
        try:
            for account_id, person in people.items():
                member = await admit(
                    core.db, person, policy=core.settings.membership, clock=core.clock
                )
                emails[account_id] = member.email
        except (BotRefused, NotAMember) as refusal:  # the directory changed meanwhile
            return [Say(str(refusal))]
        return Admitted(admitted, emails)

    # --- conversation references -----------------------------------------------------------------

    async def _remember(self, context: TeamsContext, core: Core, member_id: int | None) -> None:
        activity = context.activity
        kind = conversation_kind(activity)
        data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
        name = (data.get("channel") or {}).get("name") or (data.get("team") or {}).get("name")
        await remember_channel(
            core.db,
            PLATFORM,
            base_conversation_id(activity.conversation.id),
            reference_of(context),
            tenant=tenant_of(activity),
            kind=kind,
            name=name or activity.conversation.name,
            member_id=member_id if kind == "personal" else None,
            clock=core.clock,
        )

    async def _turn(self, context: TeamsContext, core: Core, member_id: int) -> Turn:
        """The engine's turn for an admitted sender; the conversation reference is refreshed."""
        activity = context.activity
        await self._remember(context, core, member_id)
        user = activity.from_property.aad_object_id or activity.from_property.id
        key = ConversationKey(PLATFORM, tenant_of(activity), activity.conversation.id, str(user))
        private = conversation_kind(activity) == "personal"
        return Turn(member_id, key, whole_forms=True, private=private)

    # --- inbound ----------------------------------------------------------------------------------

    async def on_message_activity(self, turn_context: TeamsContext) -> None:
        """One message as one unit of work (`Database.transact`): the delivery marker, the people
        named, the conversation reference, the dialog and what it writes share one connection
        and commit once; the replies go out after the commit.

        A message that fails is rolled back whole and apologised for; its delivery is then
        marked seen on its own, so a retry of it is not run again (as when the marker committed
        first)."""
        core = self._core()
        activity = turn_context.activity
        delivery = f"{activity.conversation.id}|{activity.id}" if activity.id else None

        async def work() -> tuple[list[Reply], str | None] | None:
            if delivery and not await first_delivery(core.db, PLATFORM, delivery, clock=core.clock):
                return None
            return await self._message(turn_context, core)

        keyed = not isinstance(activity.value, dict) and is_keyed(parse_text(plain_text(activity)))
        try:
            answered = await core.db.transact(work, planned_once=keyed)
        except Exception:
            log.exception("teams: message failed")
            if delivery:
                try:
                    await first_delivery(core.db, PLATFORM, delivery, clock=core.clock)
                except Exception:
                    log.exception("teams: could not mark a failed delivery as seen")
            answered = [Say(APOLOGY)], None
        if answered is None:
            log.info("teams: activity %s delivered again; ignored", activity.id)
            return
        replies, update_id = answered
        await self._send(turn_context, replies, update_id=update_id)

    async def _message(
        self, turn_context: TeamsContext, core: Core
    ) -> tuple[list[Reply], str | None]:
        """The replies to a message and the card they may update, written in the caller's unit."""
        activity = turn_context.activity
        event: Event | None = None
        mentions: list[Mention] = []
        update_id: str | None = None
        if isinstance(activity.value, dict) and activity.value.get("token"):
            token, values = action_values(activity.value)
            event = Action(token, values)
            update_id = activity.reply_to_id
        else:
            mentions = mentions_of(activity)
            refusal = bound_mentions(mentions, core.settings.kudos_max_receivers)
            if refusal is not None:
                return [Say(refusal)], None
        admitted = await self._admit(
            turn_context, core, mentions, event or parse_text(plain_text(activity))
        )
        if isinstance(admitted, list):
            return admitted, None
        turn = await self._turn(turn_context, core, admitted.member_id)
        if event is not None:  # a submitted card: its picks become the members' emails
            event = rewrite_picked(event, admitted.emails)
        else:
            text = plain_text(activity, admitted.emails)
            if not text:
                return [], None
            event = parse_text(text)
        return await DialogEngine(core).handle(turn, event), update_id

    async def on_invoke_activity(self, turn_context: TeamsContext) -> tuple[int, Any]:
        """(status, body) answering an invoke."""
        if turn_context.activity.name == "adaptiveCard/action":
            return 200, await self._card_action(turn_context)
        return 501, None

    async def _card_action(self, turn_context: TeamsContext) -> dict[str, Any]:
        """`Action.Execute`: run the action; answer with the new card or a short message.

        The answer is built here as plain JSON: the SDK's AdaptiveCardInvokeResponse model cannot
        carry the string value of a message response.
        """
        try:
            core = self._core()
            value = (
                turn_context.activity.value if isinstance(turn_context.activity.value, dict) else {}
            )
            raw_action = value.get("action")
            action: dict[str, Any] = raw_action if isinstance(raw_action, dict) else {}
            raw_data = action.get("data")
            data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
            token, values = action_values(data)
            token = token or str(action.get("verb") or "")
            event = Action(token, values)

            async def work() -> list[Reply]:  # one unit of work; the answer goes after it
                admitted = await self._admit(turn_context, core, (), event)
                if isinstance(admitted, list):
                    return admitted
                turn = await self._turn(turn_context, core, admitted.member_id)
                picked = rewrite_picked(event, admitted.emails)
                return await DialogEngine(core).handle(turn, picked)

            replies = await core.db.transact(work)
        except Exception:
            log.exception("teams: card action failed")
            replies = [Say(APOLOGY)]
        updates = [r for r in replies if isinstance(r, Update)]
        says = [r for r in replies if isinstance(r, Say)]
        rest: list[Reply] = [r for r in replies if isinstance(r, Show)]
        if updates:
            # The card answering an invoke replaces the clicked one for the clicker alone, so a
            # sentence meant only for them (their own vote) goes on it rather than in the chat.
            private = [r.text for r in says if isinstance(r, Private)]
            rest += [r for r in says if not isinstance(r, Private)]
            card = updates[-1].card
            if private:
                card = replace(
                    card, body=(*card.body, *(TextBlock(t, heading=True) for t in private))
                )
            response = {"statusCode": 200, "type": ADAPTIVE, "value": to_adaptive(card)}
        else:
            rest += says[1:]
            text = says[0].text if says else "Done."
            response = {"statusCode": 200, "type": MESSAGE, "value": text}
        try:
            await self._send(turn_context, rest, update_id=None)
        except Exception:
            log.exception("teams: could not post the replies of a card action")
        return response

    async def on_installation_update_add(self, turn_context: TeamsContext) -> None:
        await self._installed(turn_context)

    async def on_conversation_update_activity(self, turn_context: TeamsContext) -> None:
        activity = turn_context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        if any(m.id == bot_id for m in activity.members_added or []):
            await self._installed(turn_context)

    async def _installed(self, context: TeamsContext) -> None:
        """Remember where the bot was added; a personal install admits (or refuses) its owner.
        One unit of work; a refusal is sent after it."""
        core = self._core()
        activity = context.activity

        async def work() -> list[Reply] | None:
            member_id = None
            if conversation_kind(activity) == "personal" and activity.from_property:
                admitted = await self._admit(context, core, (), Text(""))
                if isinstance(admitted, list):  # someone the membership policy does not admit
                    return admitted
                member_id = admitted.member_id
            await self._remember(context, core, member_id)
            return None

        refused = await core.db.transact(work)
        if refused is not None:
            await self._send(context, refused, update_id=None)
            log.info("teams: installed by someone not admitted; nothing stored")
            return
        log.info("teams: installed in %s", activity.conversation.id)

    # --- outbound ---------------------------------------------------------------------------------

    async def _send(
        self, context: TeamsContext, replies: Sequence[Reply], *, update_id: str | None
    ) -> None:
        execute = context.activity.channel_id == "msteams"  # the Emulator knows Action.Submit only
        for reply in replies:
            if isinstance(reply, Say):
                await context.send(reply.text)
            elif isinstance(reply, Show):
                await context.send(card_activity(reply.card, execute=execute))
            elif isinstance(reply, Update):
                activity = card_activity(reply.card, execute=execute)
                if update_id:
                    try:
                        await context.update({**activity, "id": update_id})
                        continue
                    except Exception as problem:
                        log.info("teams: could not update %s (%r); posting", update_id, problem)
                await context.send(activity)
