"""The identity service: one person, one member, however many chat accounts they use.

A member is created the first time a platform shows us a person (`ensure_member_for_account`) and
enriched later by the HR import (`rewards.services.members_import`). Both paths meet on the email
address: a Teams user and a Slack user with the same email are one member with one points ledger.

Conventions, so every caller can rely on them:

- Emails are stripped and lower-cased before they are stored or compared; the database's unique
  constraint on `member.email` then means "one email, one member".
- Telegram never tells a bot a user's email. Such a member gets a placeholder address under the
  reserved `.invalid` top-level domain (`telegram-12345@telegram.invalid`); the column is NOT NULL
  and unique, and a deterministic placeholder lets the unique constraint absorb concurrent first
  sightings. The placeholder is replaced by the real address as soon as one is learnt (from a
  platform profile or the HR import), keeping the member id and everything attached to it.
- A platform account with an empty tenant is one whose workspace we do not know (the HR import
  only has user ids). It matches that user id in any tenant, and the first sighting from a real
  tenant claims it by filling the tenant in.
- An account whose user id is `@name` is pending: the import knew only a username (Telegram users
  are listed by @username). The first sighting of that username claims it and stores the real id.
- Concurrency is left to the unique constraints: writers insert, and on an IntegrityError roll
  back to a savepoint and look again once, instead of checking first and racing.
- Public functions take a `Database` and run one transaction; the `_..._in(session, ...)` forms
  join a caller's transaction so several services can compose into one unit of work. Both return
  frozen views, never ORM objects.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import available_timezones

from sqlalchemy import (
    DateTime,
    Row,
    String,
    bindparam,
    cast,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from rewards.clock import Clock, SystemClock, as_utc
from rewards.errors import InvalidInput, UnknownMember
from rewards.store.db import MEMBERS, PEOPLE, Database, Fixed, Unit, among, run_fixed, turn_cache
from rewards.store.models import Member, MemberGroup, MembershipVersion, PlatformAccount

__all__ = [
    "ACCOUNT",
    "MEMBER",
    "MEMBER_COLUMNS",
    "MEMBER_GROUP",
    "PLACEHOLDER_DOMAIN_SUFFIX",
    "AccountView",
    "MemberView",
    "ensure_member_for_account",
    "find_by_account",
    "find_by_email",
    "find_by_username",
    "get_member",
    "is_placeholder_email",
    "is_valid_email",
    "is_valid_timezone",
    "link_account",
    "list_members",
    "normalise_email",
    "normalise_platform",
    "normalise_username",
    "pending_user_id",
    "placeholder_email",
    "resolve",
    "set_preferences",
    "turn_account_holder",
]

# Core tables (typed `Table`), so statements stay Core and rows stay plain tuples: views are built
# from rows, and bulk statements need no ORM identity map.
MEMBER = SQLModel.metadata.tables[Member.__tablename__]
MEMBER_GROUP = SQLModel.metadata.tables[MemberGroup.__tablename__]
ACCOUNT = SQLModel.metadata.tables[PlatformAccount.__tablename__]
VERSION = SQLModel.metadata.tables[MembershipVersion.__tablename__]

PLACEHOLDER_DOMAIN_SUFFIX = ".invalid"
MAX_EMAIL = 320
MAX_DISPLAY_NAME = 200
MAX_USER_ID = 200
MAX_USERNAME = 200
MAX_TENANT = 100
MAX_LIST_LIMIT = 1000

# Deliberately simple: one @, no spaces, a dot in the domain. Real validation is a mail round-trip.
_EMAIL = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+\.[^@\s<>(),;:\"\[\].]+$")
_PLATFORM = re.compile(r"^[a-z][a-z0-9_-]{0,19}$")
_PLAIN_ID = re.compile(r"^[a-z0-9_.-]{1,64}$")


class AccountView(NamedTuple):
    """One chat account of a member: (platform, tenant, user_id, username)."""

    platform: str
    tenant: str
    user_id: str
    username: str | None


@dataclass(frozen=True)
class MemberView:
    """A member as every layer above the store sees them.

    `birth_year` is kept for rules that need an age, but it is left out of `repr()` and `str()`:
    views end up in logs and chat messages, and the design promises the year is never shown.
    """

    id: int
    email: str
    display_name: str
    job_code: str | None = None
    department: str | None = None
    groups: tuple[str, ...] = ()
    manager_id: int | None = None
    birthday: tuple[int, int] | None = None
    birth_year: int | None = field(default=None, repr=False)
    hire_date: date | None = None
    timezone: str | None = None
    locale: str | None = None
    active: bool = True
    leaderboard_opt_out: bool = False
    celebrations_opt_out: bool = False
    accounts: tuple[AccountView, ...] = ()
    # When an admin locked the member's giving (`rewards.admin.locks`); None: not locked.
    giving_locked_at: datetime | None = None

    @property
    def has_real_email(self) -> bool:
        """False while the member only has a placeholder address (e.g. first seen on Telegram)."""
        return not is_placeholder_email(self.email)

    def account(self, platform: str) -> AccountView | None:
        """The member's first account on `platform`, if any."""
        return next((a for a in self.accounts if a.platform == platform), None)

    def __str__(self) -> str:
        return f"{self.display_name} <{self.email}>"


# --- normalisation and validation (shared with the importer) --------------------------------


def normalise_email(raw: str) -> str:
    """Strip and lower-case an email address; the one form used for storing and matching."""
    return raw.strip().lower()


