"""Short-lived signed download links (Teams gets a file as a link to the bot, not an upload).

A token is `payload.signature`, both base64url: the payload is JSON with the recipe
(`rewards.exports.files`), who the link is for and when it expires; the signature is an HMAC-SHA256
of the payload under the server secret (`REWARDS_LINK_SECRET`) and a purpose string, so a token
is good for this one purpose (downloading that file) until it expires, and any change to it
breaks the signature. Nothing is stored: any replica with the same secret serves the link.
Without `REWARDS_LINK_SECRET` each process makes up its own secret at start, so links work only
on the replica that made them (set the secret when running several).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rewards.errors import NotAllowed

PURPOSE = b"nav-rewards file download v1\x00"
LIFETIME = timedelta(minutes=15)
_PROCESS_SECRET = secrets.token_bytes(32)


@dataclass(frozen=True)
class Link:
    recipe: dict[str, Any]
    member_id: int
    expires: datetime


def _key(secret: str) -> bytes:
    return secret.encode() if secret else _PROCESS_SECRET


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: bytes) -> bytes:
    return hmac.new(_key(secret), PURPOSE + payload, hashlib.sha256).digest()


def sign(secret: str, recipe: dict[str, Any], member_id: int, now: datetime) -> str:
    body = {"r": recipe, "m": member_id, "e": int((now + LIFETIME).timestamp())}
    payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def verify(secret: str, token: str, now: datetime) -> Link:
    """The link a token stands for; `NotAllowed` with a sentence when it is forged, altered or
    expired (the three read the same to the person: ask for a new one)."""
    refused = NotAllowed("This download link is not valid or has expired; ask the bot again.")
    head, dot, tail = token.partition(".")
    if not dot or len(token) > 4096:
        raise refused
    try:
        payload, mac = _unb64(head), _unb64(tail)
    except ValueError:
        raise refused from None
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        raise refused
    body = json.loads(payload)
    expires = datetime.fromtimestamp(int(body["e"]), tz=now.tzinfo)
    if now >= expires:
        raise refused
    return Link(dict(body["r"]), int(body["m"]), expires)
