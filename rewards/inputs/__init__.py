"""The input gate: the checks every entry point applies to what it is sent, before any of it
reaches a dialog, a service or the database.

One place for the limits, so the REST API, the chat webhooks (Slack, Teams, Telegram), the
catalogue and member files of the command line, the console chat and the event manager refuse
the same things the same way (the README's "Limits" table lists them):

- `rewards.inputs.documents`: JSON of bounded size and nesting depth (a body nested 3,000 deep
  used to end in a RecursionError and a 500), without NaN/Infinity, which PostgreSQL refuses;
- `rewards.inputs.text`: text without C0 control characters (NUL above all: PostgreSQL refuses it
  in text and JSONB, SQLite stores it) and without lone surrogates (not encodable as UTF-8);
  refused with the field's name in documents, stripped from chat lines;
- `rewards.inputs.headers`: header values that must be plain ASCII tokens (Idempotency-Key, API
  keys, Slack's request timestamp).

Everything here is pure (no aiohttp, no database); `bots.gate` applies it to web requests.
"""

from __future__ import annotations

from rewards.inputs.documents import (
    API_JSON,
    FILE_JSON,
    WEBHOOK_JSON,
    JsonLimits,
    JsonMalformed,
    JsonTooDeep,
    JsonTooLarge,
    check_json_limits,
    nesting_depth,
    parse_json,
)
from rewards.inputs.errors import InputRefused
from rewards.inputs.headers import (
    HeaderInvalid,
    idempotency_key,
    is_token,
    slack_timestamp,
)
from rewards.inputs.text import (
    MAX_CHAT_TEXT,
    TextRefused,
    check_document_text,
    check_text,
    clean_chat_text,
    clean_strings,
    text_problem,
)

__all__ = [
    "API_JSON",
    "FILE_JSON",
    "MAX_CHAT_TEXT",
    "WEBHOOK_JSON",
    "HeaderInvalid",
    "InputRefused",
    "JsonLimits",
    "JsonMalformed",
    "JsonTooDeep",
    "JsonTooLarge",
    "TextRefused",
    "check_document_text",
    "check_json_limits",
    "check_text",
    "clean_chat_text",
    "clean_strings",
    "idempotency_key",
    "is_token",
    "nesting_depth",
    "parse_json",
    "slack_timestamp",
    "text_problem",
]
