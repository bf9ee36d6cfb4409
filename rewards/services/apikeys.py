"""REST API keys and idempotent writes.

A key is `nrw_` + 32 random bytes (URL-safe base64), shown once when created; only its SHA-256
is stored. Looking a presented key up by its hash compares it in constant time (the database
index never sees the key, and no prefix of it is compared character by character).

Scopes are ordered: `read` < `write` < `admin`; a key may do what its scope and the ones below it
allow.

Audit: every write request a key makes (any method but GET/HEAD/OPTIONS, refused or not) is one
`api_audit` row (`record_write`); `key_usage` sums them per key for `rewards apikey list`. Awards,
kudos and revocations made through the API also carry the key's id on their own rows.

Idempotency: the first write sent with an `Idempotency-Key` reserves (API key, key) through a
unique constraint, with a fingerprint of the request (method, route, canonical body), then records
its response; a retry finds the record and gets that response again, so nothing is created twice,
even when two retries race. The same key with another body is refused (422): replaying the first
answer would tell the client its second request was done when it was not.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from rewards.clock import Clock, SystemClock, as_utc
from rewards.errors import InvalidInput, NotAvailable, NotFound
from rewards.store.db import Database
from rewards.store.models import ApiAudit, ApiIdempotency, ApiKey

SCOPES = ("read", "write", "admin")
KEY_PREFIX = "nrw_"
MAX_NAME = 100
MAX_IDEMPOTENCY_KEY = 200
USE_RECORDED_EVERY = timedelta(minutes=1)
USAGE_WINDOW = timedelta(days=30)
MAX_AUDIT_PATH = 300


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def scope_allows(held: str, needed: str) -> bool:
    """Whether a key with scope `held` may do what needs `needed`."""
    return held in SCOPES and SCOPES.index(held) >= SCOPES.index(needed)


@dataclass(frozen=True)
class ApiKeyView:
    id: int
    name: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _view(row: ApiKey) -> ApiKeyView:
    assert row.id is not None
    return ApiKeyView(
        id=row.id,
        name=row.name,
        scope=row.scope,
        created_at=as_utc(row.created_at),
        last_used_at=as_utc(row.last_used_at) if row.last_used_at else None,
        revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,
    )


async def create_key(
    db: Database, name: str, scope: str, clock: Clock | None = None
) -> tuple[ApiKeyView, str]:
    """A new key named `name`; returns its view and the key itself (the only time it is known)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(f"A key needs a name of 1 to {MAX_NAME} characters.")
    if scope not in SCOPES:
        raise InvalidInput(f"The scope must be one of {', '.join(SCOPES)}, not {scope!r}.")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=name, key_hash=hash_key(key), scope=scope, created_at=(clock or SystemClock()).now()
    )
    try:
        async with db.write() as session:
            session.add(row)
            await session.flush()
            view = _view(row)
    except IntegrityError:
        raise NotAvailable(f"There is already a key named {name}.") from None
    return view, key


async def list_keys(db: Database) -> list[ApiKeyView]:
    async with db.read() as session:
        rows = (await session.scalars(select(ApiKey).order_by(col(ApiKey.id)))).all()
        return [_view(row) for row in rows]


async def revoke_key(db: Database, ref: str, clock: Clock | None = None) -> ApiKeyView:
    """Revoke the key named `ref` (or with id `ref`). Revoking a revoked key changes nothing and
    raises `NotAvailable` saying when it was revoked, so a script sees it did not revoke anything
    (the CLI exits 1)."""
    text = ref.strip()
    condition = col(ApiKey.name) == text
    if text.isdigit():
        condition = or_(condition, col(ApiKey.id) == int(text))
    async with db.write() as session:
        rows = (await session.scalars(select(ApiKey).where(condition))).all()
        row = next((r for r in rows if r.name == text), rows[0] if rows else None)
        if row is None:
            raise NotFound(f"There is no API key named {text}.")
        if row.revoked_at is not None:
            raise NotAvailable(
                f"API key #{row.id} {row.name} was already revoked on "
                f"{row.revoked_at:%Y-%m-%d %H:%M} UTC; nothing changed."
            )
        row.revoked_at = (clock or SystemClock()).now()
        await session.flush()
        return _view(row)


