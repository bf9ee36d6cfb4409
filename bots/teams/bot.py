"""The Teams activity handler: activities in, dialog events through the engine, replies out.

Every botbuilder object stays in `bots/teams/`; the dialog engine only sees `dialogs.events`.

- A message's text loses the bot's own `<at>` mention; every other `<at>` mention becomes the
  mentioned member (created or linked on first sight) and is rewritten to `@email`, which the
  engine's mention resolver matches exactly.
- `Action.Submit` arrives as a message whose `value` holds `{"token": ..., inputs...}`;
  `Action.Execute` as an `adaptiveCard/action` invoke whose `value.action` holds the verb and
  data. Both become `dialogs.events.Action`. An invoke is always answered: with the updated card,
  or with a short message.
- The conversation reference is stored on install and on every message, so the gateway can post
  proactively later.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from botbuilder.core import InvokeResponse, MessageFactory, TurnContext
from botbuilder.core.teams import TeamsActivityHandler, TeamsInfo
from botbuilder.schema import Activity, ActivityTypes, Attachment, ChannelAccount

from cards.model import Card
from cards.model import Text as TextBlock
from cards.render.adaptive import to_adaptive
from dialogs.commands import COMMANDS
from dialogs.engine import APOLOGY, DialogEngine
from dialogs.events import Action, Command, Event, Text, Turn
from dialogs.nominations import Private
from dialogs.replies import Reply, Say, Show, Update
from rewards.core import Core
from rewards.services.channels import first_delivery, remember_channel
from rewards.services.conversations import ConversationKey
from rewards.services.members import (
    MemberView,
    ensure_member_for_account,
    find_by_account,
)

log = logging.getLogger("bots.teams")

PLATFORM = "teams"
ADAPTIVE = "application/vnd.microsoft.card.adaptive"
MESSAGE = "application/vnd.microsoft.activity.message"
COMMAND_NAMES = frozenset(c.name for c in COMMANDS)
_TAGS = re.compile(r"</?(p|div|span|br)\b[^>]*>", re.IGNORECASE)


def card_activity(card: Card, *, execute: bool = True) -> Activity:
    """A message carrying `card` as an Adaptive Card attachment."""
    attachment = Attachment(content_type=ADAPTIVE, content=to_adaptive(card, execute=execute))
    activity: Activity = MessageFactory.attachment(attachment)
    activity.summary = card.summary
    return activity


def tenant_of(activity: Activity) -> str:
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = data.get("tenant") or {}
    if isinstance(tenant, dict) and tenant.get("id"):
        return str(tenant["id"])
    conversation = activity.conversation
    return str(getattr(conversation, "tenant_id", None) or "")


def base_conversation_id(conversation_id: str) -> str:
    """A channel thread's id without `;messageid=...`: posting there starts a new thread."""
    return conversation_id.split(";messageid=", 1)[0]


def conversation_kind(activity: Activity) -> str:
    kind = (activity.conversation.conversation_type or "") if activity.conversation else ""
    return kind if kind in ("personal", "channel", "groupChat") else "personal"


def reference_of(activity: Activity) -> dict[str, Any]:
    """The serialised conversation reference, pointing at the conversation (not a thread)."""
    reference = TurnContext.get_conversation_reference(activity)
    reference.conversation.id = base_conversation_id(reference.conversation.id)
    reference.activity_id = None
    serialised: dict[str, Any] = reference.serialize()
    return serialised


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


