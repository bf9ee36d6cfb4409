"""Kept for existing imports: plain-text rendering now lives in `cards.render.text`."""

from __future__ import annotations

from cards.render.text import MEDALS, leaderboard_text, leaderboard_title
from cards.screens import METRIC_TITLES, PERIOD_TITLES

__all__ = ["MEDALS", "METRIC_TITLES", "PERIOD_TITLES", "leaderboard_text", "leaderboard_title"]
