"""`Notifier`: sends due announcement deliveries through the platform gateways and SMTP.

It runs inside the server process (see `bots.notifier.setup`): a loop that wakes every few seconds,
and at once when `wake()` is called (after an announcement is written), claims due `Delivery`
rows and sends each one:

- a channel post (target: a channel's id or stored name): the folded announcement card through
  the platform's gateway (`bots.gateway.ChannelGateway.post`);
- a direct message (target ``member:<id>``): the recipient's personal card through
  `ChannelGateway.direct`; when the bot never met that member on the platform it is "skipped"
  with the reason, and not retried;
- an email (target: an address): the personal card as a text + HTML message (`email.Mailer`).

A failure (the platform answers 500, refuses the connection, times out, or the channel is
unknown) is retried with exponential back-off, ``DELIVERY_BACKOFF_SECONDS * 2^(attempt-1)``
capped at an hour, up to ``DELIVERY_MAX_ATTEMPTS``; after the last one the delivery is "failed"
with the last error, listed by ``rewards deliveries list --failed`` and re-queued by
``rewards deliveries retry ID``. A platform this server does not run at all (no token) fails its
deliveries at once with the reason. A platform that is configured but still starting is left
alone until it is ready. Awards are never touched here: they were written before the
announcement, so a platform outage delays the news but never loses or repeats an award.

Claims are leased (`rewards.services.announcements.claim_due`), so several server processes can
run a notifier each over one database and every delivery is still sent once: the lease is longer
than the send timeout (by `deliveries.LEASE_MARGIN`), a claim is re-checked and its lease renewed
(`deliveries.renew`, a conditional update on the claim's token) immediately before its send, and
the send is cancelled at `SEND_TIMEOUT`. A claim that waited past its lease (behind slow sends
of its batch) and was taken by another process is dropped, not sent a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bots.gateway import ChannelGateway, PostedMessage
from bots.notifier import shop as shop_notices
from bots.notifier.email import Mailer
from bots.notifier.shop import SHOP_KINDS, shop_card
from cards import announcements as screens
from cards import nominations as nomination_screens
from cards.model import Card
from dialogs.nominations import ballot_card, nominate_token
from rewards.core import Core
from rewards.errors import NotFound
from rewards.faults import checkpoint
from rewards.membership import Boundary
from rewards.services import announcements as deliveries
from rewards.services.announcements import AnnouncementView, ClaimedDelivery
from rewards.services.channels import ChannelView, list_channels
from rewards.settings import Settings

log = logging.getLogger("bots.notifier")

PLATFORMS = ("teams", "slack", "telegram")
PLATFORM_NAMES = {"teams": "Microsoft Teams", "slack": "Slack", "telegram": "Telegram"}
NOT_RUNNING = {
    "teams": "Microsoft Teams is not mounted on this server.",
    "slack": (
        "Slack is not connected on this server (set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET)."
    ),
    "telegram": "Telegram is not connected on this server (set TELEGRAM_BOT_TOKEN).",
    "email": "Email is off on this server (set SMTP_HOST).",
}
POLL_SECONDS = 5.0
BATCH = 20
PARALLEL = 5  # sends in flight at once: one slow platform must not hold up the others
SEND_TIMEOUT = deliveries.SEND_TIMEOUT.total_seconds()
"""Seconds per send; the lease (`deliveries.lease_for`) is this plus a margin, and it is renewed
right before the send, so a send never outlives its lease."""

Gateways = Mapping[str, ChannelGateway | None]
"""Platform -> its gateway; None while the platform is mounted but not started yet; a platform
missing from the mapping is not run by this server."""

_TEAMS_ERRORS: ContextVar[list[BaseException] | None] = ContextVar("teams_errors", default=None)


def capture_teams_errors(adapter: Any) -> None:
    """Let the notifier see why a proactive Teams send failed.

    The Bot Framework adapter hands an exception raised inside `continue_conversation` to its
    `on_turn_error` handler and returns normally, so the gateway's caller would think the message
    went out. This wraps the handler: while the notifier is sending (a context variable is set),
    the error is collected for it to raise; otherwise the original handler runs as before.
    """
    original = getattr(adapter, "on_turn_error", None)
    if adapter is None or getattr(original, "_notifier_capture", False):
        return

    async def on_turn_error(context: Any, error: Exception) -> None:
        captured = _TEAMS_ERRORS.get()
        if captured is not None:
            captured.append(error)
            return
        if original is not None:
            await original(context, error)

    on_turn_error._notifier_capture = True  # type: ignore[attr-defined]
    adapter.on_turn_error = on_turn_error


@dataclass
class Report:
    """What one pass did; the loop logs it and tests assert on it."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    released: int = 0
    superseded: int = 0
    """Claims dropped unsent: their lease ran out and another process took them over."""
    errors: list[str] = field(default_factory=list)

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.failed + self.skipped