def is_valid_email(email: str) -> bool:
    """A sane-looking, already normalised address that fits the column."""
    return len(email) <= MAX_EMAIL and _EMAIL.match(email) is not None


def is_placeholder_email(email: str) -> bool:
    """True for the stand-in addresses given to members whose platform shares no email."""
    return email.endswith(PLACEHOLDER_DOMAIN_SUFFIX)


@lru_cache(maxsize=64)
def normalise_platform(raw: str) -> str:
    """`Teams ` -> `teams`; raises InvalidInput for anything that is not a short name.

    Remembered: every look-up of a turn normalises the same few names (a refusal is not)."""
    platform = raw.strip().lower()
    if not _PLATFORM.match(platform):
        raise InvalidInput(f"{raw!r} is not a platform name I know how to store.")
    return platform


def normalise_username(raw: str | None) -> str | None:
    """`@Ana_L` -> `ana_l`. Chat handles are case-insensitive, so they are stored lower-cased and
    matched by plain equality, which the (platform, username) index can serve."""
    if raw is None:
        return None
    name = raw.strip().lstrip("@").strip().lower()
    return name[:MAX_USERNAME] or None


def pending_user_id(username: str) -> str:
    """The user id of an account known only by its username (see the module docstring)."""
    return "@" + username


def is_valid_timezone(name: str) -> bool:
    """An IANA zone name from the tz database (`Europe/Madrid`), not merely a loadable file."""
    return name in _zones()


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def placeholder_email(platform: str, user_id: str, tenant: str = "") -> str:
    """A deterministic stand-in address for a member whose platform gave no email.

    Deterministic, so two replicas seeing the same new Telegram user at once collide on the email
    unique constraint and one of them retries, instead of creating two members.
    """
    if not tenant and _PLAIN_ID.match(user_id.lower()) and user_id == user_id.lower():
        local = user_id
    else:
        local = hashlib.sha256(f"{tenant}\x00{user_id}".encode()).hexdigest()[:24]
    return f"{platform}-{local}@{platform}{PLACEHOLDER_DOMAIN_SUFFIX}"


def _default_display_name(email: str | None, username: str | None, platform: str) -> str:
    if username:
        return username
    if email and not is_placeholder_email(email):
        return email.split("@", 1)[0].replace(".", " ").replace("_", " ").title()
    return f"{platform.title()} user"


# --- views ----------------------------------------------------------------------------------

# Every column a view needs, in one place, so bulk readers (the importer) select the same shape.
MEMBER_COLUMNS = (
    MEMBER.c.id,
    MEMBER.c.email,
    MEMBER.c.display_name,
    MEMBER.c.job_code,
    MEMBER.c.department,
    MEMBER.c.manager_id,
    MEMBER.c.birthday_month,
    MEMBER.c.birthday_day,
    MEMBER.c.birth_year,
    MEMBER.c.hire_date,
    MEMBER.c.timezone,
    MEMBER.c.locale,
    MEMBER.c.active,
    MEMBER.c.leaderboard_opt_out,
    MEMBER.c.celebrations_opt_out,
    MEMBER.c.giving_locked_at,
)