async def authenticate(db: Database, key: str, clock: Clock | None = None) -> ApiKeyView | None:
    """The live key matching `key`, or None for unknown or revoked. Its use is recorded at most
    once a minute, so reads do not all take the write lock."""
    async with db.read() as session:
        row = await session.scalar(select(ApiKey).where(col(ApiKey.key_hash) == hash_key(key)))
        if row is None or row.revoked_at is not None:
            return None
        view = _view(row)
    now = (clock or SystemClock()).now()
    if view.last_used_at is None or now - view.last_used_at >= USE_RECORDED_EVERY:
        async with db.write() as session:
            await session.execute(
                update(ApiKey).where(col(ApiKey.id) == view.id).values(last_used_at=now)
            )
    return view


@dataclass(frozen=True)
class KeyUsage:
    """A key's writes: how many in the window `key_usage` was asked for, and the latest ever."""

    writes: int
    last_write_at: datetime | None


async def record_write(
    db: Database, api_key_id: int, method: str, path: str, status: int, clock: Clock | None = None
) -> None:
    """One `api_audit` row: key `api_key_id` asked `method path` and was answered `status`."""
    async with db.write() as session:
        session.add(
            ApiAudit(
                api_key_id=api_key_id,
                method=method[:10],
                path=path[:MAX_AUDIT_PATH],
                status=status,
                created_at=(clock or SystemClock()).now(),
            )
        )


async def key_usage(
    db: Database, clock: Clock | None = None, window: timedelta = USAGE_WINDOW
) -> dict[int, KeyUsage]:
    """{key id: usage} for every key that ever wrote: its writes in the last `window` and the
    time of its latest write. Keys that never wrote are absent."""
    since = (clock or SystemClock()).now() - window
    recent = func.sum(case((col(ApiAudit.created_at) >= since, 1), else_=0))
    query = select(col(ApiAudit.api_key_id), recent, func.max(col(ApiAudit.created_at))).group_by(
        col(ApiAudit.api_key_id)
    )
    async with db.read() as session:
        rows = (await session.execute(query)).all()
    return {
        int(key_id): KeyUsage(int(writes or 0), as_utc(last) if last is not None else None)
        for key_id, writes, last in rows
    }


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any] | None


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency-key-reused"


async def reserve(
    db: Database,
    api_key_id: int,
    key: str,
    route: str,
    clock: Clock | None = None,
    *,
    fingerprint: str | None = None,
) -> StoredResponse | None:
    """Claim `key` for this request: None when claimed (go ahead), or the stored first response.

    `fingerprint` identifies the request (`request_fingerprint`). Raises IdempotencyKeyReused
    (422) when the key was used for another route or another body, NotAvailable while the first
    request with this key is still running."""
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidInput(f"An Idempotency-Key has 1 to {MAX_IDEMPOTENCY_KEY} characters.")
    now = (clock or SystemClock()).now()
    try:
        async with db.write() as session:
            session.add(
                ApiIdempotency(
                    api_key_id=api_key_id,
                    key=key,
                    route=route,
                    fingerprint=fingerprint,
                    created_at=now,
                )
            )
        return None
    except IntegrityError:
        pass
    async with db.read() as session:
        found = await session.scalar(
            select(ApiIdempotency).where(
                col(ApiIdempotency.api_key_id) == api_key_id, col(ApiIdempotency.key) == key
            )
        )
    if found is None:  # released in between: the first attempt failed; this one may go ahead
        return await reserve(db, api_key_id, key, route, clock, fingerprint=fingerprint)
    if found.route != route:
        raise IdempotencyKeyReused("This Idempotency-Key was already used for a different request.")
    if None not in (found.fingerprint, fingerprint) and found.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used for a request with a different body; "
            "use a new key for a new request."
        )
    if found.status == 0:
        raise NotAvailable("A request with this Idempotency-Key is still in progress.")
    return StoredResponse(found.status, found.body)


def request_fingerprint(method: str, route: str, body: object) -> str:
    """SHA-256 (hex) of the method, the route and the body as canonical JSON (keys sorted, no
    spaces), so the same request written with other spacing or key order has the same one."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {route}\n{canonical}".encode()).hexdigest()


def _where(api_key_id: int, key: str) -> Any:
    return (col(ApiIdempotency.api_key_id) == api_key_id, col(ApiIdempotency.key) == key)


async def complete(
    db: Database, api_key_id: int, key: str, status: int, body: dict[str, Any] | None
) -> None:
    """Record the response to the request that reserved `key`."""
    async with db.write() as session:
        await session.execute(
            update(ApiIdempotency).where(*_where(api_key_id, key)).values(status=status, body=body)
        )


async def release(db: Database, api_key_id: int, key: str) -> None:
    """Forget a reservation whose request failed unexpectedly, so a retry runs again."""
    async with db.write() as session:
        await session.execute(delete(ApiIdempotency).where(*_where(api_key_id, key)))
