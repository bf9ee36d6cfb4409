"""The Teams side of the organisation's boundary, checked on every activity before any handler.

- Tenant: every tenant an activity names (`channelData.tenant.id`, `conversation.tenantId`) must
  be one of `REWARDS_TENANT_ID` (`rewards.membership.Boundary.teams_allows`). Two different
  tenants in one activity are refused: Teams never sends that, so it can only be forged.
- `serviceUrl` without an app id (Bot Framework Emulator mode): the bot answers, and later posts
  proactively, to the activity's `serviceUrl`. Unauthenticated, anyone able to reach the endpoint
  could point it anywhere, so it must be a loopback URL; otherwise the activity is dropped.

A refused activity is answered without writing anything: a message with a polite reply, an invoke
with an invoke response carrying the same sentence; anything else is ignored.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from bots.teams.backends import TeamsContext
from rewards.membership import OUTSIDE_REFUSAL, Boundary

MESSAGE = "application/vnd.microsoft.activity.message"
_UNSAFE_URL = re.compile(r"[\s\\@]|[\x00-\x1f\x7f]")


def is_loopback_url(url: str | None) -> bool:
    """True for http(s) URLs on 127.0.0.0/8, [::1] or `localhost`, any port.

    Strict on purpose: anything an HTTP client might read differently from `urlsplit` (user info,
    backslashes, whitespace, control characters, exotic IP spellings such as `2130706433`) is
    refused rather than interpreted.
    """
    if not url or _UNSAFE_URL.search(url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname.rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def named_tenants(activity: Any) -> tuple[str, ...]:
    """Every tenant id the activity names, distinct, lower-cased (order: channelData first)."""
    found: list[str] = []
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = data.get("tenant")
    if isinstance(tenant, dict) and tenant.get("id"):
        found.append(str(tenant["id"]))
    found.append(conversation_tenant(activity))
    return tuple(dict.fromkeys(t.strip().lower() for t in found if t.strip()))


def conversation_tenant(activity: Any) -> str:
    """`conversation.tenantId`: botbuilder's model maps `tenantID`, so Teams' own spelling lands in
    the conversation's additional properties (the Agents SDK maps it to `tenant_id`)."""
    conversation = activity.conversation
    if conversation is None:
        return ""
    extra = getattr(conversation, "additional_properties", None) or {}
    value = getattr(conversation, "tenant_id", None) or extra.get("tenantId") or ""
    return str(value)


def outside_reason(activity: Any, boundary: Boundary) -> str | None:
    """Why the activity is outside the boundary (for the log), or None when it is inside."""
    if boundary.emulator and not is_loopback_url(activity.service_url):
        return f"no app id and serviceUrl {activity.service_url!r} is not a loopback URL"
    tenants = named_tenants(activity)
    if len(tenants) > 1:
        return f"it names two tenants {', '.join(tenants)}"
    tenant = tenants[0] if tenants else ""
    if not boundary.teams_allows(tenant):
        return f"tenant {tenant or '(none)'!r} is not one of REWARDS_TENANT_ID"
    return None


def answers_back(activity: Any, boundary: Boundary) -> bool:
    """Whether a refusal may be sent to the activity's `serviceUrl` at all.

    Without an app id a non-loopback `serviceUrl` is never contacted: it is how an
    unauthenticated caller would make the bot talk to a host of their choosing.
    """
    return not boundary.emulator or is_loopback_url(activity.service_url)


def refusal_invoke_body(name: str | None, sentence: str) -> tuple[int, dict[str, Any]]:
    """(status, body) answering an invoke with a sentence, in the shape its kind expects."""
    if name == "adaptiveCard/action":
        return 200, {"statusCode": 200, "type": MESSAGE, "value": sentence}
    if name in ("task/fetch", "task/submit"):
        return 200, {"task": {"type": "message", "value": sentence}}
    if name and name.startswith("composeExtension/"):
        return 200, {"composeExtension": {"type": "message", "text": sentence}}
    return 403, {"error": {"code": "outside", "message": sentence}}


async def refuse(context: TeamsContext, sentence: str = OUTSIDE_REFUSAL) -> None:
    """Answer a refused activity: a reply to a message, a response to an invoke, else nothing."""
    activity = context.activity
    if activity.type == "message":
        await context.send(sentence)
    elif activity.type == "invoke":
        await context.invoke_response(*refusal_invoke_body(activity.name, sentence))