class SendFailed(Exception):
    """A send that did not go out, with a sentence for the delivery's `last_error`."""


def describe(error: BaseException) -> str:
    """One line for `last_error`: the exception's class and message (never a traceback)."""
    text = str(error).strip().replace("\n", " ")
    if isinstance(error, SendFailed | NotFound):
        return text
    name = type(error).__name__
    return f"{name}: {text}" if text else name


class Notifier:
    """Delivers due announcements; `deliver_due()` is one pass, `start()` runs passes in a loop."""

    def __init__(
        self,
        core: Core | Callable[[], Core],
        gateways: Callable[[], Gateways],
        mailer: Mailer | None = None,
        *,
        interval: float = POLL_SECONDS,
        batch: int = BATCH,
        parallel: int = PARALLEL,
        send_timeout: float = SEND_TIMEOUT,
        lease: timedelta | None = None,
    ) -> None:
        lease = lease or deliveries.lease_for(timedelta(seconds=send_timeout))
        if send_timeout <= 0 or lease <= timedelta(seconds=send_timeout):
            raise ValueError("a delivery's lease must be longer than its send timeout")
        self.send_timeout = send_timeout
        self.lease = lease
        self._core = core
        self.gateways = gateways
        self.mailer = mailer
        self.interval = interval
        self.batch = batch
        self.parallel = parallel
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def core(self) -> Core:
        return self._core if isinstance(self._core, Core) else self._core()

    # --- the loop ------------------------------------------------------------------------------

    def wake(self) -> None:
        """Run a pass now rather than at the next tick (call after writing an announcement)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="rewards-notifier")

    async def stop(self, grace: float = 10.0) -> None:
        """Finish the sends in flight (up to `grace` seconds), then stop; claims not yet sent
        are given back so another process can send them without waiting for the lease."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                report = await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is down, say; the next tick tries again
                log.exception("notifier: a delivery pass failed")
                report = Report()
            if report.handled:
                log.info(
                    "notifier: %d sent, %d to retry, %d failed, %d skipped",
                    report.sent,
                    report.retried,
                    report.failed,
                    report.skipped,
                )
            if report.handled >= self.batch and not self._stopping:
                continue  # more may be due right now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    # --- one pass ------------------------------------------------------------------------------

    def _channels(self, gateways: Gateways) -> list[str]:
        """Channels to claim: ready platforms, email when on, and the platforms this server does
        not run at all (to fail them with the reason). A platform still starting is skipped."""
        channels = [p for p in PLATFORMS if p not in gateways or gateways[p] is not None]
        channels.append("email")
        return channels

    async def deliver_due(self) -> Report:
        """Claim the due deliveries (up to one batch) and send them; returns what happened."""
        core = self.core
        gateways = dict(self.gateways())
        claims = await deliveries.claim_due(
            core.db,
            core.clock.now(),
            channels=self._channels(gateways),
            limit=self.batch,
            lease=self.lease,
        )
        report = Report()
        if not claims:
            return report
        checkpoint("after_claim")  # test-only: see rewards.faults
        limit = asyncio.Semaphore(max(self.parallel, 1))

        async def one(claim: ClaimedDelivery) -> None:
            async with limit:
                await self._deliver(core, gateways, claim, report)

        await asyncio.gather(*(one(claim) for claim in claims))
        return report

    async def _deliver(
        self, core: Core, gateways: Gateways, claim: ClaimedDelivery, report: Report
    ) -> None:
        if self._stopping:
            await deliveries.release(core.db, claim, core.clock.now())
            report.released += 1
            return
        unavailable = claim.channel not in gateways and claim.channel in PLATFORMS
        if unavailable or (claim.channel == "email" and self.mailer is None):
            await deliveries.mark_failed_attempt(
                core.db,
                core.settings,
                claim,
                core.clock.now(),
                NOT_RUNNING[claim.channel],
                final=True,
            )
            report.failed += 1
            report.errors.append(NOT_RUNNING[claim.channel])
            return
        # The re-check: this claim may have waited past its lease behind the batch's slow sends,
        # and another process may have claimed (and sent) it meanwhile. Renewing is conditional
        # on the claim's token, and the send below is bounded well inside the renewed lease.
        renewed = await deliveries.renew(core.db, claim, core.clock.now())
        if renewed is None:
            log.warning(
                "notifier: delivery %d (%s %s) was taken over after its lease ran out; not sent",
                claim.id,
                claim.channel,
                claim.target,
            )
            report.superseded += 1
            return
        claim = renewed
        checkpoint("during_send")  # test-only: see rewards.faults
        try:
            async with asyncio.timeout(self.send_timeout):
                outcome = await self._send(core, gateways, claim)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            core.signals.delivery_attempted(claim.channel, failed=True)
            reason = describe(error)
            log.warning(
                "notifier: delivery %d (%s %s) attempt %d failed: %s",
                claim.id,
                claim.channel,
                claim.target,
                claim.attempts,
                reason,
            )
            status = await deliveries.mark_failed_attempt(
                core.db, core.settings, claim, core.clock.now(), reason
            )
            report.errors.append(reason)
            if status == deliveries.FAILED:
                report.failed += 1
            else:
                report.retried += 1
            return
        core.signals.delivery_attempted(claim.channel, failed=False)
        if isinstance(outcome, Skip):
            await deliveries.mark_skipped(core.db, claim, core.clock.now(), outcome.reason)
            report.skipped += 1
            return
        if not await deliveries.mark_sent(core.db, claim, core.clock.now(), outcome):
            log.warning("notifier: delivery %d was sent but its claim was gone", claim.id)
        report.sent += 1

    async def _send(self, core: Core, gateways: Gateways, claim: ClaimedDelivery) -> str | Skip:
        """Send one claimed delivery; returns the message reference, or a `Skip`."""
        view = claim.announcement
        if view.kind in SHOP_KINDS:
            return await self._send_shop(core, gateways, claim)
        if claim.channel == "email":
            assert self.mailer is not None
            item = view.item_for(claim.member_id) if claim.member_id is not None else None
            card = screens.personal(view, item) if item else screens.announcement(view)
            return await self.mailer.send(claim.target, card)
        gateway = gateways[claim.channel]
        assert gateway is not None
        platform = PLATFORM_NAMES.get(claim.channel, claim.channel)
        if claim.target.startswith(deliveries.DIRECT_PREFIX):
            item = view.item_for(claim.member_id) if claim.member_id is not None else None
            if item is None:
                return Skip(f"{claim.target} is not one of this announcement's recipients.")
            posted = await self._call(
                gateway, lambda: gateway.direct(item.member_id, screens.personal(view, item))
            )
            if posted is None:
                return Skip(f"{item.name} has no direct chat with the bot on {platform} yet.")
            return _ref(posted)
        chat_id, tenant = await resolve_channel(core, claim.channel, claim.target)
        card = await nomination_card(core, view) or screens.announcement(view)
        sent = await self._call(gateway, lambda: gateway.post(chat_id, card, tenant=tenant))
        if sent is None:  # pragma: no cover - post always returns a message
            raise SendFailed(f"{platform} did not accept the message.")
        campaign_id = view.payload.get("campaign_id")
        if view.kind in NOMINATION_KINDS and isinstance(campaign_id, int):
            message = {
                "platform": sent.platform,
                "chat_id": sent.chat_id,
                "message_id": sent.message_id,
                "tenant": sent.tenant or tenant,
                "kind": view.kind,
            }
            await core.nominations.record_message(campaign_id, message)
            if view.kind in ENDING_KINDS:
                await self._retire_buttons(core, gateway, campaign_id, sent, card)
        return _ref(sent)

    async def _send_shop(
        self, core: Core, gateways: Gateways, claim: ClaimedDelivery
    ) -> str | Skip:
        """A shop notification (`bots.notifier.shop`): the same card wherever it goes, to a
        direct chat (an admin's, or the member's), a channel, or an email address."""
        card = await shop_card(core, claim.announcement)
        if card is None:
            return Skip("The redemption of this notification no longer exists.")
        if claim.channel == "email":
            assert self.mailer is not None
            return await self.mailer.send(claim.target, card)
        gateway = gateways[claim.channel]
        assert gateway is not None
        platform = PLATFORM_NAMES.get(claim.channel, claim.channel)
        member_id = claim.member_id or deliveries.direct_member(claim.target)
        if claim.target.startswith(deliveries.DIRECT_PREFIX) and member_id is not None:
            who: int = member_id
            posted = await self._call(gateway, lambda: gateway.direct(who, card))
            if posted is None:
                return Skip(f"{claim.target} has no direct chat with the bot on {platform} yet.")
            if claim.announcement.kind == shop_notices.DECIDED:
                await self._retire_requests(core, gateway, claim.announcement)
            return _ref(posted)
        chat_id, tenant = await resolve_channel(core, claim.channel, claim.target)
        sent = await self._call(gateway, lambda: gateway.post(chat_id, card, tenant=tenant))
        if sent is None:  # pragma: no cover - post always returns a message
            raise SendFailed(f"{platform} did not accept the message.")
        return _ref(sent)

    async def _retire_requests(
        self, core: Core, gateway: ChannelGateway, view: AnnouncementView
    ) -> None:
        """A redemption was decided: its approval cards posted on this platform are redrawn
        with the decision, without buttons. Best effort, like `_retire_buttons`."""
        number = shop_notices.redemption_id(view.payload)
        if number is None:
            return
        try:
            card = shop_notices.approval_card(await core.shop.get(number))
            earlier = await shop_notices.posted_requests(core, number, gateway.platform)
        except Exception as problem:  # logged: the outcome itself went out
            log.warning("could not find the approval cards of redemption %s: %s", number, problem)
            return
        for message in earlier:
            try:
                await self._call(gateway, lambda message=message: gateway.update(message, card))
            except Exception as problem:
                log.warning("could not redraw %s: %s", message, problem)

    async def _retire_buttons(
        self,
        core: Core,
        gateway: ChannelGateway,
        campaign_id: int,
        sent: PostedMessage,
        card: Card,
    ) -> None:
        """When a campaign ends, the open and ballot cards it posted on this platform are redrawn
        as the ending card, so nobody is left with Nominate or vote buttons that can only say
        "closed". Best effort: a message deleted meanwhile does not fail the announcement."""
        campaign = await core.nominations.get(campaign_id)
        for message in campaign.messages:
            if message.get("platform") != sent.platform or message.get("kind") in ENDING_KINDS:
                continue
            earlier = PostedMessage(
                sent.platform,
                str(message.get("chat_id")),
                str(message.get("message_id")),
                str(message.get("tenant") or ""),
            )
            try:
                await self._call(gateway, lambda earlier=earlier: gateway.update(earlier, card))
            except Exception as problem:  # logged: the announcement itself went out
                log.warning("could not redraw %s: %s", earlier, problem)

    async def _call(self, gateway: ChannelGateway, send: Callable[[], Any]) -> PostedMessage | None:
        """Run a gateway call; on Teams, errors the adapter swallowed are raised here."""
        if gateway.platform != "teams":
            result: PostedMessage | None = await send()
            return result
        capture_teams_errors(getattr(gateway, "adapter", None))
        captured: list[BaseException] = []
        token = _TEAMS_ERRORS.set(captured)
        try:
            result = await send()
        finally:
            _TEAMS_ERRORS.reset(token)
        if captured:
            raise captured[0]
        return result