async def _views_in(
    session: AsyncSession, rows: Sequence[Row[*tuple[Any, ...]]]
) -> list[MemberView]:
    """Views for member rows, loading their groups and accounts with one IN query each."""
    if not rows:
        return []
    ids = [row.id for row in rows]
    groups: dict[int, list[str]] = {}
    accounts: dict[int, list[AccountView]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        group_rows = await session.execute(
            select(MEMBER_GROUP.c.member_id, MEMBER_GROUP.c.name)
            .where(MEMBER_GROUP.c.member_id.in_(chunk))
            .order_by(MEMBER_GROUP.c.member_id, MEMBER_GROUP.c.name)
        )
        for member_id, name in group_rows:
            groups.setdefault(member_id, []).append(name)
        account_rows = await session.execute(
            select(
                ACCOUNT.c.member_id,
                ACCOUNT.c.platform,
                ACCOUNT.c.tenant,
                ACCOUNT.c.user_id,
                ACCOUNT.c.username,
            )
            .where(ACCOUNT.c.member_id.in_(chunk))
            .order_by(ACCOUNT.c.member_id, ACCOUNT.c.platform, ACCOUNT.c.id)
        )
        for member_id, platform, tenant, user_id, username in account_rows:
            accounts.setdefault(member_id, []).append(
                AccountView(platform, tenant, user_id, username)
            )
    return [_view(row, groups.get(row.id, ()), accounts.get(row.id, ())) for row in rows]


def _view(row: Sequence[Any], groups: Sequence[str], accounts: Sequence[AccountView]) -> MemberView:
    """A view of the `MEMBER_COLUMNS` of `row`, by position: a SQLAlchemy row or a driver's
    (`remember_accounts`), whose lock time skipped the column type's conversion to UTC."""
    (
        ident,
        email,
        display_name,
        job_code,
        department,
        manager_id,
        birthday_month,
        birthday_day,
        birth_year,
        hire_date,
        timezone,
        locale,
        active,
        leaderboard_opt_out,
        celebrations_opt_out,
        giving_locked_at,
    ) = row
    return MemberView(
        id=ident,
        email=email,
        display_name=display_name,
        job_code=job_code,
        department=department,
        groups=tuple(groups),
        manager_id=manager_id,
        birthday=(
            (birthday_month, birthday_day)
            if birthday_month is not None and birthday_day is not None
            else None
        ),
        birth_year=birth_year,
        hire_date=hire_date,
        timezone=timezone,
        locale=locale,
        active=active,
        leaderboard_opt_out=leaderboard_opt_out,
        celebrations_opt_out=celebrations_opt_out,
        accounts=tuple(accounts),
        giving_locked_at=None if giving_locked_at is None else as_utc(giving_locked_at),
    )


# Separators of the aggregated groups and accounts in `remember_accounts` (never in the data).
_FIELD, _ITEM = "\x1f", "\x1e"


def _constant(value: str, postgresql: bool) -> Any:
    """A string constant of `remember_accounts`' query. On PostgreSQL it is written into the
    statement's text (an escaped string, every character as its code): a bound constant is one
    more value to pass on every execution."""
    if postgresql:
        return literal_column("E'" + "".join(f"\\x{ord(c):02x}" for c in value) + "'", String)
    return literal(value)


def _aggregate(value: Any, separator: str, postgresql: bool) -> Any:
    """The strings of `value` joined by `separator`. On PostgreSQL the separator is a constant
    of the text (`_constant`): `aggregate_strings` renders it there anew on every execution,
    which keeps the statement off the driver's direct path (`Fixed`)."""
    if postgresql:
        return func.string_agg(value, _constant(separator, postgresql), type_=String)
    return func.aggregate_strings(value, separator)


def _held_columns(postgresql: bool) -> tuple[Any, ...]:
    """`MEMBER_COLUMNS` as `remember_accounts` selects them. On PostgreSQL the lock time is read
    as the driver gives it (an aware datetime; `_view` converts it to UTC): the column's own
    type would convert it per row, which keeps the statement off the driver's direct path."""
    if not postgresql:
        return MEMBER_COLUMNS
    locked = MEMBER.c.giving_locked_at
    plain = type_coerce(locked, DateTime(timezone=True)).label(locked.name)
    return tuple(plain if column is locked else column for column in MEMBER_COLUMNS)


def _held_by(with_tenant: bool, postgresql: bool, users: int = 0) -> Fixed:
    """`remember_accounts`' query: the members holding accounts, each with its groups and
    accounts aggregated. Built once per shape (with a tenant or not): building it, and its cache
    key, on every turn cost more than running it. Every turn runs it, so it is a fixed statement
    (`run_fixed`).

    `users` (PostgreSQL): that many user ids as values of their own (``a_user_0`` ...) and the
    two tenants likewise, instead of arrays. PostgreSQL plans a prepared statement for an array
    of the actual length but prices its generic plan for ten elements, so with arrays it planned
    this look-up anew on every turn (0.44 ms of its CPU, three times the execution); with single
    values the generic plan costs what the custom ones do and is kept after the fifth run."""
    held = ACCOUNT.alias("held")
    groups = (
        select(_aggregate(MEMBER_GROUP.c.name, _ITEM, postgresql))
        .where(MEMBER_GROUP.c.member_id == MEMBER.c.id)
        .correlate(MEMBER)
        .scalar_subquery()
    )
    field = _constant(_FIELD, postgresql)
    entry = (
        cast(ACCOUNT.c.id, String)
        + field
        + ACCOUNT.c.platform
        + field
        + ACCOUNT.c.tenant
        + field
        + ACCOUNT.c.user_id
        + field
        + func.coalesce(_constant("=", postgresql) + ACCOUNT.c.username, _constant("", postgresql))
    )
    accounts = (
        select(_aggregate(entry, _ITEM, postgresql))
        .where(ACCOUNT.c.member_id == MEMBER.c.id)
        .correlate(MEMBER)
        .scalar_subquery()
    )
    kept_under: tuple[Any, ...] = ()
    if postgresql:  # read with the rows, so they can be kept under it (`_kept_people`)
        kept_under = (
            select(VERSION.c.version).where(VERSION.c.id == 1).scalar_subquery().label("version"),
        )
    query = (
        select(
            held.c.user_id,
            held.c.tenant,
            *_held_columns(postgresql),
            groups,
            accounts,
            *kept_under,
        )
        .join_from(held, MEMBER, MEMBER.c.id == held.c.member_id)
        .where(held.c.platform == bindparam("a_platform"))
        .order_by(held.c.id)
    )
    if users:
        query = query.where(held.c.user_id.in_([bindparam(f"a_user_{i}") for i in range(users)]))
    else:
        query = query.where(among(held.c.user_id, "a_users", String, postgresql=postgresql))
    if with_tenant and users:
        query = query.where(held.c.tenant.in_([bindparam("a_tenant"), bindparam("a_untenanted")]))
    elif with_tenant:
        query = query.where(among(held.c.tenant, "a_tenants", String, postgresql=postgresql))
    return Fixed(query, writes=False, returns_rows=True)


# Up to this many user ids (the sender and the people a command names, usually one to three)
# are looked up with a statement of single values (`_held_by`); more go as an array.
_SINGLE_VALUES = 4
# {(with a tenant, PostgreSQL, user ids as single values (0: an array)): statement}
_HELD_BY = {
    (t, pg, n): _held_by(t, pg, n)
    for t in (False, True)
    for pg in (False, True)
    for n in (range(_SINGLE_VALUES + 1) if pg else (0,))
}
# Where `remember_accounts`' rows hold the member's columns, its groups and its accounts, and
# on PostgreSQL the membership version they were read under.
_HELD_MEMBER = slice(2, 2 + len(MEMBER_COLUMNS))
_HELD_GROUPS = _HELD_MEMBER.stop
_HELD_ACCOUNTS = _HELD_GROUPS + 1
_HELD_VERSION = _HELD_ACCOUNTS + 1
# At most this many people are kept across turns (`_kept_people`) before they are all dropped.
_KEPT_AT_MOST = 20_000


async def remember_accounts(
    db: Database, platform: str, user_ids: Sequence[str], tenant: str
) -> None:
    """Look up, in one query, the members holding these accounts (as `_account_member_id_in`
    does one by one: the exact tenant first, then an imported tenant-less account) and keep them
    for the turn, so the adapter's vetting, admission and the services after it read no member
    again. Outside a unit there is nothing to keep them in, and nothing is read.

    A Slack kudos (`_kept_people`) may instead take them from the people earlier kudos of this
    process looked up, when all of them are kept under one membership version: its held claim is
    then guarded by that version (`Unit.guard_members`), so if anyone changed since, the turn
    writes nothing and runs again with a look-up (`StaleLookup`). People it does look up are
    kept for the next kudos, and guard its claim likewise."""
    async with db.read() as session:
        cache = turn_cache(session, MEMBERS)
        if cache is None:
            return
        platform, tenant = normalise_platform(platform), tenant.strip()
        wanted = list(dict.fromkeys(u.strip() for u in user_ids))
        wanted = [u for u in wanted if ("account", platform, u, tenant) not in cache]
        if not wanted:
            return
        unit = db.current_unit()
        kept = _kept_people(db, unit)
        if (
            unit is not None
            and kept is not None
            and _from_kept(unit, kept, cache, platform, wanted, tenant)
        ):
            return
        single = 0 if db.is_sqlite or len(wanted) > _SINGLE_VALUES else len(wanted)
        parameters: dict[str, Any] = {"a_platform": platform}
        if single:
            parameters |= {f"a_user_{i}": user for i, user in enumerate(wanted)}
            if tenant:
                parameters |= {"a_tenant": tenant, "a_untenanted": ""}
        else:
            parameters["a_users"] = wanted
            if tenant:
                parameters["a_tenants"] = [tenant, ""]
        statement = _HELD_BY[bool(tenant), not db.is_sqlite, single]
        rows = await run_fixed(session, statement, parameters)
    found: dict[str, list[Sequence[Any]]] = {}
    for row in rows:
        found.setdefault(row[0], []).append(row)
    version = rows[0][_HELD_VERSION] if kept is not None and rows else None
    if version is not None and unit is not None:
        unit.guard_members(version)  # these too: the turn writes only while they are current
    for user_id in wanted:
        candidates = found.get(user_id, [])
        exact = [row for row in candidates if row[1] == tenant]
        chosen = (exact or candidates)[0] if candidates else None
        _keep(cache, ("account", platform, user_id, tenant), chosen)
        if kept is not None and chosen is not None and version is not None:
            kept[("account", platform, user_id, tenant)] = (version, chosen)


def _keep(cache: dict[Any, Any], key: tuple[str, ...], chosen: Sequence[Any] | None) -> None:
    """The turn's look-up of account `key`: the member id (None: nobody holds it), and the
    member's view by id and email."""
    member_id = None if chosen is None else chosen[_HELD_MEMBER.start]
    cache[key] = member_id
    if chosen is not None and ("id", member_id) not in cache:
        parts = _parts(chosen[_HELD_GROUPS], chosen[_HELD_ACCOUNTS])
        _remember(cache, _view(chosen[_HELD_MEMBER], *parts))


def _kept_people(db: Database, unit: Unit | None) -> dict[Any, tuple[int, Sequence[Any]]] | None:
    """The people this process keeps across Slack kudos, {account key: (membership version, the
    look-up's row)}, when the running turn may use and add to them: a unit that may use kept
    people (a kudos' first attempt) and holds its delivery claim (PostgreSQL, nothing written
    yet, so its look-ups read committed rows). None otherwise."""
    if unit is None or not unit.kept_people or unit.claim is None or db.is_sqlite:
        return None
    kept: dict[Any, tuple[int, Sequence[Any]]] = db.memo.setdefault(PEOPLE, {})
    if len(kept) > _KEPT_AT_MOST:
        kept.clear()
    return kept


def _from_kept(
    unit: Unit,
    kept: dict[Any, tuple[int, Sequence[Any]]],
    cache: dict[Any, Any],
    platform: str,
    wanted: Sequence[str],
    tenant: str,
) -> bool:
    """Serve the turn's look-up of `wanted` from the kept people, if all of them are kept under
    one version and the unit's claim now carries it (`Unit.guard_members`)."""
    entries = []
    for user_id in wanted:
        entry = kept.get(("account", platform, user_id, tenant))
        if entry is None:
            return False
        entries.append(entry)
    versions = {version for version, _ in entries}
    if len(versions) != 1 or not unit.guard_members(versions.pop()):
        return False
    for user_id, (_, chosen) in zip(wanted, entries, strict=True):
        _keep(cache, ("account", platform, user_id, tenant), chosen)
    return True


def _parts(groups: str | None, accounts: str | None) -> tuple[list[str], list[AccountView]]:
    names = sorted(groups.split(_ITEM)) if groups else []
    entries = []
    for item in accounts.split(_ITEM) if accounts else []:
        ident, platform, tenant, user_id, username = item.split(_FIELD)
        entries.append(
            (platform, int(ident), AccountView(platform, tenant, user_id, username[1:] or None))
        )
    return names, [view for _, _, view in sorted(entries, key=lambda e: (e[0], e[1]))]


async def _members_where_in(session: AsyncSession, *conditions: Any) -> list[MemberView]:
    rows = (
        await session.execute(select(*MEMBER_COLUMNS).where(*conditions).order_by(MEMBER.c.id))
    ).all()
    return await _views_in(session, rows)


async def _one_where_in(session: AsyncSession, *conditions: Any) -> MemberView | None:
    views = await _members_where_in(session, *conditions)
    return views[0] if views else None


# --- lookups --------------------------------------------------------------------------------


def _remember(cache: dict[Any, Any] | None, view: MemberView | None) -> MemberView | None:
    if cache is not None and view is not None:
        cache[("id", view.id)] = view
        cache[("email", view.email)] = view
    return view


def _forget_members(session: AsyncSession) -> None:
    """Drop the turn's member look-ups after a write to members or accounts, so the view the
    writer returns next shows it (the unit drops them too, but only when the block ends)."""
    cache = turn_cache(session, MEMBERS)
    if cache is not None:
        cache.clear()


def cached_member(session: AsyncSession, member_id: int) -> MemberView | None:
    """The member as this turn already looked them up (no query), or None."""
    cache = turn_cache(session, MEMBERS)
    return None if cache is None else cache.get(("id", member_id))


async def _get_member_in(session: AsyncSession, member_id: int) -> MemberView:
    cache = turn_cache(session, MEMBERS)
    view = cached_member(session, member_id) if cache is not None else None
    if view is None:
        view = _remember(cache, await _one_where_in(session, MEMBER.c.id == member_id))
    if view is None:
        raise UnknownMember(f"I don't know anyone with member id {member_id}.")
    return view


async def get_member(db: Database, member_id: int) -> MemberView:
    """The member with this id; raises UnknownMember when there is none."""
    async with db.read() as session:
        return await _get_member_in(session, member_id)


async def _find_by_email_in(session: AsyncSession, email: str) -> MemberView | None:
    cache = turn_cache(session, MEMBERS)
    key = ("email", normalise_email(email))
    if cache is not None and key in cache:
        found: MemberView | None = cache[key]
        return found
    view = await _one_where_in(session, MEMBER.c.email == key[1])
    if cache is not None:
        cache[key] = view
    return _remember(cache, view)


async def find_by_email(db: Database, email: str) -> MemberView | None:
    """The member with this email (any case, surrounding spaces ignored), or None.

    A member the turn already looked up is answered from the turn's cache without opening a
    block (a turn's kudos names its receivers by the emails the adapter put in its text)."""
    cache = _unit_members(db)
    if cache is not None:
        key = ("email", normalise_email(email))
        if key in cache:
            found: MemberView | None = cache[key]
            return found
    async with db.read() as session:
        return await _find_by_email_in(session, email)


async def _account_member_id_in(
    session: AsyncSession, platform: str, user_id: str, tenant: str
) -> int | None:
    """The member holding (platform, user_id): the exact tenant first, then a tenant-less
    (imported) account; with no tenant given, any tenant. Looked up once per turn."""
    cache = turn_cache(session, MEMBERS)
    key = ("account", platform, user_id, tenant)
    if cache is not None and key in cache:
        cached: int | None = cache[key]
        return cached
    found = await _account_member_id_uncached(session, platform, user_id, tenant)
    if cache is not None:
        cache[key] = found
    return found


async def _account_member_id_uncached(
    session: AsyncSession, platform: str, user_id: str, tenant: str
) -> int | None:
    query = select(ACCOUNT.c.member_id, ACCOUNT.c.tenant).where(
        ACCOUNT.c.platform == platform, ACCOUNT.c.user_id == user_id
    )
    if tenant:
        query = query.where(ACCOUNT.c.tenant.in_([tenant, ""]))
    rows = (await session.execute(query.order_by(ACCOUNT.c.id))).all()
    if not rows:
        return None
    exact = [row for row in rows if row.tenant == tenant]
    member_id: int = (exact or rows)[0].member_id
    return member_id


def _unit_members(db: Database) -> dict[Any, Any] | None:
    """The running unit's member look-ups (`turn_cache` MEMBERS), if it made any, read without
    opening a block: a block costs more than the look-ups it would serve from the cache."""
    unit = db.current_unit()
    return None if unit is None else unit.cache.get(MEMBERS)


def turn_account_holder(
    db: Database, platform: str, user_id: str, tenant: str
) -> tuple[bool, MemberView | None]:
    """What the running unit already knows of the member holding (platform, user_id) in
    `tenant` (the arguments normalised, as `_account_member_id_in` takes them): (True, the
    member or None for nobody) when it looked them up, else (False, None) (`_unit_members`)."""
    cache = _unit_members(db)
    if cache is None:
        return False, None
    key = ("account", platform, user_id, tenant)
    if key not in cache:
        return False, None
    member_id = cache[key]
    if member_id is None:
        return True, None
    view: MemberView | None = cache.get(("id", member_id))
    return view is not None, view


async def _find_by_account_in(
    session: AsyncSession, platform: str, user_id: str, tenant: str = ""
) -> MemberView | None:
    member_id = await _account_member_id_in(
        session, normalise_platform(platform), user_id.strip(), tenant.strip()
    )
    return None if member_id is None else await _get_member_in(session, member_id)


async def find_by_account(
    db: Database, platform: str, user_id: str, tenant: str = ""
) -> MemberView | None:
    """The member who owns this platform account, or None.

    An account imported without a tenant matches in every tenant; with `tenant=""` the lookup
    matches the user id in any tenant.
    """
    async with db.read() as session:
        return await _find_by_account_in(session, platform, user_id, tenant)


async def _find_by_username_in(
    session: AsyncSession, platform: str, username: str
) -> MemberView | None:
    name = normalise_username(username)
    if name is None:
        return None
    member_ids = sorted(
        {
            member_id
            for (member_id,) in await session.execute(
                select(ACCOUNT.c.member_id).where(
                    ACCOUNT.c.platform == normalise_platform(platform),
                    ACCOUNT.c.username == name,
                )
            )
        }
    )
    if not member_ids:
        return None
    if len(member_ids) > 1:
        raise UnknownMember(
            f"Several people use @{name} on {platform}; please use their email address instead."
        )
    return await _get_member_in(session, member_ids[0])


async def find_by_username(db: Database, platform: str, username: str) -> MemberView | None:
    """The member using `@username` on `platform` (case-insensitive), or None.

    Raises UnknownMember when the handle is ambiguous (usernames change hands, and an old account
    may still carry it): guessing would send someone else's kudos to the wrong person.
    """
    async with db.read() as session:
        return await _find_by_username_in(session, platform, username)


def _unknown(ref: object) -> UnknownMember:
    return UnknownMember(f"I don't know anyone called {ref}.")


async def _resolve_in(session: AsyncSession, ref: int | str) -> MemberView:
    if isinstance(ref, bool):  # bool is an int; True is nobody's id
        raise _unknown(ref)
    if isinstance(ref, int):
        # ids are 32-bit: a larger number names nobody (and must not reach the database)
        in_range = -(2**31) <= ref < 2**31
        if not in_range:
            raise UnknownMember(f"I don't know anyone with member id {ref}.")
        return await _get_member_in(session, ref)
    text = ref.strip()
    if not text:
        raise UnknownMember(
            "Please tell me who you mean: an email address, a member id or platform:user_id."
        )
    if text.isascii() and text.isdigit():
        return await _resolve_in(session, int(text))
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :]
    if "@" in text and not text.startswith("@"):
        email = normalise_email(text)
        if is_valid_email(email):
            found = await _find_by_email_in(session, email)
            if found is None:
                raise _unknown(email)
            return found
    platform, colon, user_id = text.partition(":")
    if colon and user_id.strip() and _PLATFORM.match(platform.strip().lower()):
        found = await _find_by_account_in(session, platform, user_id)
        if found is None:
            raise UnknownMember(
                f"I don't know anyone with {platform.strip().lower()} id {user_id.strip()}."
            )
        return found
    raise _unknown(text)