class RewardsTeamsBot(TeamsActivityHandler):
    """One instance per app; the `Core` is read per turn (it is created at app start-up)."""

    def __init__(self, core: Callable[[], Core]) -> None:
        self._core = core
        self._asked: set[tuple[str, str]] = set()  # accounts whose profile we already fetched

    # --- people --------------------------------------------------------------------------------

    async def _member(
        self,
        context: TurnContext,
        core: Core,
        account: ChannelAccount | Mapping[str, Any],
        tenant: str,
    ) -> MemberView:
        """The member behind a Teams account; its email is fetched once from the roster."""
        if isinstance(account, Mapping):
            account_id = str(account.get("id") or "")
            aad = account.get("aadObjectId") or account.get("aad_object_id")
            name = account.get("name")
        else:
            account_id, aad, name = account.id or "", account.aad_object_id, account.name
        user_id = str(aad or account_id)
        known = await find_by_account(core.db, PLATFORM, user_id, tenant)
        if known is not None and known.has_real_email:
            return known
        email: str | None = None
        if (tenant, user_id) not in self._asked and account_id:
            self._asked.add((tenant, user_id))
            try:
                profile = await TeamsInfo.get_member(context, account_id)
                email = profile.email or None
                aad = aad or profile.aad_object_id
                name = name or profile.name
            except Exception as problem:  # the roster is a nicety: go on without the email
                log.info("teams: no profile for %s: %r", account_id, problem)
        return await ensure_member_for_account(
            core.db,
            PLATFORM,
            str(aad or account_id),
            tenant=tenant,
            email=email,
            display_name=name or None,
            clock=core.clock,
        )

    async def _text(self, context: TurnContext, core: Core, tenant: str) -> str:
        """The message text with our mention removed and other mentions as `@email`."""
        activity = context.activity
        text = activity.text or ""
        bot_id = activity.recipient.id if activity.recipient else None
        for entity in activity.entities or []:
            props = entity.additional_properties or {}
            if entity.type != "mention" and props.get("type") != "mention":
                continue
            mentioned = props.get("mentioned") or {}
            shown = props.get("text") or f"<at>{mentioned.get('name', '')}</at>"
            if not isinstance(mentioned, dict) or not mentioned.get("id"):
                continue
            if mentioned.get("id") == bot_id:
                text = text.replace(shown, " ", 1)
                continue
            member = await self._member(context, core, mentioned, tenant)
            text = text.replace(shown, f" @{member.email} ", 1)
        text = re.sub(r"<at>[^<]*</at>", " ", text)  # a bot mention without an entity
        text = html.unescape(_TAGS.sub(" ", text)).replace("\xa0", " ")
        return " ".join(text.split())

    # --- conversation references -----------------------------------------------------------------

    async def _remember(self, context: TurnContext, core: Core, member_id: int | None) -> None:
        activity = context.activity
        kind = conversation_kind(activity)
        data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
        name = (data.get("channel") or {}).get("name") or (data.get("team") or {}).get("name")
        await remember_channel(
            core.db,
            PLATFORM,
            base_conversation_id(activity.conversation.id),
            reference_of(activity),
            tenant=tenant_of(activity),
            kind=kind,
            name=name or activity.conversation.name,
            member_id=member_id if kind == "personal" else None,
            clock=core.clock,
        )

    async def _turn(self, context: TurnContext, core: Core) -> tuple[Turn, MemberView]:
        activity = context.activity
        tenant = tenant_of(activity)
        sender = await self._member(context, core, activity.from_property, tenant)
        await self._remember(context, core, sender.id)
        user = activity.from_property.aad_object_id or activity.from_property.id
        key = ConversationKey(PLATFORM, tenant, activity.conversation.id, str(user))
        return Turn(sender.id, key, whole_forms=True), sender

    # --- inbound ----------------------------------------------------------------------------------

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        core = self._core()
        activity = turn_context.activity
        if activity.id and not await first_delivery(
            core.db, PLATFORM, f"{activity.conversation.id}|{activity.id}", clock=core.clock
        ):
            log.info("teams: activity %s delivered again; ignored", activity.id)
            return
        turn, _ = await self._turn(turn_context, core)
        event: Event
        update_id: str | None = None
        if isinstance(activity.value, dict) and activity.value.get("token"):
            token, values = action_values(activity.value)
            event = Action(token, values)
            update_id = activity.reply_to_id
        else:
            text = await self._text(turn_context, core, turn.key.tenant)
            if not text:
                return
            event = parse_text(text)
        replies = await DialogEngine(core).handle(turn, event)
        await self._send(turn_context, replies, update_id=update_id)

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        if turn_context.activity.name == "adaptiveCard/action":
            return InvokeResponse(status=200, body=await self._card_action(turn_context))
        response: InvokeResponse = await super().on_invoke_activity(turn_context)
        return response

    async def _card_action(self, turn_context: TurnContext) -> dict[str, Any]:
        """`Action.Execute`: run the action; answer with the new card or a short message.

        The answer is built here as plain JSON: the SDK's AdaptiveCardInvokeResponse model cannot
        carry the string value of a message response.
        """
        try:
            core = self._core()
            turn, _ = await self._turn(turn_context, core)
            value = (
                turn_context.activity.value if isinstance(turn_context.activity.value, dict) else {}
            )
            action = value.get("action") if isinstance(value.get("action"), dict) else {}
            data = action.get("data") if isinstance(action.get("data"), dict) else {}
            token, values = action_values(data)
            token = token or str(action.get("verb") or "")
            replies = await DialogEngine(core).handle(turn, Action(token, values))
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

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        await self._installed(turn_context)

    async def on_conversation_update_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        if any(m.id == bot_id for m in activity.members_added or []):
            await self._installed(turn_context)

    async def _installed(self, context: TurnContext) -> None:
        core = self._core()
        member_id = None
        activity = context.activity
        if conversation_kind(activity) == "personal" and activity.from_property:
            member = await self._member(context, core, activity.from_property, tenant_of(activity))
            member_id = member.id
        await self._remember(context, core, member_id)
        log.info("teams: installed in %s", activity.conversation.id)

    # --- outbound ---------------------------------------------------------------------------------

    async def _send(
        self, context: TurnContext, replies: Sequence[Reply], *, update_id: str | None
    ) -> None:
        execute = context.activity.channel_id == "msteams"  # the Emulator knows Action.Submit only
        for reply in replies:
            if isinstance(reply, Say):
                await context.send_activity(MessageFactory.text(reply.text))
            elif isinstance(reply, Show):
                await context.send_activity(card_activity(reply.card, execute=execute))
            elif isinstance(reply, Update):
                activity = card_activity(reply.card, execute=execute)
                if update_id:
                    activity.id = update_id
                    try:
                        await context.update_activity(activity)
                        continue
                    except Exception as problem:
                        log.info("teams: could not update %s (%r); posting", update_id, problem)
                        activity.id = None
                activity.type = ActivityTypes.message
                await context.send_activity(activity)
