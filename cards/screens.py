"""The bot's screens, built once from the core's views as neutral `Card`s.

Every screen decides *what* is said (wording, order, which buttons) here, so Teams, Slack, Telegram
and the console cannot drift apart; the renderers in `cards.render` only decide *how* it looks.
Screens take action tokens (`cards.actions`) from the caller rather than making them, because the
dialog that will handle a press owns its verbs and refs.

All text in a `Card` is plain text (no markdown): user-supplied strings such as kudos messages and
display names flow in unchanged and each renderer escapes them for its platform.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from urllib.parse import urlsplit

from cards.model import (
    Action,
    Block,
    Card,
    Choice,
    Fact,
    Facts,
    Field,
    FieldKind,
    Form,
    Image,
    ItemList,
    Row,
    Text,
    Tone,
)
from rewards.catalog.model import RewardCore
from rewards.economy.shop.model import Balance
from rewards.services.awards import AwardView
from rewards.services.kudos import KudosView, TagView
from rewards.services.leaderboards import Leaderboard, Metric, Period, TagTrend
from rewards.services.ledger import LedgerLine, MemberSummary

MEDALS = {1: "🥇", 2: "🥈", 3: "🥉"}

METRIC_TITLES = {
    Metric.POINTS: "points",
    Metric.BADGES: "badges",
    Metric.KUDOS_RECEIVED: "kudos received",
    Metric.KUDOS_GIVEN: "kudos given",
}

PERIOD_TITLES = {
    Period.WEEK: "this week",
    Period.MONTH: "this month",
    Period.QUARTER: "this quarter",
    Period.YEAR: "this year",
    Period.ALL: "of all time",
}

EMPTY_LEADERBOARD = "Nobody yet. Send some kudos to get things started!"
MESSAGE_MAX = 500  # the kudos message limit the core enforces; the form says so up front
PEOPLE_PLACEHOLDER = "@name or email"


def _date(moment: datetime) -> str:
    """A short, locale-free date ("3 Nov 2026"): cards are shared in channels across time zones,
    so we show the day, not a clock time that would be wrong for half the readers."""
    return f"{moment.day} {moment:%b %Y}"


def _names(names: Sequence[str]) -> str:
    """ "Ana", "Ana and Li", "Ana, Li and Bo"."""
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _is_web_url(url: str | None) -> bool:
    """Only http(s) icons are shown: catalogue icons may be emoji or local names, which no
    platform can fetch, and a `javascript:` URL must never reach a card."""
    if not url:
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _prefill(values: Mapping[str, object] | None, name: str) -> str | tuple[str, ...] | None:
    """A form value from a partial submission (a re-shown form keeps what the user typed)."""
    if not values or values.get(name) is None:
        return None
    value = values[name]
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(str(v) for v in value)
    return str(value)


def _form_actions(submit_title: str, submit: str, cancel: str) -> tuple[Action, Action]:
    return (
        Action(submit_title, token=submit, style="positive", submits_form=True),
        Action("Cancel", token=cancel),
    )


def kudos_posted(kudos: KudosView) -> Card:
    """The public message after kudos are sent: who thanked whom, why, and the tags."""
    receivers = _names([name for _, name in kudos.receivers])
    body: list[Block] = [
        Text(f"{kudos.giver_name} → {receivers}", heading=True),
        Text(kudos.message),
    ]
    if kudos.tags:
        body.append(Text(" ".join(f"#{tag}" for tag in kudos.tags), tone=Tone.ACCENT))
    if kudos.points_each:
        each = " each" if len(kudos.receivers) > 1 else ""
        body.append(Text(f"+{_plural(kudos.points_each, 'point')}{each}", tone=Tone.GOOD))
    body.append(Text(_date(kudos.created_at), tone=Tone.SUBTLE))
    if kudos.allowance is not None:
        left = kudos.allowance.describe(kudos.created_at)
        body.append(Text(f"{kudos.giver_name}'s allowance left: {left}", tone=Tone.SUBTLE))
    return Card(
        screen="kudos_posted",
        title="🎉 Kudos!",
        summary=f"{kudos.giver_name} gave kudos to {receivers}",
        body=tuple(body),
    )


def _tag_choices(tags: Sequence[TagView | TagTrend]) -> tuple[Choice, ...]:
    """Trending tags first (most used first), then the others in the given order; one per name."""
    trends = sorted((t for t in tags if isinstance(t, TagTrend)), key=lambda t: -t.count)
    described = {t.name: t.description for t in tags if isinstance(t, TagView) and t.description}
    seen: set[str] = set()
    choices: list[Choice] = []
    for trend in trends:
        if trend.tag not in seen:
            seen.add(trend.tag)
            about = described.get(trend.tag) or f"used {trend.count}×"
            choices.append(Choice(trend.tag, trend.label, f"Trending · {about}"))
    for tag in tags:
        if isinstance(tag, TagView) and tag.name not in seen:
            seen.add(tag.name)
            choices.append(Choice(tag.name, tag.label, tag.description or ""))
    return tuple(choices)


def kudos_form(
    tags: Sequence[TagView | TagTrend],
    *,
    submit: str,
    cancel: str,
    values: Mapping[str, object] | None = None,
    allowance: str | None = None,
    tag_required: bool = False,
    custom_tags: bool = True,
) -> Card:
    """The kudos form: recipients, a message and tags (optional unless `tag_required`; users
    may type new ones unless the tags are closed), and what is left of the giver's allowance
    ("3 of 5 today, resets in 4 h"; None: unlimited)."""
    send, cancel_action = _form_actions("Send kudos", submit, cancel)
    fields = (
        Field(
            "recipients",
            "Who do you want to thank?",
            FieldKind.PEOPLE,
            placeholder=PEOPLE_PLACEHOLDER,
            value=_prefill(values, "recipients"),
        ),
        Field(
            "message",
            "What did they do?",
            FieldKind.MULTILINE,
            placeholder="Thanks for…",
            max_length=MESSAGE_MAX,
            value=_prefill(values, "message"),
        ),
        Field(
            "tags",
            "Tags",
            FieldKind.MULTI_CHOICE,
            required=tag_required,
            placeholder="Pick or type tags" if custom_tags else "Pick tags",
            choices=_tag_choices(tags),
            allow_custom=custom_tags,
            value=_prefill(values, "tags"),
        ),
    )
    return Card(
        screen="kudos_form",
        title="Give kudos",
        summary="Give kudos to a colleague",
        body=(
            Text("Say thanks: the whole team will see it.", tone=Tone.SUBTLE),
            *([Text(f"Allowance left: {allowance}", tone=Tone.SUBTLE)] if allowance else []),
        ),
        form=Form(fields, send, cancel_action),
    )


def _points_line(reward: RewardCore) -> str:
    points = _plural(reward.points, "point")
    return f"{points} · {reward.description}" if reward.description else points


def badge_picker(
    rewards: Sequence[RewardCore],
    *,
    submit: str,
    cancel: str,
    values: Mapping[str, object] | None = None,
) -> Card:
    """Choose a badge, a recipient and an optional message; without badges, a kind explanation."""
    if not rewards:
        return Card(
            screen="badge_picker_empty",
            title="Give a badge",
            summary="No badges are available to you right now",
            body=(
                Text("No badges are available to you right now."),
                Text(
                    "Badges can depend on your role, your group or the time of year; "
                    "kudos are always open.",
                    tone=Tone.SUBTLE,
                ),
            ),
        )
    choices = tuple(Choice(str(r.reward_id), r.reward, _points_line(r)) for r in rewards)
    give, cancel_action = _form_actions("Next", submit, cancel)
    fields = (
        Field(
            "badge",
            "Badge",
            FieldKind.CHOICE,
            placeholder="Choose a badge",
            choices=choices,
            value=_prefill(values, "badge"),
        ),
        Field(
            "recipient",
            "Who gets it?",
            FieldKind.PERSON,
            placeholder=PEOPLE_PLACEHOLDER,
            value=_prefill(values, "recipient"),
        ),
        Field(
            "message",
            "Message",
            FieldKind.MULTILINE,
            required=False,
            placeholder="Why they deserve it (optional)",
            max_length=MESSAGE_MAX,
            value=_prefill(values, "message"),
        ),
    )
    return Card(
        screen="badge_picker",
        title="Give a badge",
        summary="Choose a badge to give",
        form=Form(fields, give, cancel_action),
    )


def badge_confirm(
    reward: RewardCore,
    recipient_name: str,
    message: str | None,
    *,
    confirm: str,
    cancel: str,
) -> Card:
    """The last look before a badge is given: awards are visible to everyone and cost points."""
    facts = [
        Fact("Badge", reward.reward),
        Fact("To", recipient_name),
        Fact("Points", str(reward.points)),
    ]
    if message:
        facts.append(Fact("Message", message))
    body: list[Block] = [Facts(tuple(facts))]
    if reward.description:
        body.append(Text(reward.description, tone=Tone.SUBTLE))
    return Card(
        screen="badge_confirm",
        title="Give this badge?",
        summary=f"Give {reward.reward} to {recipient_name}?",
        body=tuple(body),
        actions=(
            Action("Give badge", token=confirm, style="positive"),
            Action("Cancel", token=cancel),
        ),
    )


def badge_awarded(award: AwardView, reward: RewardCore) -> Card:
    """The public announcement of a badge."""
    body: list[Block] = []
    if reward.icon and _is_web_url(reward.icon):
        body.append(Image(reward.icon, reward.reward, "medium"))
    headline = f"{award.member_name} received {award.reward_name}"
    if award.giver_name:
        headline += f" from {award.giver_name}"
    body.append(Text(headline, heading=True))
    if award.message:
        body.append(Text(award.message))
    elif reward.message:
        body.append(Text(reward.message))
    if award.points:
        body.append(Text(f"+{_plural(award.points, 'point')}", tone=Tone.GOOD))
    if award.revoked_at is not None:
        body.append(Text(f"Revoked on {_date(award.revoked_at)}", tone=Tone.WARNING))
    body.append(Text(_date(award.awarded_at), tone=Tone.SUBTLE))
    return Card(
        screen="badge_awarded",
        title=f"🏅 {award.reward_name}",
        summary=headline,
        body=tuple(body),
    )


def leaderboard_title(board: Leaderboard) -> str:
    """ "Top points this month (Engineering, #teamwork)": the window and filters in one line."""
    parts = [f"Top {METRIC_TITLES[board.metric]} {PERIOD_TITLES[board.period]}"]
    f = board.filters
    scope = [s for s in (f.department, f.group, f.category, f"#{f.tag}" if f.tag else None) if s]
    if scope:
        parts.append("(" + ", ".join(scope) + ")")
    return " ".join(parts)


def _leaderboard_subtitle(board: Leaderboard) -> str:
    f = board.filters
    scope = [
        f"Department: {f.department}" if f.department else "",
        f"Group: {f.group}" if f.group else "",
        f"Category: {f.category}" if f.category else "",
        f"Tag: #{f.tag}" if f.tag else "",
    ]
    since = f"Since {_date(board.since)}" if board.since is not None else "All time"
    return " · ".join([since, *(s for s in scope if s)])


def _metric_value(metric: Metric, value: int) -> str:
    if metric is Metric.POINTS:
        return f"{value} pts"
    if metric is Metric.BADGES:
        return _plural(value, "badge")
    return _plural(value, "kudo")


def leaderboard(
    board: Leaderboard, *, full: str | None = None, give_kudos: str | None = None
) -> Card:
    """A ranked list with medals for the top three; an empty board invites the first kudos."""
    rows = tuple(
        Row(
            lead=MEDALS.get(row.rank, f"#{row.rank}"),
            text=row.display_name,
            value=_metric_value(board.metric, row.value),
            detail=row.department or "",
        )
        for row in board.rows
    )
    actions: list[Action] = []
    if give_kudos:
        actions.append(Action("Give kudos", token=give_kudos, style="positive"))
    if full:
        actions.append(Action("Full leaderboard", token=full))
    title = leaderboard_title(board)
    return Card(
        screen="leaderboard",
        # Title: metric and window; subtitle: the date and labelled filters (a bare "Engineering"
        # could be a department or a group).
        title=f"🏆 Top {METRIC_TITLES[board.metric]} {PERIOD_TITLES[board.period]}",
        summary=title if rows else f"{title}: nobody yet",
        body=(
            Text(_leaderboard_subtitle(board), tone=Tone.SUBTLE),
            ItemList(rows, empty=EMPTY_LEADERBOARD),
        ),
        actions=tuple(actions),
    )


def my_rewards(
    summary: MemberSummary,
    *,
    rank: int | None,
    recent_awards: Sequence[AwardView],
    recent_kudos: Sequence[LedgerLine],
    allowance: str | None = None,
    balance: Balance | None = None,
    hidden: bool = False,
    giving_paused: bool = False,
) -> Card:
    """A member's own totals, rank and recent history (shown privately). "Points" are what they
    earned (ranks count those); with the shop's `balance`, what they spent and can still spend;
    `allowance` is what is left of their kudos allowance ("3 of 5 today, resets in 4 h"; None:
    unlimited); `hidden`: they are off the leaderboards (their choice or a default), so no rank
    is due; `giving_paused`: an admin locked their giving, which they learn here rather than
    from their next refused kudos."""
    spending = (
        (Fact("Spent", str(balance.spent)), Fact("Spendable", str(balance.spendable)))
        if balance is not None
        else ()
    )
    unranked = "Hidden from leaderboards" if hidden else "Not ranked yet"
    facts = Facts(
        (
            Fact("Points", str(summary.balance)),
            *spending,
            Fact("Rank", f"#{rank}" if rank is not None else unranked),
            Fact("Badges", str(summary.badges)),
            Fact("Kudos received", str(summary.kudos_received)),
            Fact("Kudos given", str(summary.kudos_given)),
            *([Fact("Allowance left", allowance)] if allowance else []),
            *(
                [Fact("Giving", "paused by an admin (you can still receive)")]
                if giving_paused
                else []
            ),
        )
    )
    awards = ItemList(
        tuple(
            Row(
                lead="🏅",
                text=a.reward_name,
                value=f"+{a.points}" if a.points else "",
                detail=" · ".join(
                    p
                    for p in (f"from {a.giver_name}" if a.giver_name else "", _date(a.awarded_at))
                    if p
                ),
            )
            for a in recent_awards
        ),
        empty="No badges yet.",
    )
    kudos = ItemList(
        tuple(
            Row(
                lead="🙌",
                text=k.description,
                value=f"{k.points:+d}" if k.points else "",
                detail=_date(k.created_at),
            )
            for k in recent_kudos
        ),
        empty="No kudos yet.",
    )
    return Card(
        screen="my_rewards",
        title=f"⭐ Your rewards, {summary.display_name}",
        summary=f"{summary.display_name}: {_plural(summary.balance, 'point')}",
        body=(
            facts,
            Text("Recent badges", heading=True),
            awards,
            Text("Recent kudos", heading=True),
            kudos,
        ),
    )


def help_card(commands: Sequence[tuple[str, str]]) -> Card:
    """The command list; the caller passes `(usage, description)` pairs from `dialogs.commands`
    because cards sit below dialogs and must not import them."""
    return Card(
        screen="help",
        title="Here is what I can do",
        summary="Commands I understand",
        body=(ItemList(tuple(Row("•", usage, detail=text) for usage, text in commands)),),
    )


def notice(message: str, *, tone: Tone = Tone.ATTENTION, title: str = "Sorry") -> Card:
    """A friendly one-message reply (errors, refusals, "done"); never a stack trace."""
    return Card(
        screen="notice",
        title=title,
        summary=f"{title}: {message}" if title else message,
        body=(Text(message, tone=tone),),
    )