async def resolve(db: Database, ref: int | str) -> MemberView:
    """The member named by `ref`: an id (int or digits), an email, or `platform:user_id`.

    Raises UnknownMember with a sentence fit for a chat reply ("I don't know anyone called ...").
    """
    async with db.read() as session:
        return await _resolve_in(session, ref)


async def _list_members_in(
    session: AsyncSession,
    *,
    department: str | None = None,
    group: str | None = None,
    active: bool | None = True,
    after_id: int | None = None,
    limit: int = 100,
) -> list[MemberView]:
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidInput(f"The limit must be between 1 and {MAX_LIST_LIMIT}, not {limit}.")
    conditions: list[Any] = []
    if department:
        conditions.append(func.lower(MEMBER.c.department) == department.strip().lower())
    if group:
        conditions.append(
            MEMBER.c.id.in_(
                select(MEMBER_GROUP.c.member_id).where(
                    func.lower(MEMBER_GROUP.c.name) == group.strip().lower()
                )
            )
        )
    if active is not None:
        conditions.append(MEMBER.c.active == active)
    if after_id is not None:
        conditions.append(MEMBER.c.id > after_id)
    rows = (
        await session.execute(
            select(*MEMBER_COLUMNS).where(*conditions).order_by(MEMBER.c.id).limit(limit)
        )
    ).all()
    return await _views_in(session, rows)