ENDING_KINDS = frozenset({"nomination_winners", "nomination_cancelled"})


NOMINATION_KINDS = frozenset(
    {"nomination_open", "nomination_voting", "nomination_winners", "nomination_cancelled"}
)


async def nomination_card(core: Core, view: AnnouncementView) -> Card | None:
    """The channel card of a nomination campaign's announcement, drawn from the campaign as it
    is now: the open card with its "Nominate" button, the ballot with a button per candidate,
    the winners with the tallies, or the cancellation. None for other kinds (or a campaign that
    is gone, which gets the ordinary announcement card)."""
    campaign_id = view.payload.get("campaign_id")
    if view.kind not in NOMINATION_KINDS or not isinstance(campaign_id, int):
        return None
    try:
        campaign = await core.nominations.get(campaign_id)
    except NotFound:
        return None
    if view.kind == "nomination_open":
        open_now = campaign.status == "nominating"
        return nomination_screens.campaign_opened(
            campaign, nominate=nominate_token(campaign.id) if open_now else None
        )
    if view.kind == "nomination_voting":
        return await ballot_card(core, campaign.id)
    if view.kind == "nomination_winners":
        names = {item.member_id: item.name for item in view.items}
        for candidate in await core.nominations.candidates(campaign.id):
            names.setdefault(candidate.member_id, candidate.name)
        return nomination_screens.winners(campaign, names, campaign.winners, campaign.tallies)
    return nomination_screens.campaign_cancelled(campaign, str(view.payload.get("reason") or ""))


