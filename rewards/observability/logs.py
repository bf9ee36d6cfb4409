"""The process's log lines: `LOG_FORMAT=text` (the default, one readable line) or `json` (one JSON
object per line, for a log collector), at `LOG_LEVEL`.

A JSON line holds `time` (UTC, ISO 8601), `level`, `logger`, `message`, then whichever of
`request_id`, `turn_id`, `platform` and `member_id` are bound (`rewards.observability.context`),
and `exception` when one is logged. Nothing else from the record is copied, so an `extra=` that
carried a chat message could not slip into a line.

Both formats pass the finished line through `Redactor`: the configured secrets (bot tokens,
signing secrets, passwords) and anything shaped like a token (a Telegram token inside a Bot API
URL, which the HTTP client logs at INFO; Slack `xox…-` tokens; this project's `nrw_` API keys;
`Bearer` credentials) are replaced by `***`. The code never logs what members type; the database
engine is built with `hide_parameters` (`rewards.store.db`) so a failed statement's error text
carries no values either.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

from rewards.observability.context import current
from rewards.settings import Settings

OWN_LOGGERS = ("rewards", "bots", "dialogs", "cards")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HIDDEN = "***"
# Configured values shorter than this are not searched for: "guest" (RabbitMQ's default
# password) would otherwise be hidden in every sentence that says it.
MIN_SECRET = 8

_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"bot\d{3,}:[A-Za-z0-9_-]{20,}"), "bot" + HIDDEN),  # Bot API URL path
    (re.compile(r"(?<![\w:])\d{6,}:[A-Za-z0-9_-]{30,}"), HIDDEN),  # a bare Telegram token
    (re.compile(r"xox[a-z]-[A-Za-z0-9-]{8,}"), "xox" + HIDDEN),  # Slack bot/user tokens
    (re.compile(r"xapp-[A-Za-z0-9-]{8,}"), "xapp-" + HIDDEN),  # Slack app-level tokens
    (re.compile(r"nrw_[A-Za-z0-9_-]{16,}"), "nrw_" + HIDDEN),  # REST API keys
    (re.compile(r"(?i)(bearer\s+)[^\s'\",;]+"), r"\1" + HIDDEN),
)
# What every shape above starts with: a line without any of these has no token-shaped text, and
# goes out after one search instead of six substitutions (most lines: the access log's).
_SHAPE_STARTS = re.compile(r"bot\d{3,}:|\d{6,}:|xox[a-z]-|xapp-|nrw_|(?i:bearer\s)")


def configured_secrets(settings: Settings) -> list[str]:
    """The secret values of `settings`, for `Redactor`."""
    values = [
        settings.bot_app_secret,
        settings.smtp_password,
        settings.telegram_bot_token,
        settings.event_manager.password,
        *(
            value
            for name, value in settings.extra.items()
            if any(word in name for word in ("TOKEN", "SECRET", "PASSWORD"))
        ),
    ]
    _, _, tail = settings.database_url.partition("://")
    credentials = tail.split("@", 1)[0] if "@" in tail else ""
    if ":" in credentials:
        values.append(credentials.split(":", 1)[1])
    return values


class Redactor:
    """Replaces secrets in a finished log line."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is hidden whole.
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, HIDDEN)
        if _SHAPE_STARTS.search(text) is None:
            return text
        for pattern, replacement in _SHAPES:
            text = pattern.sub(replacement, text)
        return text


class TextFormatter(logging.Formatter):
    """Today's line, `2026-12-07 09:00:00,123 INFO rewards.server: ...`, with secrets hidden."""

    def __init__(self, redact: Redactor | None = None) -> None:
        super().__init__(TEXT_FORMAT)
        self.redact = redact or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see the module's docstring for its fields)."""

    def __init__(self, redact: Redactor | None = None) -> None:
        super().__init__()
        self.redact = redact or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
        }
        line.update(current())
        if record.exc_info:
            line["exception"] = self.redact(self.formatException(record.exc_info))
        elif record.stack_info:
            line["stack"] = self.redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def formatter(settings: Settings) -> logging.Formatter:
    redact = Redactor(configured_secrets(settings))
    return JsonFormatter(redact) if settings.log_format == "json" else TextFormatter(redact)


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Send every logger's lines to `stream` (standard error) in the settings' format, replacing
    whatever handlers the root logger had.

    `LOG_LEVEL` is the level of this project's loggers (`OWN_LOGGERS`); libraries log at INFO at
    most, whatever it says: several of them write whole requests at DEBUG (aiosqlite every
    statement with its values, the Slack SDK every request body), which is what members typed.
    """
    level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    # No format here shows the thread, the process or its name: a record need not look them up
    # (every request's access-log line makes one).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(settings))
    logging.basicConfig(handlers=[handler], level=max(level, logging.INFO), force=True)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