async def list_members(
    db: Database,
    *,
    department: str | None = None,
    group: str | None = None,
    active: bool | None = True,
    after_id: int | None = None,
    limit: int = 100,
) -> list[MemberView]:
    """Members in id order, one page at a time (pass the last id as `after_id` for the next).

    Department and group match case-insensitively; `active=None` lists everyone. Keyset paging
    keeps each page one indexed range scan however large the organisation.
    """
    async with db.read() as session:
        return await _list_members_in(
            session,
            department=department,
            group=group,
            active=active,
            after_id=after_id,
            limit=limit,
        )


# --- writes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Profile:
    """What a platform told us about a person, normalised."""

    platform: str
    user_id: str
    tenant: str
    email: str | None
    display_name: str | None
    username: str | None
    timezone: str | None


def _profile(
    platform: str,
    user_id: str,
    tenant: str,
    email: str | None,
    display_name: str | None,
    username: str | None,
    timezone: str | None,
) -> _Profile:
    """Normalise a platform profile. Bad optional details are dropped rather than refused: a
    person must be able to talk to the bot even if their directory entry is odd."""
    platform = normalise_platform(platform)
    user_id = user_id.strip()
    tenant = tenant.strip()
    if not user_id or len(user_id) > MAX_USER_ID:
        raise InvalidInput(f"A {platform} user id must be 1 to {MAX_USER_ID} characters long.")
    if len(tenant) > MAX_TENANT:
        raise InvalidInput(f"A {platform} tenant must be at most {MAX_TENANT} characters long.")
    clean_email = normalise_email(email) if email else None
    if clean_email is not None and not is_valid_email(clean_email):
        clean_email = None
    name = (display_name or "").strip()[:MAX_DISPLAY_NAME] or None
    zone = timezone.strip() if timezone else None
    if zone is not None and not is_valid_timezone(zone):
        zone = None
    return _Profile(
        platform, user_id, tenant, clean_email, name, normalise_username(username), zone
    )