@dataclass(frozen=True)
class Skip:
    reason: str


def _ref(posted: PostedMessage) -> str:
    return f"{posted.chat_id}:{posted.message_id}" if posted.message_id else posted.chat_id


def _inside(boundary: Boundary, settings: Settings, channel: ChannelView) -> bool:
    """Whether a stored channel is inside the organisation's boundary (for posting by name)."""
    if channel.platform == "teams":
        return boundary.teams_allows(channel.tenant)
    if channel.platform == "slack" and settings.slack_team_ids:
        return channel.tenant in settings.slack_team_ids
    return True


async def resolve_channel(core: Core, platform: str, target: str) -> tuple[str, str]:
    """(chat id, tenant) of the channel an announcement names by id or by its stored name.

    Only channels inside the boundary are candidates: a Teams channel of a tenant in
    REWARDS_TENANT_ID (any tenant when that is unset), a Slack channel of a workspace in
    SLACK_TEAM_IDS when that is set. Otherwise "Rewards" would mean the most recently seen channel
    of that name in whichever organisation once talked to the bot.

    Teams can only post where the bot has a stored conversation reference, so an unknown Teams
    channel is an error (retried: the bot may be added meanwhile). Slack and Telegram accept a
    raw channel or chat id (TELEGRAM_CHAT_ID is usually one the bot never stored), so an unknown
    target is passed on as it is and the platform decides.
    """
    wanted = target.strip()
    boundary = Boundary.from_settings(core.settings)
    channels = [
        c
        for c in await list_channels(core.db, platform)
        if c.kind != "personal" and _inside(boundary, core.settings, c)
    ]
    by_id = [c for c in channels if c.chat_id == wanted]
    by_name = [c for c in channels if c.name and c.name.strip().lower() == wanted.lower()]
    for found in (by_id, by_name):
        if found:
            best = max(found, key=lambda c: c.updated_at)
            return best.chat_id, best.tenant
    if platform == "teams":
        raise SendFailed(
            f"The bot has not been added to a Teams channel named or with id {wanted!r}"
            " in this organisation's tenants."
        )
    return wanted, ""
