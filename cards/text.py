"""Plain-text rendering, for the console chat and the command line."""

from __future__ import annotations

from rewards.services.leaderboards import Leaderboard, Metric, Period

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


def leaderboard_title(board: Leaderboard) -> str:
    parts = [f"Top {METRIC_TITLES[board.metric]} {PERIOD_TITLES[board.period]}"]
    f = board.filters
    scope = [s for s in (f.department, f.group, f.category, f"#{f.tag}" if f.tag else None) if s]
    if scope:
        parts.append("(" + ", ".join(scope) + ")")
    return " ".join(parts)


def leaderboard_text(board: Leaderboard) -> str:
    """A leaderboard as aligned text lines; an empty board says so instead of printing nothing."""
    lines = [leaderboard_title(board)]
    if not board.rows:
        lines.append("Nobody yet. Send some kudos to get things started!")
        return "\n".join(lines)
    width = max(len(r.display_name) for r in board.rows)
    unit = "pts" if board.metric is Metric.POINTS else ""
    for row in board.rows:
        badge = MEDALS.get(row.rank, f"{row.rank:>2}.")
        lines.append(f"{badge} {row.display_name:<{width}}  {row.value:>6} {unit}".rstrip())
    return "\n".join(lines)