async def _ensure_once(session: AsyncSession, p: _Profile, clock: Clock) -> int:
    """One attempt at finding or creating the member for `p`; returns the member id."""
    now = clock.now()
    query = select(ACCOUNT.c.id, ACCOUNT.c.member_id, ACCOUNT.c.tenant, ACCOUNT.c.username).where(
        ACCOUNT.c.platform == p.platform, ACCOUNT.c.user_id == p.user_id
    )
    if p.tenant:
        query = query.where(ACCOUNT.c.tenant.in_([p.tenant, ""]))
    found = sorted((await session.execute(query)).all(), key=lambda r: (r.tenant != p.tenant, r.id))
    if not found and p.username:
        # An imported account known only by its username is claimed by its first sighting.
        found = list(
            (
                await session.execute(
                    select(
                        ACCOUNT.c.id, ACCOUNT.c.member_id, ACCOUNT.c.tenant, ACCOUNT.c.username
                    ).where(
                        ACCOUNT.c.platform == p.platform,
                        ACCOUNT.c.tenant == "",
                        ACCOUNT.c.user_id == pending_user_id(p.username),
                    )
                )
            ).all()
        )
        if found:
            await session.execute(
                update(ACCOUNT)
                .where(ACCOUNT.c.id == found[0].id)
                .values(user_id=p.user_id, tenant=p.tenant)
            )
    if found:
        account = found[0]
        changes: dict[str, Any] = {}
        if account.tenant == "" and p.tenant:
            changes["tenant"] = p.tenant
        if p.username and account.username != p.username:
            changes["username"] = p.username
        if changes:
            await session.execute(update(ACCOUNT).where(ACCOUNT.c.id == account.id).values(changes))
        member_id: int = account.member_id
        await _enrich(session, member_id, p, now)
        return member_id

    member_id_or_none: int | None = None
    if p.email:
        member_id_or_none = (
            await session.execute(select(MEMBER.c.id).where(MEMBER.c.email == p.email))
        ).scalar_one_or_none()
    if member_id_or_none is None:
        member_id_or_none = (
            await session.execute(
                insert(MEMBER)
                .values(
                    email=p.email or placeholder_email(p.platform, p.user_id, p.tenant),
                    display_name=p.display_name
                    or _default_display_name(p.email, p.username, p.platform),
                    timezone=p.timezone,
                    active=True,
                    leaderboard_opt_out=False,
                    celebrations_opt_out=False,
                    created_at=now,
                    updated_at=now,
                )
                .returning(MEMBER.c.id)
            )
        ).scalar_one()
    else:
        await _enrich(session, member_id_or_none, p, now)
    await session.execute(
        insert(ACCOUNT).values(
            member_id=member_id_or_none,
            platform=p.platform,
            tenant=p.tenant,
            user_id=p.user_id,
            username=p.username,
            created_at=now,
        )
    )
    return member_id_or_none


