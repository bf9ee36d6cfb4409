"""Read-only commands: `/leaderboard`, `/me` and `/help`. They finish in one turn."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cards.actions import BadToken, encode
from cards.model import Card
from cards.screens import help_card, leaderboard, my_rewards
from cards.workflows import workflow_progress
from dialogs import privacy
from dialogs.base import Ask, Context, Dialog, Finish, Step, StepTokens
from dialogs.commands import COMMANDS
from dialogs.export import send_my_data
from dialogs.replies import Show
from rewards.errors import InvalidInput
from rewards.privacy.preferences import get_preferences
from rewards.services import ledger, profile
from rewards.services._subjects import load_person
from rewards.services.leaderboards import LeaderboardFilter, Metric, Period

FULL_LIMIT = 50
METRIC_WORDS = {m.value: m for m in Metric} | {
    "given": Metric.KUDOS_GIVEN,
    "received": Metric.KUDOS_RECEIVED,
    "point": Metric.POINTS,
    "badge": Metric.BADGES,
}
PERIOD_WORDS = {p.value: p for p in Period} | {"alltime": Period.ALL, "all-time": Period.ALL}
_REF_SAFE = re.compile(r"[A-Za-z0-9_.~-]*")


@dataclass(frozen=True)
class BoardQuery:
    period: Period = Period.MONTH
    metric: Metric = Metric.POINTS
    tag: str | None = None
    department: str | None = None


def parse_board_args(args: str) -> BoardQuery:
    """Words in any order: a period, a metric, `#tag`; anything else names a department."""
    period, metric, tag = Period.MONTH, Metric.POINTS, None
    department: list[str] = []
    for word in args.split():
        folded = word.casefold()
        if folded in PERIOD_WORDS:
            period = PERIOD_WORDS[folded]
        elif folded in METRIC_WORDS:
            metric = METRIC_WORDS[folded]
        elif word.startswith("#") and len(word) > 1:
            tag = word[1:]
        else:
            department.append(word)
    return BoardQuery(period, metric, tag, " ".join(department) or None)


def unknown_board_word(word: str) -> str:
    """The sentence for a leaderboard word that is neither a period, a metric, a tag nor a
    department anyone belongs to."""
    periods = ", ".join(p.value for p in Period)
    metrics = ", ".join(m.value for m in Metric)
    return (
        f"I don't know \u201c{word}\u201d; try {periods} (the period), {metrics} (what to "
        "rank by), #tag, or the name of a department."
    )


def _full_token(query: BoardQuery) -> str | None:
    """A "full leaderboard" button, when the query fits in a token (else no button)."""
    scope = f"t-{query.tag}" if query.tag else f"d-{query.department}" if query.department else ""
    if not _REF_SAFE.fullmatch(scope):
        return None
    try:
        return encode("leaderboard", "full", f"{query.period.value}.{query.metric.value}.{scope}")
    except BadToken:
        return None


class LeaderboardDialog(Dialog):
    name = "leaderboard"

    async def _show(self, ctx: Context, query: BoardQuery, *, full: bool) -> Step:
        board = await ctx.core.leaderboards.leaderboard(
            query.metric,
            query.period,
            LeaderboardFilter(department=query.department, tag=query.tag),
            limit=FULL_LIMIT if full else 10,
            now=ctx.now,
        )
        # An empty board for a word that names no department was a typo or a word we do not
        # know ("banana"), not a department with no activity: say what we understand.
        if (
            query.department
            and not board.rows
            and not await ctx.core.leaderboards.knows_department(query.department)
        ):
            raise InvalidInput(unknown_board_word(query.department))
        card = leaderboard(
            board,
            full=None if full else _full_token(query),
            give_kudos=encode("kudos", "start"),
        )
        return Finish((Show(card),))

    async def start(self, ctx: Context, args: str) -> Step:
        return await self._show(ctx, parse_board_args(args), full=False)

    async def action(self, ctx: Context, verb: str, ref: str) -> Step | None:
        if verb != "full":
            return None
        period, _, rest = ref.partition(".")
        metric, _, scope = rest.partition(".")
        if period not in PERIOD_WORDS or metric not in METRIC_WORDS:
            return None
        kind, _, value = scope.partition("-")
        query = BoardQuery(
            PERIOD_WORDS[period],
            METRIC_WORDS[metric],
            tag=value if kind == "t" and value else None,
            department=value if kind == "d" and value else None,
        )
        return await self._show(ctx, query, full=True)


class MeDialog(Dialog):
    name = "me"

    async def start(self, ctx: Context, args: str) -> Step:
        if args.strip().casefold() == privacy.SETTINGS:
            return Ask(privacy.SETTINGS)
        if args.strip().casefold() == "data":
            return await send_my_data(ctx)
        db = ctx.core.db
        summary = await ledger.summary(db, ctx.member_id)
        settings = ctx.core.settings
        rank = await profile.points_rank(
            db,
            ctx.member_id,
            ctx.now,
            settings.timezone,
            leaderboard_default=settings.leaderboard_default,
        )
        hidden = rank is None and (await get_preferences(db, settings, ctx.member_id)).hidden
        awards = await profile.recent_awards(db, ctx.member_id, limit=5)
        kudos = [line for line in await ledger.history(db, ctx.member_id, limit=50)]
        # Kudos and their revocations (a revoked kudos shows its reversal beside it).
        recent_kudos = [line for line in kudos if line.kudos_id is not None][:5]
        left = await ctx.core.kudos.allowance_left(ctx.member_id, ctx.now)
        balance = await ctx.core.shop.balance(ctx.member_id)
        async with db.read() as session:  # the turn already looked the member up: no statement
            person = await load_person(session, ctx.member_id)
        card = my_rewards(
            summary,
            rank=rank,
            recent_awards=awards,
            recent_kudos=recent_kudos,
            allowance=left.describe(ctx.now) if left else None,
            balance=balance,
            hidden=hidden,
            giving_paused=person.giving_locked,
        )
        active = await ctx.core.workflows.progress(ctx.member_id, active_only=True)
        return Finish((Show(card), *(Show(workflow_progress([view])) for view in active)))

    async def card(
        self, ctx: Context, step: str, values: dict[str, Any], tokens: StepTokens
    ) -> Card:
        return await privacy.settings_card(ctx, tokens)  # the one step: `/me settings`

    async def submit(self, ctx: Context, step: str, values: dict[str, Any]) -> Step:
        return await privacy.settings_submit(ctx, values)


class HelpDialog(Dialog):
    name = "help"

    async def start(self, ctx: Context, args: str) -> Step:
        return Finish((Show(help_card([(c.usage, c.description) for c in COMMANDS])),))
