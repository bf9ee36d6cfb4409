"""A member's privacy choices and the defaults they override.

Three layers, the most specific winning: the member's own choice (`/me settings`, stored in
`member.leaderboard_choice` / `member.celebrations`), then the import's per-member flags
(`leaderboard_opt_out`, `celebrations_opt_out`: HR sets them by team or department), then the
organisation's default (`LEADERBOARD_DEFAULT`; celebrations are public by default). The import
never writes the member's own columns, so a nightly import cannot undo a choice.

Hidden members are filtered where the leaderboards already join each ranked counter row to its
member (by primary key): the condition is on columns of that row, so a board still reads the top
of one index range and never the hidden population.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, literal_column, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from rewards.clock import Clock, SystemClock
from rewards.errors import InvalidInput, UnknownMember
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Member

SHOWN, HIDDEN = "shown", "hidden"
LEADERBOARD_CHOICES = (SHOWN, HIDDEN)
PUBLIC, PRIVATE, OFF = "public", "private", "off"
CELEBRATION_CHOICES = (PUBLIC, PRIVATE, OFF)
LANGUAGES: dict[str, str] = {"en": "English"}
"""Languages replies exist in (code -> name). Only these are offered; more appear here as
translations are added."""
DEFAULT_LANGUAGE = "en"

MEMBER = Member.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Preferences:
    """What applies to one member, and whether it is their own choice or a default."""

    leaderboard: str
    leaderboard_chosen: bool
    celebrations: str
    celebrations_chosen: bool
    language: str

    @property
    def hidden(self) -> bool:
        return self.leaderboard == HIDDEN


def leaderboard_of(choice: str | None, opt_out: bool, default: str) -> str:
    """shown or hidden: the member's choice, else the import's flag, else the default."""
    if choice in LEADERBOARD_CHOICES:
        return str(choice)
    if opt_out:
        return HIDDEN
    return default


def celebrations_of(choice: str | None, opt_out: bool) -> str:
    """public, private or off: the member's choice, else the import's flag (off), else public."""
    if choice in CELEBRATION_CHOICES:
        return str(choice)
    return OFF if opt_out else PUBLIC


def shown_on_leaderboards(member: Any, default: str = SHOWN) -> ColumnElement[bool]:
    """The SQL condition "this member row appears on leaderboards" (active, not hidden), for
    `member` = the member table (or an alias of it) and `default` = LEADERBOARD_DEFAULT."""
    choice = member.c.leaderboard_choice
    # A literal, not a bound value: the partial index of shown members must be provable when
    # the statement is planned.
    shown = choice == literal_column("'shown'")
    if default == HIDDEN:
        visible: ColumnElement[bool] = shown
    else:
        visible = or_(shown, and_(choice.is_(None), member.c.leaderboard_opt_out.is_(False)))
    return and_(member.c.active.is_(True), visible)


def celebrated(member: Any) -> ColumnElement[bool]:
    """The SQL condition "this member is celebrated at all" (publicly or privately)."""
    choice = member.c.celebrations
    return and_(
        member.c.active.is_(True),
        or_(
            choice.in_((PUBLIC, PRIVATE)),
            and_(choice.is_(None), member.c.celebrations_opt_out.is_(False)),
        ),
    )


async def _read(session: AsyncSession, settings: Settings, member_id: int) -> Preferences:
    """What applies to the member now, read in the caller's transaction."""
    row = (
        await session.execute(
            MEMBER.select()
            .with_only_columns(
                MEMBER.c.leaderboard_choice,
                MEMBER.c.leaderboard_opt_out,
                MEMBER.c.celebrations,
                MEMBER.c.celebrations_opt_out,
                MEMBER.c.reply_language,
            )
            .where(MEMBER.c.id == member_id)
        )
    ).first()
    if row is None:
        raise UnknownMember("I don't know that member.")
    return _preferences(row, settings)


async def get_preferences(db: Database, settings: Settings, member_id: int) -> Preferences:
    async with db.read() as session:
        return await _read(session, settings, member_id)


def _preferences(row: Any, settings: Settings) -> Preferences:
    return Preferences(
        leaderboard=leaderboard_of(
            row.leaderboard_choice, row.leaderboard_opt_out, settings.leaderboard_default
        ),
        leaderboard_chosen=row.leaderboard_choice is not None,
        celebrations=celebrations_of(row.celebrations, row.celebrations_opt_out),
        celebrations_chosen=row.celebrations is not None,
        language=row.reply_language if row.reply_language in LANGUAGES else DEFAULT_LANGUAGE,
    )


def _checked(value: str | None, allowed: tuple[str, ...] | dict[str, str], what: str) -> str | None:
    if value is None:
        return None
    folded = value.strip().casefold()
    if folded not in allowed:
        raise InvalidInput(f"{what} can be {', '.join(allowed)}; “{value}” is not one of them.")
    return folded


async def set_preferences(
    db: Database,
    settings: Settings,
    member_id: int,
    *,
    leaderboard: str | None = None,
    celebrations: str | None = None,
    language: str | None = None,
    clock: Clock | None = None,
) -> Preferences:
    """Record the member's own choices (None leaves one as it is); every value is checked before
    anything is written, so a bad one changes nothing. One UPDATE of one row."""
    changes: dict[str, Any] = {}
    if (board := _checked(leaderboard, LEADERBOARD_CHOICES, "Leaderboard visibility")) is not None:
        changes["leaderboard_choice"] = board
    if (party := _checked(celebrations, CELEBRATION_CHOICES, "Celebrations")) is not None:
        changes["celebrations"] = party
    if (lang := _checked(language, LANGUAGES, "The language")) is not None:
        changes["reply_language"] = lang
    async with db.write() as session:
        if changes:
            changes["updated_at"] = (clock or SystemClock()).now()
            await session.execute(
                update(MEMBER)
                .where(MEMBER.c.id == member_id, MEMBER.c.forgotten_at.is_(None))
                .values(changes)
            )
        return await _read(session, settings, member_id)