async def _enrich(session: AsyncSession, member_id: int, p: _Profile, now: datetime) -> None:
    """Fill what the member lacks from the platform profile; never overwrite imported HR data.

    A placeholder email is replaced by the real one unless another member already has it (we
    cannot merge two members' histories here; an admin must decide).
    """
    row = (
        await session.execute(
            select(MEMBER.c.email, MEMBER.c.timezone).where(MEMBER.c.id == member_id)
        )
    ).one()
    changes: dict[str, Any] = {}
    if p.timezone and row.timezone is None:
        changes["timezone"] = p.timezone
    if p.email and is_placeholder_email(row.email):
        taken = (
            await session.execute(select(MEMBER.c.id).where(MEMBER.c.email == p.email))
        ).scalar_one_or_none()
        if taken is None:
            changes["email"] = p.email
    if changes:
        changes["updated_at"] = now
        await session.execute(update(MEMBER).where(MEMBER.c.id == member_id).values(changes))


def _is_current(view: MemberView, p: _Profile) -> bool:
    """Whether `view`, the member holding p's account, already has all the profile could add:
    the account as the profile names it, and no gap the profile would fill (nothing to write)."""
    unchanged = any(
        a.platform == p.platform
        and a.user_id == p.user_id
        and (not p.tenant or a.tenant == p.tenant)
        and (p.username is None or a.username == p.username)
        for a in view.accounts
    )
    gaps = (p.timezone and view.timezone is None) or (p.email and not view.has_real_email)
    return unchanged and not gaps


