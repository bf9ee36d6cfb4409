"""The Slack adapter: slash commands, interactivity and events on `POST /slack/events`.

slack-bolt's `AsyncApp` verifies every request (signing secret, 5-minute window: anything else is
a 401 before a single row is written) and routes it to the listeners below. Slack wants an answer
within 3 seconds and a dialog may wait on the database, so buttons and events are acked at once
and their dialog runs in a background task. A slash command and a modal submit get a 2-second
budget instead, because their HTTP answer can carry the reply: a command's first reply is the
message of its answer (`ack_message`: `in_channel` or `ephemeral`, as the reply policy says, with
no Web API call), a submit's is close, update or per-field errors. When the dialog is slower, the
command is acked empty (the modal closed) and the result posted when ready.

Other replies go out through the Web API (`AsyncWebClient`, base URL from `SLACK_API_URL`) as each
reply's audience says (`deliver`; the README's "Slack reply policy"): what the team should see
(kudos, a badge given, winners) with `chat.postMessage` or `chat.update`; everything else (refusals,
help, someone's own rewards, confirmations, look-ups) only the person who acted sees, as the
ephemeral answer of their command or click (`response_url`), `chat.postEphemeral`, or in the bot's
DM; forms as modals with `views.open`. Every `text` is escaped like the blocks, so no message
pings `@channel` or forges a link. A failed call (Slack's error, an HTML or plain-text page from a
proxy, a dropped connection: `bots.slack.failures`) is logged and falls back where it can.
Retried deliveries are absorbed with `first_delivery` on the event id (or the trigger id).

Trust: after bolt's own checks (signature; `auth.test` for the token, asked on the first request,
asked again while it fails, and nothing served meanwhile; once it has passed, slash commands skip
bolt and its per-request objects, the gate having verified the signature) a global middleware
(for a slash command, the same check in `_command_directly`) keeps out every
request from outside the organisation's boundary (`bots.slack.boundary`) before any listener runs,
so such a request writes nothing, not even a delivery marker. Inside, each turn vets the sender
and the people it mentions (`bots.slack.people`) before writing anything for them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bots.commands.manifest import command_for_slack
from bots.server import CORE
from bots.slack.boundary import OwnApp, inside, origin, person_inside
from bots.slack.failures import WEB_API_FAILURES, reason
from bots.slack.gate import checked_body, form_fields
from bots.slack.people import PLATFORM, SlackPeople, mention_ids
from bots.slack.pickers import (
    FieldRefusal,
    HandleDirectory,
    picked_ids,
    picked_refusal,
    picked_value,
    resolve_typed,
    rewrite_values,
    typed_fields,
)
from bots.slack.retries import retry_handlers
from cards.actions import BadToken, decode, encode
from cards.model import Card
from cards.model import Text as TextBlock
from cards.render import custom_field_id
from cards.render.blockkit import escape, fallback_text, to_blocks, to_modal
from dialogs.commands import COMMANDS
from dialogs.engine import APOLOGY, CANCEL, SUBMIT, DialogEngine, is_keyed
from dialogs.events import Action, Command, Event, Text, Turn
from dialogs.link import admit_sender
from dialogs.replies import Audience, Done, Reply, Say, Show, Update, is_public
from rewards.core import Core
from rewards.errors import RewardsError
from rewards.membership import OUTSIDE_REFUSAL, Boundary, check_mention_count
from rewards.services import conversations
from rewards.services.channels import first_delivery, remember_channel
from rewards.services.conversations import ConversationKey
from rewards.settings import Settings
from rewards.store.db import DuplicateDelivery

log = logging.getLogger("bots.slack")

DEFAULT_API_URL = "https://slack.com/api/"
VIEW_BUDGET = 2.0  # seconds a modal submit may take before the modal is closed regardless
COMMAND_BUDGET = 2.0  # seconds a slash command's turn may take to answer in the ack (Slack: 3)
LEADING_MENTION = re.compile(r"^\s*<@[UW][A-Z0-9]+(?:\|[^>]*)?>[\s:,]*")
# What bolt answers while the bot token cannot be checked (auth.test failing): nothing is served.
UNAVAILABLE = "Sorry, the rewards app can't answer right now. Please try again in a few minutes."
# Events bolt lets through without auth.test (its context then holds the request's own ids).
UNCHECKED_EVENTS = frozenset({"app_uninstalled", "tokens_revoked", "team_access_revoked"})


def channel_kind(channel_id: str, channel_name: str = "") -> str:
    """`personal` for a DM with the bot, `group` for private channels and group DMs."""
    if channel_id.startswith("D") or channel_name == "directmessage":
        return "personal"
    if channel_id.startswith("G") or channel_name in ("privategroup", "mpdm"):
        return "group"
    return "channel"


def state_values(state: Mapping[str, Any]) -> dict[str, Any]:
    """`view.state.values` as `{field name: value}` (block_id = action_id = field name)."""
    values: dict[str, Any] = {}
    for block_id, elements in state.items():
        for element in elements.values():
            kind = element.get("type")
            value: Any
            if kind == "static_select":
                option = element.get("selected_option") or {}
                value = option.get("value", "")
            elif kind == "multi_static_select":
                value = [o["value"] for o in element.get("selected_options") or []]
            elif kind == "checkboxes":
                value = "true" if element.get("selected_options") else "false"
            elif (picked := picked_value(element)) is not None:  # users selects: `<@U…>`
                value = picked
            else:
                value = element.get("value") or ""
            values[block_id] = value
    return values


def error_field(card: Card, values: Mapping[str, Any], sentence: str) -> str:
    """Which input a refusal is about: the one whose value (or typed companion's value) or label
    it quotes, else the first."""
    assert card.form is not None
    fields = card.form.fields
    lowered = sentence.casefold()
    for field in fields:
        for name in (field.name, custom_field_id(field.name)):
            value = values.get(name)
            parts = [value] if isinstance(value, str) else list(value or [])
            if any(
                len(p.strip().lstrip("@")) > 1 and p.strip().lstrip("@").casefold() in lowered
                for p in parts
            ):
                return name
    for field in fields:
        if field.label and field.label.casefold() in lowered:
            return field.name
    return fields[0].name


def _notice_text(card: Card) -> str:
    texts = [b.text for b in card.body if isinstance(b, TextBlock)]
    return " ".join(texts) or card.summary


def _delivery_id(body: Mapping[str, Any], raw: str) -> str:
    """What identifies one delivery across Slack's retries."""
    for key in ("event_id", "trigger_id"):
        if body.get(key):
            return f"{key}:{body[key]}"
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


@dataclass
class Where:
    """Where a turn's replies go."""

    team: str
    channel: str
    user: str
    kind: str = "channel"
    trigger_id: str | None = None
    message_ts: str | None = None
    respond: AsyncRespond | None = None
    ephemeral: bool = False  # the clicked message is one only the clicker sees


@dataclass(frozen=True)
class Mrkdwn(Say):
    """A sentence of the adapter's own written in Slack markup: it names people as `<@U…>`, which
    Slack shows as their names. Sent as it is, where every other sentence is escaped."""


class SlackBot:
    """One Slack app (one bot token) mounted on the shared aiohttp server."""

    def __init__(self, app: web.Application, settings: Settings) -> None:
        extra = settings.extra
        base_url = extra.get("SLACK_API_URL") or DEFAULT_API_URL
        self.app = app
        self.client = AsyncWebClient(
            token=extra["SLACK_BOT_TOKEN"],
            base_url=base_url if base_url.endswith("/") else base_url + "/",
            retry_handlers=retry_handlers(),  # 429 with Retry-After, dropped connections
        )
        self.bolt = AsyncApp(
            client=self.client,
            signing_secret=extra["SLACK_SIGNING_SECRET"],
            request_verification_enabled=True,
            # Listeners run before the HTTP answer: each acks (and spawns its turn) itself, and
            # bolt's other mode polls every 10 ms for the ack, which every request then waited.
            process_before_response=True,
            user_facing_authorize_error_message=UNAVAILABLE,
        )
        self.verifier = SignatureVerifier(extra["SLACK_SIGNING_SECRET"])
        self.view_budget = VIEW_BUDGET
        self.command_budget = COMMAND_BUDGET
        self.tasks: set[asyncio.Task[None]] = set()
        self._engine: DialogEngine | None = None
        self.own: OwnApp | None = None  # the token's workspace and bot user, from auth.test
        self._boundary: tuple[Settings, Boundary] | None = None  # see `boundary`
        self.handles = HandleDirectory(self.client)  # typed @handles in modals (users.list)
        self.bolt.middleware(self._keep_outsiders_out)
        # Every slash command of the app; the manifest's names map back to the command table
        # (`/myrewards` is `/me`, which Slack reserves); unknown ones get the engine's answer.
        self.bolt.command(re.compile(r"^/.+"))(self._on_command)
        self.bolt.action(re.compile(r".*"))(self._on_action)
        self.bolt.view_submission(re.compile(r".*"))(self._on_view_submission)
        self.bolt.view_closed(re.compile(r".*"))(self._on_view_closed)
        self.bolt.event("app_mention")(self._on_event)
        self.bolt.event("message")(self._on_event)

    # --- plumbing ------------------------------------------------------------------------------

    @property
    def core(self) -> Core:
        return self.app[CORE]

    @property
    def engine(self) -> DialogEngine:
        core = self.core
        if self._engine is None or self._engine.core is not core:
            self._engine = DialogEngine(core)
        return self._engine

    async def handle(self, request: web.Request) -> web.Response:
        """`POST /slack/events`: the input gate (`bots.slack.gate`: headers, size, signature,
        JSON depth); a slash command then goes straight to its listener once bolt has checked
        the token (`_command_directly`); anything else goes to bolt, which verifies the
        signature again (401 otherwise) and dispatches."""
        body = await checked_body(request, self.verifier)
        if isinstance(body, web.Response):
            return body
        direct = await self._command_directly(body, request)
        if direct is not None:
            return direct
        bolt_request = AsyncBoltRequest(
            body=body,
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]
        )
        return await to_aiohttp_response(await self.bolt.async_dispatch(bolt_request))

    async def _command_directly(self, raw: str, request: web.Request) -> web.Response | None:
        """A slash command served without bolt's per-request machinery (its request and context
        objects, a Web API client built per request, the signature checked a second time): what
        bolt would do for it, and nothing else. The gate has verified the signature; bolt's
        token check (`auth.test`) is done once per process and kept (`self.own` is set from
        it), so until then, and for anything but a plain command form, None: bolt serves it.

        Then, as bolt with the middleware and listener below: the boundary (a command from
        outside gets the ephemeral refusal), the command's turn (`_command`), its answer."""
        if (
            self.own is None
            or request.content_type == "application/json"
            or raw.startswith("{")
            or "payload" in raw  # bolt reads such a form as an interactivity payload
        ):
            return None
        body = form_fields(raw)
        if not body.get("command") or body.get("ssl_check"):
            return None
        respond = AsyncRespond(
            response_url=body.get("response_url"), proxy=self.client.proxy, ssl=self.client.ssl
        )
        if not inside(origin(body), self.boundary, self.own):
            log.warning(
                "slack request from outside the boundary refused: %s", origin(body).places or "-"
            )
            return await to_aiohttp_response(await _refuse_outside(body, respond))
        try:
            answer = await self._command(body, raw, respond)
        except Exception:  # as bolt's default error handler answers a failed listener
            log.exception("slack command failed")
            return command_answer("", status=500)
        return command_answer(answer)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._guard(work))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _guard(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception:
            log.exception("slack turn failed")

    async def drain(self) -> None:
        """Wait for every background turn (tests; shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def shutdown(self, _app: web.Application) -> None:
        try:
            await asyncio.wait_for(self.drain(), timeout=10)
        except TimeoutError:
            for task in list(self.tasks):
                task.cancel()

    async def _first(
        self,
        body: Mapping[str, Any],
        raw: str,
        conversation: ConversationKey | None = None,
        *,
        hold: bool = False,
        keyed: bool = False,
    ) -> bool:
        return await first_delivery(
            self.core.db,
            PLATFORM,
            _delivery_id(body, raw),
            clock=self.core.clock,
            conversation=conversation,
            hold=hold,
            keyed=keyed,
        )

    @property
    def boundary(self) -> Boundary:
        """The organisation's boundary, built once per settings object (they are frozen): every
        request checks it, and a turn builds its people's checks on it too."""
        settings = self.core.settings
        if self._boundary is None or self._boundary[0] is not settings:
            self._boundary = (settings, Boundary.from_settings(settings))
        return self._boundary[1]

    async def _keep_outsiders_out(
        self,
        context: AsyncBoltContext,
        body: dict[str, Any],
        next: Callable[[], Awaitable[None]],  # bolt injects arguments by name
    ) -> BoltResponse | None:
        """Global middleware: serve only requests from inside the organisation's boundary."""
        if (body.get("event") or {}).get("type") in UNCHECKED_EVENTS:
            return BoltResponse(status=200, body="")  # not ours to handle, and not auth-checked
        result = context.authorize_result
        if result is not None:  # from auth.test, cached by bolt
            self.own = OwnApp(
                result.team_id or "", result.enterprise_id or "", result.bot_user_id or ""
            )
        if inside(origin(body), self.boundary, self.own):
            await next()
            return None
        log.warning(
            "slack request from outside the boundary refused: %s", origin(body).places or "-"
        )
        return await _refuse_outside(body, context.respond)

    def _people(self, where: Where) -> SlackPeople:
        core = self.core
        boundary, own = self.boundary, self.own
        return SlackPeople(
            core.db,
            self.client,
            where.team,
            policy=core.settings.membership,
            bot_user=own.bot_user_id if own is not None else "",
            person_inside=lambda profile: person_inside(profile, where.team, boundary, own),
            clock=core.clock,
        )

    async def _turn(self, where: Where, event: Event) -> list[Reply]:
        """Vet the sender and the people mentioned, then admit them, remember the channel and run
        the dialog engine. A refusal answers at once and writes nothing."""
        core = self.core
        text = event.args if isinstance(event, Command) else ""
        text = event.text if isinstance(event, Text) else text
        mentioned = mention_ids(text) or picked_ids(event)  # a modal's picks are mentions too
        try:  # bounded on the raw mentions, before a single one is looked up
            check_mention_count(len(mentioned), core.settings.kudos_max_receivers)
        except RewardsError as too_many:
            return [picked_refusal(event, str(too_many)) or Say(str(too_many))]
        people = self._people(where)
        await people.look_up([where.user, *mentioned])
        if await people.sender_outside(where.user):  # events from outside go unanswered
            return [] if isinstance(event, Text) else [Say(OUTSIDE_REFUSAL)]
        if await people.sender_refusal(where.user) is None:
            for user_id in mentioned:
                sentence = await people.mention_refusal(user_id)
                if sentence is not None:
                    return [picked_refusal(event, sentence, user_id) or Mrkdwn(sentence)]
        # A refused sender gets admit_sender's own answer (a stranger's `/link CODE` is redeemed
        # there); anyone else is admitted now, once everyone they named has been vetted.
        admitted = await admit_sender(core, await people.person(where.user), event)
        if isinstance(admitted, list):
            return admitted
        try:
            if isinstance(event, Command):
                event = Command(event.name, await people.rewrite(event.args))
            elif isinstance(event, Text):
                event = Text(await people.rewrite(event.text))
            elif isinstance(event, Action) and mentioned:
                event = Action(event.token, await rewrite_values(people, event.values))
        except RewardsError as changed:  # someone changed since they were vetted
            return [Say(str(changed))]
        await remember_channel(
            core.db,
            PLATFORM,
            where.channel,
            {"channel": where.channel, "team": where.team},
            tenant=where.team,
            kind=where.kind,
            member_id=admitted if where.kind == "personal" else None,
            clock=core.clock,
        )
        # Slack's sentences are ephemeral (or in the DM), seen by the sender alone.
        turn = Turn(admitted, self._key(where), private=True)
        return await self.engine.handle(turn, event)

    def _key(self, where: Where) -> ConversationKey:
        return ConversationKey(PLATFORM, where.team, where.channel, where.user)

    async def _form_step(self, where: Where) -> str:
        """The dialog step a form being shown belongs to (kept in the modal's private_metadata)."""
        state = await conversations.load(self.core.db, self._key(where), self.core.clock.now())
        return state.step if state is not None else ""

    async def _current_token(self, token: str, where: Where, step: str) -> str:
        """The submit token a still-open modal should use now.

        A refused submit answers `response_action: errors`, which leaves the modal (and its
        callback_id) as it was, while the engine has moved the conversation to a new nonce. When
        the conversation is still at the step the modal was opened for, the modal's next submit
        is meant for it, so it gets the current nonce; otherwise the old token stays (and is stale).
        """
        try:
            parsed = decode(token)
        except BadToken:
            return token
        if parsed.verb != SUBMIT or not step:
            return token
        state = await conversations.load(self.core.db, self._key(where), self.core.clock.now())
        if (
            state is not None
            and state.dialog == parsed.dialog
            and state.step == step
            and state.nonce != parsed.ref
        ):
            return encode(parsed.dialog, SUBMIT, state.nonce)
        return token

    async def _unit_turn(
        self,
        body: Mapping[str, Any],
        raw: str,
        where: Where,
        event: Callable[[], Awaitable[Event]],
        *,
        hold: bool = False,
        keyed: bool = False,
    ) -> list[Reply] | None:
        """One delivery as one unit of work (`Database.transact`): the delivery marker, the
        vetting and admission of the people named, the channel, the activity, the dialog and what
        it writes share one connection and commit once. None for a repeated delivery.

        `hold` (slash commands, which Slack never retries): the marker is held back and written
        with the turn's first write (`first_delivery(hold=True)`), so a kudos is its reads and
        one statement that writes and commits it with its marker. `keyed`: a command of
        `KEYED_COMMANDS` (`is_keyed`), run on the connections whose statements are planned once,
        which does not read its conversation's state first (its kudos' statement deletes a
        pending dialog: `first_delivery(keyed=True)`).

        A turn that fails is rolled back whole and apologised for; its delivery is then marked
        seen on its own, so a retry of it is not run again (as when the marker committed first).
        """

        async def work() -> list[Reply] | None:
            if not await self._first(body, raw, self._key(where), hold=hold, keyed=keyed):
                return None
            return await self._turn(where, await event())

        try:
            return await self.core.db.transact(work, planned_once=keyed)
        except DuplicateDelivery:  # a concurrent copy of this delivery committed first
            return None
        except Exception:
            log.exception("slack turn failed")
            try:
                await self._first(body, raw)
            except Exception:
                log.exception("could not mark a failed slack delivery as seen")
            return [Say(APOLOGY)]

    @staticmethod
    def _ready(event: Event) -> Callable[[], Awaitable[Event]]:
        async def ready() -> Event:
            return event

        return ready

    # --- listeners -----------------------------------------------------------------------------

    async def _on_command(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, request: Any
    ) -> None:
        """A slash command through bolt (before its token was checked, see
        `_command_directly`): `_command`'s answer is the ack."""
        await ack(await self._command(body, request.raw_body, respond))

    async def _command(
        self, body: Mapping[str, Any], raw: str, respond: AsyncRespond
    ) -> dict[str, Any] | str:
        """A slash command: the turn runs before the HTTP answer, which carries its first reply
        (Slack posts it: `in_channel` for the team, `ephemeral` for the sender), so the usual
        answer costs no Web API call. A turn slower than `COMMAND_BUDGET` is acked empty and its
        replies go out when ready, as before. Returns the answer's body."""
        channel = body.get("channel_id", "")
        where = Where(
            team=body.get("team_id", ""),
            channel=channel,
            user=body.get("user_id", ""),
            kind=channel_kind(channel, body.get("channel_name", "")),
            trigger_id=body.get("trigger_id"),
            respond=respond,
        )
        name = command_for_slack(str(body.get("command", "")))
        command = Command(name, body.get("text") or "")
        work = asyncio.ensure_future(
            self._unit_turn(
                body, raw, where, self._ready(command), hold=True, keyed=is_keyed(command)
            )
        )
        try:
            replies = await asyncio.wait_for(asyncio.shield(work), self.command_budget)
        except TimeoutError:
            self._spawn(self._late(work, where))
            return ""
        answer, rest = ack_message(replies or [])
        if rest:
            self._spawn(self.deliver(rest, where))
        return answer or ""

    async def _on_action(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond | None, request: Any
    ) -> None:
        await ack()
        action = (body.get("actions") or [{}])[0]
        if action.get("type") != "button" or not action.get("value"):
            return  # link buttons and selects inside forms need no answer
        self._spawn(self._action(body, str(action["value"]), respond, request.raw_body))

    async def _action(
        self, body: dict[str, Any], token: str, respond: AsyncRespond | None, raw: str
    ) -> None:
        container = body.get("container") or {}
        meta = _metadata((body.get("view") or {}).get("private_metadata"))
        channel = (
            (body.get("channel") or {}).get("id")
            or container.get("channel_id")
            or meta.get("channel", "")
        )
        where = Where(
            team=(body.get("team") or {}).get("id") or meta.get("team", ""),
            channel=channel,
            user=(body.get("user") or {}).get("id", ""),
            kind=channel_kind(channel),
            trigger_id=body.get("trigger_id"),
            message_ts=container.get("message_ts") or (body.get("message") or {}).get("ts"),
            respond=respond,
            ephemeral=bool(container.get("is_ephemeral")),
        )
        replies = await self._unit_turn(body, raw, where, self._ready(Action(token)))
        if replies is not None:
            await self.deliver(replies, where)

    async def _on_view_submission(self, ack: AsyncAck, body: dict[str, Any], request: Any) -> None:
        view = body.get("view") or {}
        meta = _metadata(view.get("private_metadata"))
        channel = meta.get("channel", "")
        where = Where(
            team=(body.get("team") or {}).get("id") or view.get("team_id") or meta.get("team", ""),
            channel=channel,
            user=(body.get("user") or {}).get("id", ""),
            kind=channel_kind(channel),
        )
        state = (view.get("state") or {}).get("values") or {}
        values = state_values(state)
        token = str(view.get("callback_id", ""))
        resolved = dict(values)  # with typed @handles as the `<@U…>` they name

        async def action() -> Event:
            current = await self._current_token(token, where, meta.get("step", ""))
            return Action(current, resolved)

        async def submit() -> list[Reply] | None:
            typed = typed_fields(state)
            refused = await resolve_typed(resolved, typed, self.handles, self.core.db)
            if refused is not None:  # read only so far: nothing is written
                return [refused]
            return await self._unit_turn(body, request.raw_body, where, action)

        work = asyncio.ensure_future(submit())
        try:
            replies = await asyncio.wait_for(asyncio.shield(work), self.view_budget)
        except TimeoutError:
            await ack(response_action="clear")
            self._spawn(self._late(work, where))
            return
        except Exception:
            log.exception("slack modal submit failed")
            await ack(response_action="errors", errors=_first_block(view, APOLOGY))
            return
        if replies is None:  # a repeated delivery
            await ack()
            return
        refused = next((r for r in replies if isinstance(r, FieldRefusal)), None)
        if refused is not None:  # someone picked or typed who cannot take part
            await ack(response_action="errors", errors={refused.field: refused.text})
            return
        form = next(
            (r.card for r in replies if isinstance(r, Show | Update) and r.card.form is not None),
            None,
        )
        if form is not None:
            problems = [
                _notice_text(r.card)
                for r in replies
                if isinstance(r, Show | Update) and r.card.screen == "notice"
            ] + [r.text for r in replies if isinstance(r, Say)]
            if problems:
                sentence = " ".join(problems)
                await ack(
                    response_action="errors", errors={error_field(form, values, sentence): sentence}
                )
            else:
                step = await self._form_step(where)
                await ack(response_action="update", view=self._modal(form, where, step))
            return
        await ack(response_action="clear")
        self._spawn(self.deliver(replies, where))

    async def _late(self, work: asyncio.Future[list[Reply] | None], where: Where) -> None:
        replies = await work
        if replies:
            await self.deliver(replies, where)

    async def _on_view_closed(self, ack: AsyncAck, body: dict[str, Any], request: Any) -> None:
        await ack()
        self._spawn(self._view_closed(body, request.raw_body))

    async def _view_closed(self, body: dict[str, Any], raw: str) -> None:
        """The modal's Cancel: end the dialog quietly (Slack has already closed the modal)."""
        view = body.get("view") or {}
        try:
            token = decode(str(view.get("callback_id", "")))
            cancel = encode(token.dialog, CANCEL, token.ref)
        except BadToken:
            return
        meta = _metadata(view.get("private_metadata"))
        channel = meta.get("channel", "")
        where = Where(
            team=(body.get("team") or {}).get("id") or meta.get("team", ""),
            channel=channel,
            user=(body.get("user") or {}).get("id", ""),
            kind=channel_kind(channel),
        )
        await self._unit_turn(body, raw, where, self._ready(Action(cancel)))

    async def _on_event(self, ack: AsyncAck, body: dict[str, Any], request: Any) -> None:
        await ack()
        event = body.get("event") or {}
        if event.get("bot_id") or event.get("subtype"):
            return
        if event.get("type") == "message" and event.get("channel_type") != "im":
            return  # channel chatter is not for us; mentions arrive as app_mention
        self._spawn(self._event(body, event, request.raw_body))

    async def _event(self, body: dict[str, Any], event: dict[str, Any], raw: str) -> None:
        text = str(event.get("text") or "")
        leading = LEADING_MENTION.match(text)
        bot_user = self.own.bot_user_id if self.own is not None else ""
        addressed = bool(bot_user) and leading is not None and f"<@{bot_user}" in leading.group()
        if leading and (event.get("type") == "app_mention" or addressed):
            # "@rewards kudos @li": the address to the bot is not one of the people named.
            text = text[leading.end() :]
        first = text.strip().split(" ", 1)[0].lower()
        if first in {c.name for c in COMMANDS} | {CANCEL}:
            text = "/" + text.strip()
        channel = str(event.get("channel", ""))
        where = Where(
            team=str(body.get("team_id") or event.get("team") or ""),
            channel=channel,
            user=str(event.get("user", "")),
            kind="personal" if event.get("channel_type") == "im" else channel_kind(channel),
        )
        replies = await self._unit_turn(body, raw, where, self._ready(Text(text)))
        if replies is not None:
            await self.deliver(replies, where)

    # --- replies -------------------------------------------------------------------------------

    def _modal(self, card: Card, where: Where, step: str = "") -> dict[str, Any]:
        assert card.form is not None and card.form.submit.token is not None
        data = {"channel": where.channel, "team": where.team} | ({"step": step} if step else {})
        metadata = json.dumps(data)
        return to_modal(card, callback_id=card.form.submit.token, private_metadata=metadata)

    async def deliver(self, replies: list[Reply], where: Where) -> None:
        """Send the dialog's replies, each as its audience says (`dialogs.replies.Audience`):
        forms open as modals; cards for everyone are posted in the channel (or replace the clicked
        message); everything else (refusals, help, someone's own rewards, confirmations) only the
        person who acted sees. Every text is escaped like the blocks."""
        for reply in replies:
            if isinstance(reply, Show | Update):
                card = reply.card
                modal = card.form is not None and bool(card.form.submit.token)
                if modal and where.trigger_id and await self._open(card, where):
                    continue
                await self._card(reply, where)
            elif isinstance(reply, Mrkdwn):
                await self._whisper(where, reply.text)
            elif isinstance(reply, Say):
                await self._whisper(where, escape(reply.text))

    async def _card(self, reply: Show | Update, where: Where) -> None:
        """One card where its audience is: the policy of the README's "Slack reply policy"."""
        card, public = reply.card, is_public(reply)
        if isinstance(reply, Update) and where.message_ts:
            if where.ephemeral:  # a click on a card only the clicker sees
                if public:  # e.g. "Give badge": the confirmation goes, the award is posted
                    await self._respond(where, delete_original=True)
                    await self._post(card, where)
                else:
                    await self._respond(
                        where,
                        replace_original=True,
                        text=fallback_text(card),
                        blocks=to_blocks(card),
                    )
                return
            if public or reply.audience is Audience.VIEWERS:
                await self._update(card, where, public=public)
                return
            # A private answer to a click on a public message leaves that message as it is.
        if public:
            await self._post(card, where)
        else:
            await self._whisper(where, fallback_text(card), to_blocks(card))

    async def _open(self, card: Card, where: Where) -> bool:
        trigger_id, where.trigger_id = where.trigger_id, None  # a trigger opens one modal
        try:
            view = self._modal(card, where, await self._form_step(where))
            await self.client.views_open(trigger_id=trigger_id, view=view)
        except WEB_API_FAILURES as problem:  # e.g. expired_trigger_id: post the card instead
            log.warning("views.open failed: %s", reason(problem))
            return False
        return True

    async def _post(self, card: Card, where: Where) -> None:
        """A card for everyone in the channel."""
        text, blocks = fallback_text(card), to_blocks(card)
        try:
            await self.client.chat_postMessage(channel=where.channel, blocks=blocks, text=text)
        except WEB_API_FAILURES as problem:
            log.warning("chat.postMessage failed: %s", reason(problem))
            # e.g. not_in_channel, or no JSON answer: a command's response_url still works.
            await self._respond(
                where, text=text, blocks=blocks, response_type="in_channel", replace_original=False
            )

    async def _update(self, card: Card, where: Where, *, public: bool) -> None:
        """Redraw the clicked public message; if Slack refuses, the card goes out anew to the
        audience it was meant for."""
        try:
            await self.client.chat_update(
                channel=where.channel,
                ts=where.message_ts or "",
                blocks=to_blocks(card),
                text=fallback_text(card),
            )
        except WEB_API_FAILURES as problem:
            log.warning("chat.update failed: %s", reason(problem))
            if public:
                await self._post(card, where)
            else:
                await self._whisper(where, fallback_text(card), to_blocks(card))

    async def _whisper(
        self, where: Where, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        """Something only the person who acted sees: the ephemeral answer of their command or
        click (`response_url`), a message in the bot's DM, else `chat.postEphemeral`. `text` is
        Slack markup, already escaped."""
        extra: dict[str, Any] = {"blocks": blocks} if blocks else {}
        if where.respond is not None:
            await self._respond(
                where, text=text, response_type="ephemeral", replace_original=False, **extra
            )
            return
        try:
            if where.kind == "personal":
                await self.client.chat_postMessage(channel=where.channel, text=text, **extra)
            else:
                await self.client.chat_postEphemeral(
                    channel=where.channel, user=where.user, text=text, **extra
                )
        except WEB_API_FAILURES as problem:
            log.warning("could not answer %s privately: %s", where.user, reason(problem))

    async def _respond(self, where: Where, **message: Any) -> None:
        """A `response_url` answer (ephemeral unless said otherwise); a failure is logged."""
        if where.respond is None:
            return
        try:
            await where.respond(**message)
        except WEB_API_FAILURES as problem:
            log.warning("response_url answer failed: %s", reason(problem))


def command_answer(answer: dict[str, Any] | str, *, status: int = 200) -> web.Response:
    """The HTTP answer `to_aiohttp_response(BoltResponse(status=status, body=answer))` makes
    (a JSON object, or plain text), built without the two intermediate objects."""
    body = json.dumps(answer) if isinstance(answer, dict) else answer
    content_type = "application/json" if body.startswith("{") else "text/plain"
    return web.Response(status=status, body=body, content_type=content_type)


def ack_message(replies: list[Reply]) -> tuple[dict[str, Any] | None, list[Reply]]:
    """A slash command's first reply as the body of its HTTP answer, and the replies left.

    Slack posts a message given in the answer as the command's response: `in_channel` for a card
    everyone should see, `ephemeral` (seen by the sender alone) for everything else, as the reply
    policy says. A form (opened as a modal with the trigger id) and an `Update` are not messages
    of this kind: then nothing goes in the answer and every reply is delivered as usual."""
    for index, reply in enumerate(replies):
        if isinstance(reply, Done):
            continue
        message: dict[str, Any] | None = None
        if isinstance(reply, Show) and not (reply.card.form and reply.card.form.submit.token):
            card = reply.card
            kind = "in_channel" if is_public(reply) else "ephemeral"
            message = {"response_type": kind, "text": fallback_text(card)}
            message["blocks"] = to_blocks(card)
        elif isinstance(reply, Mrkdwn):
            message = {"response_type": "ephemeral", "text": reply.text}
        elif isinstance(reply, Say):
            message = {"response_type": "ephemeral", "text": escape(reply.text)}
        if message is None:
            return None, replies
        return message, replies[:index] + replies[index + 1 :]
    return None, replies


async def _refuse_outside(body: Mapping[str, Any], respond: AsyncRespond | None) -> BoltResponse:
    """The answer to a request from outside the boundary: a short sentence only the person who
    asked can see (a slash command's ephemeral answer, the response URL of a button, the error
    line of a modal); events are dropped without a word."""
    if body.get("command"):
        return BoltResponse(
            status=200, body={"response_type": "ephemeral", "text": OUTSIDE_REFUSAL}
        )
    kind = body.get("type")
    if kind == "view_submission":
        errors = _first_block(body.get("view") or {}, OUTSIDE_REFUSAL)
        if errors:
            return BoltResponse(status=200, body={"response_action": "errors", "errors": errors})
        return BoltResponse(
            status=200, body={"response_action": "update", "view": _notice_view(OUTSIDE_REFUSAL)}
        )
    if kind in ("block_actions", "message_action", "interactive_message") and respond is not None:
        try:
            await respond(text=OUTSIDE_REFUSAL, response_type="ephemeral", replace_original=False)
        except Exception:  # the refusal stands even when Slack cannot be told
            log.warning("could not answer a request from outside the boundary", exc_info=True)
    return BoltResponse(status=200, body="")


def _notice_view(sentence: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Rewards"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "plain_text", "text": sentence}}],
    }


def _metadata(raw: object) -> dict[str, str]:
    try:
        data = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _first_block(view: Mapping[str, Any], sentence: str) -> dict[str, str]:
    inputs = [b["block_id"] for b in view.get("blocks") or [] if b.get("type") == "input"]
    return {inputs[0]: sentence} if inputs else {}
