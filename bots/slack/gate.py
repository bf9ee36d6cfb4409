"""The input gate (`rewards.inputs`) for `POST /slack/events`, applied before slack-bolt sees the
request.

Bolt parses the body when it builds its request, before it checks the signature, and turns the
timestamp header into an int while checking it: a body nested 3,000 deep (RecursionError) or a
timestamp such as "soon" (ValueError) was a 500 before any authentication. Here, in order:

1. the timestamp must be a plain number and the signature visible ASCII, and the body at most
   `WEBHOOK_JSON.max_bytes` of UTF-8, else 401 like any bad signature (413 for a longer body);
2. the signature must verify (the same check bolt makes again), else 401;
3. the JSON bolt will read (the body itself, or the `payload` field of a form) must be an object
   within the depth limit, shaped as bolt and the listeners read it (`bots.slack.shape`), else
   400/422: only Slack itself can get this far.

Nothing is written for a refused request.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote_plus

from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from bots.gate import read_limited, refusal
from bots.slack.shape import payload_problem
from rewards.inputs import WEBHOOK_JSON, InputRefused, is_token, parse_json, slack_timestamp

log = logging.getLogger("bots.slack")

WHAT = "The request body"


def _unauthorized() -> web.Response:
    return web.json_response({"error": "invalid request"}, status=401)  # as bolt answers


def form_fields(text: str) -> dict[str, str]:
    """A form body's fields, as `dict(parse_qsl(text, keep_blank_values=True))` reads them (the
    last of a repeated name wins), with only the names and values that hold `%` or `+` unquoted:
    in a slash command's form most hold neither, and it is read on every command."""
    fields: dict[str, str] = {}
    for pair in text.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            fields[_unquoted(name)] = _unquoted(value)
    return fields


def _unquoted(text: str) -> str:
    return unquote_plus(text) if "%" in text or "+" in text else text


def _document(text: str, content_type: str) -> str | None:
    """The JSON text bolt would parse (its `parse_body`), or None for a plain form."""
    if content_type == "application/json" or text.startswith("{"):
        return text
    if "payload" in text:
        return form_fields(text).get("payload")
    return None


async def checked_body(request: web.Request, verifier: SignatureVerifier) -> str | web.Response:
    """The body as text when the request may go on to bolt, else the answer to send."""
    timestamp = request.headers.get("X-Slack-Request-Timestamp")
    signature = request.headers.get("X-Slack-Signature", "")
    if slack_timestamp(timestamp) is None or not is_token(signature):
        log.info("slack: refused a request with a malformed timestamp or signature header")
        return _unauthorized()
    try:
        raw = await read_limited(request, WEBHOOK_JSON, WHAT)
    except InputRefused as refused:
        return refusal(request, refused, "slack")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _unauthorized()  # Slack signs UTF-8 text; this did not come from Slack
    if not verifier.is_valid(text, timestamp, signature):
        return _unauthorized()
    document = _document(text, request.content_type)
    if document is not None:
        try:
            data = parse_json(document, WEBHOOK_JSON, what=WHAT)
        except InputRefused as refused:
            return refusal(request, refused, "slack")
        if not isinstance(data, dict):
            log.warning("slack: refused a signed body that is not a JSON object")
            return web.Response(status=400, text="The request body is not a JSON object.")
        if (problem := payload_problem(data)) is not None:
            log.warning("slack: refused a signed payload: %s", problem)
            return web.Response(status=400, text="The request body is not a Slack payload.")
    return text