async def _ensure_member_for_account_in(
    session: AsyncSession,
    platform: str,
    user_id: str,
    *,
    tenant: str = "",
    email: str | None = None,
    display_name: str | None = None,
    username: str | None = None,
    timezone: str | None = None,
    clock: Clock | None = None,
) -> MemberView:
    profile = _profile(platform, user_id, tenant, email, display_name, username, timezone)
    clock = clock or SystemClock()
    for attempt in (1, 2):
        try:
            async with session.begin_nested():
                member_id = await _ensure_once(session, profile, clock)
            break
        except IntegrityError:
            # Someone else created the member or the account between our look and our insert.
            # The savepoint undid our half; looking again now finds theirs.
            if attempt == 2:
                raise
    _forget_members(session)
    return await _get_member_in(session, member_id)


async def ensure_member_for_account(
    db: Database,
    platform: str,
    user_id: str,
    *,
    tenant: str = "",
    email: str | None = None,
    display_name: str | None = None,
    username: str | None = None,
    timezone: str | None = None,
    clock: Clock | None = None,
) -> MemberView:
    """The member behind a platform account, created on first sight.

    Finds the account; else links it to the member with the same email (one person, one identity
    across platforms); else creates a member from the profile. Safe under concurrency: twenty
    simultaneous first messages from one person still make one member and one account.
    Details in the profile only fill gaps; the HR import stays the authority.
    """
    profile = _profile(platform, user_id, tenant, email, display_name, username, timezone)
    # Fast path, no write lock: a known account whose details have not changed (first from
    # what the turn already looked up, without opening a block).
    found, view = turn_account_holder(db, profile.platform, profile.user_id, profile.tenant)
    if found and view is not None and _is_current(view, profile):
        return view
    async with db.read() as session:
        member_id = await _account_member_id_in(
            session, profile.platform, profile.user_id, profile.tenant
        )
        if member_id is not None:
            view = await _get_member_in(session, member_id)
            if _is_current(view, profile):
                return view
    async with db.write() as session:
        return await _ensure_member_for_account_in(
            session,
            profile.platform,
            profile.user_id,
            tenant=profile.tenant,
            email=profile.email,
            display_name=profile.display_name,
            username=profile.username,
            timezone=profile.timezone,
            clock=clock,
        )


async def _link_account_in(
    session: AsyncSession,
    member_id: int,
    platform: str,
    user_id: str,
    *,
    tenant: str = "",
    username: str | None = None,
    clock: Clock | None = None,
) -> MemberView:
    p = _profile(platform, user_id, tenant, None, None, username, None)
    await _get_member_in(session, member_id)
    now = (clock or SystemClock()).now()
    for attempt in (1, 2):
        try:
            async with session.begin_nested():
                holder = await _account_member_id_in(session, p.platform, p.user_id, p.tenant)
                if holder is not None and holder != member_id:
                    raise InvalidInput(
                        f"That {p.platform} account is already linked to someone else."
                    )
                if holder is None:
                    await session.execute(
                        insert(ACCOUNT).values(
                            member_id=member_id,
                            platform=p.platform,
                            tenant=p.tenant,
                            user_id=p.user_id,
                            username=p.username,
                            created_at=now,
                        )
                    )
                else:
                    changes: dict[str, Any] = {}
                    if p.username:
                        changes["username"] = p.username
                    if p.tenant:
                        changes["tenant"] = p.tenant
                    if changes:
                        await session.execute(
                            update(ACCOUNT)
                            .where(
                                ACCOUNT.c.member_id == member_id,
                                ACCOUNT.c.platform == p.platform,
                                ACCOUNT.c.user_id == p.user_id,
                                or_(ACCOUNT.c.tenant == p.tenant, ACCOUNT.c.tenant == ""),
                            )
                            .values(changes)
                        )
            break
        except IntegrityError:
            if attempt == 2:
                raise
    _forget_members(session)
    return await _get_member_in(session, member_id)


async def link_account(
    db: Database,
    member_id: int,
    platform: str,
    user_id: str,
    *,
    tenant: str = "",
    username: str | None = None,
    clock: Clock | None = None,
) -> MemberView:
    """Attach a platform account to a member (idempotent).

    Raises UnknownMember for an unknown member and InvalidInput when the account already belongs
    to someone else: moving an account silently would move that person's identity.
    """
    async with db.write() as session:
        return await _link_account_in(
            session, member_id, platform, user_id, tenant=tenant, username=username, clock=clock
        )


async def _set_preferences_in(
    session: AsyncSession,
    member_id: int,
    leaderboard_opt_out: bool | None = None,
    celebrations_opt_out: bool | None = None,
    *,
    clock: Clock | None = None,
) -> MemberView:
    changes: dict[str, Any] = {}
    if leaderboard_opt_out is not None:
        changes["leaderboard_opt_out"] = leaderboard_opt_out
    if celebrations_opt_out is not None:
        changes["celebrations_opt_out"] = celebrations_opt_out
    if changes:
        changes["updated_at"] = (clock or SystemClock()).now()
        await session.execute(update(MEMBER).where(MEMBER.c.id == member_id).values(changes))
        _forget_members(session)
    # Raises UnknownMember when the update matched nobody.
    return await _get_member_in(session, member_id)


async def set_preferences(
    db: Database,
    member_id: int,
    leaderboard_opt_out: bool | None = None,
    celebrations_opt_out: bool | None = None,
    *,
    clock: Clock | None = None,
) -> MemberView:
    """Change a member's privacy choices; `None` leaves a choice as it is."""
    async with db.write() as session:
        return await _set_preferences_in(
            session, member_id, leaderboard_opt_out, celebrations_opt_out, clock=clock
        )
