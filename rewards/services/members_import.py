"""Import members from HR data: a CSV file (`,` `;` or tab) or JSON (a list, or {"members": [...]}).

The import upserts by email and is one transaction: either every good row lands or, on a fatal
problem (unreadable file, neither CSV nor JSON, no `email` column, a database error), nothing
does and `MemberImportError` says why in one sentence. A bad row never stops the others: it is
rejected with its line number (CSV: the physical line, header = line 1; JSON: "item N") and every
reason found in it, so one pass over the report fixes the file.

Cell semantics, chosen so re-importing an HR export is safe:
- A column that is absent leaves that field alone (partial files update partially).
- An empty cell clears optional fields (job_code, department, groups, manager, birthday,
  hire_date, timezone, locale). For fields that always have a value (display_name, active and the
  two opt-outs) an empty cell keeps the current value, or the default for a new member; the
  opt-outs are the member's own choices, and a blank column in an export must not undo them.
- `groups` replaces the member's groups. Platform ids add or confirm accounts and never remove
  one: an account seen by the bot is a fact a spreadsheet cannot un-see. A `telegram_username`
  without a `telegram_user_id` creates a pending account that the user's first message claims.
- Unknown columns are reported once (CSV: on the header line; JSON: at the first item using the
  field) as an entry in `rejected`, and their values are ignored, so a typo such as `departmnet`
  cannot silently drop data while the rest of the file still imports.

Speed: rows are validated in memory, existing members, groups and accounts are loaded with
chunked IN queries, and writes are executemany batches; no statement ever carries more than
~16,000 parameters, well under PostgreSQL's 32,767 and SQLite's 32,766.
"""

from __future__ import annotations

import asyncio
import csv
import difflib
import gc
import io
import json
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    ARRAY,
    Integer,
    String,
    any_,
    bindparam,
    delete,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from rewards.clock import Clock, SystemClock
from rewards.errors import InvalidInput
from rewards.inputs import (
    FILE_JSON,
    InputRefused,
    check_document_text,
    check_json_limits,
    text_problem,
)
from rewards.services.members import (
    ACCOUNT,
    MAX_DISPLAY_NAME,
    MEMBER,
    MEMBER_COLUMNS,
    MEMBER_GROUP,
    is_placeholder_email,
    is_valid_email,
    is_valid_timezone,
    normalise_email,
    pending_user_id,
)
from rewards.store.db import Database

__all__ = [
    "KNOWN_COLUMNS",
    "ImportReport",
    "MemberFile",
    "MemberImportError",
    "MemberRecord",
    "RejectedRow",
    "import_members",
    "read_members_file",
]

KNOWN_COLUMNS: tuple[str, ...] = (
    "email",
    "display_name",
    "job_code",
    "department",
    "groups",
    "manager_email",
    "birthday",
    "hire_date",
    "timezone",
    "locale",
    "active",
    "leaderboard_opt_out",
    "celebrations_opt_out",
    "teams_aad_id",
    "slack_user_id",
    "telegram_username",
    "telegram_user_id",
)
_KNOWN = frozenset(KNOWN_COLUMNS)

# Rows per write batch. The widest batch is a member insert of 16 columns: 16,000 parameters.
MAX_CHUNK = 1000
# Values per lookup. SQLite gets `IN (?, ?, ...)` with one parameter per value; PostgreSQL gets
# `= ANY($1)` with one array parameter, which is cheaper to render and lets it take more at once.
IN_CHUNK = 500
PG_IN_CHUNK = 5000

_TRUE = frozenset({"true", "yes", "y", "1", "t", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "f", "off"})
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SLACK_ID = re.compile(r"^[A-Z0-9]{2,30}$")
_TELEGRAM_ID = re.compile(r"^\d{1,20}$")
_TELEGRAM_USERNAME = re.compile(r"^[a-z0-9_]{4,32}$")
_TEXT_LIMITS = {"job_code": 100, "department": 200}
_MAX_LOCALE = 35

T = TypeVar("T")


class MemberImportError(InvalidInput):
    """The file as a whole cannot be imported; nothing was written."""

    code = "member-import-failed"


@dataclass(frozen=True)
class RejectedRow:
    """A row that was not imported (or, for unknown columns, a field that was ignored)."""

    line: int
    email: str | None
    reasons: tuple[str, ...]
    unit: Literal["line", "item"] = "line"

    def __str__(self) -> str:
        who = f" ({self.email})" if self.email else ""
        return f"{self.unit} {self.line}{who}: {'; '.join(self.reasons)}"


@dataclass
class ImportReport:
    """What an import did; `rejected` is in file order."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected


@dataclass(frozen=True)
class _Account:
    platform: str
    user_id: str
    username: str | None
    label: str  # how the file names it, for reasons: "slack_user_id U123"


@dataclass
class MemberRecord:
    """One row that passed the file-level checks, normalised; the database may still refuse it."""

    line: int
    email: str
    values: dict[str, Any]  # member columns this row sets (see the module docstring)
    groups: tuple[str, ...] | None  # None: the row says nothing about groups
    sets_manager: bool
    manager_email: str | None
    accounts: tuple[_Account, ...]
    replaces_pending_telegram: bool  # a real telegram_user_id supersedes a pending @username


@dataclass(frozen=True)
class MemberFile:
    """A parsed members file: good records, rows rejected while parsing, and the row count."""

    path: Path
    format: Literal["csv", "json"]
    records: list[MemberRecord]
    rejected: list[RejectedRow]
    row_count: int  # data rows seen (blank lines not counted)
    rejected_rows: int = 0  # data rows refused while reading (not unknown-column notes)

    @property
    def unit(self) -> Literal["line", "item"]:
        return "item" if self.format == "json" else "line"


# --- reading ----------------------------------------------------------------------------------

_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building ~10 objects per row.

    With 100,000 rows the collector keeps re-walking a growing heap of live (not garbage)
    objects, which more than doubled the time to read a file. Nothing here makes cycles, and the
    collector is resumed (if it was on) as soon as the last concurrent import leaves.
    """
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def read_members_file(path: str | Path) -> MemberFile:
    """Read and validate a members file without touching the database.

    Raises MemberImportError when the file cannot be used at all; row problems are returned in
    `rejected`. Separate from `import_members` so a caller can size a progress bar first.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as problem:
        reason = problem.strerror or type(problem).__name__
        raise MemberImportError(f"Cannot read the members file {path}: {reason}.") from problem
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MemberImportError(
            f"{path} is not UTF-8 text, so it is neither CSV nor JSON."
        ) from None
    if not text.strip():
        raise MemberImportError(f"{path} is empty.")
    _refuse_control_characters(path, text)
    suffix = path.suffix.lower()
    looks_json = text.lstrip()[:1] in ("[", "{")
    with _gc_paused():
        if suffix == ".json" or (suffix not in (".csv", ".tsv", ".txt") and looks_json):
            return _read_json(path, text)
        return _read_csv(path, text)


def _column_name(raw: str) -> str:
    """`Display Name` / `display-name` -> `display_name`."""
    return re.sub(r"[\s-]+", "_", raw.strip().lower())


def _unknown_column_reason(name: str, what: str) -> str:
    close = difflib.get_close_matches(name, KNOWN_COLUMNS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    if not name:
        return f"a {what} without a name was ignored"
    return f"unknown {what} {name!r} was ignored{hint}"


def _sniff_delimiter(text: str) -> str:
    """The delimiter is whichever of `,` `;` tab appears most in the header line."""
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv(path: Path, text: str) -> MemberFile:
    delimiter = _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [_column_name(cell) for cell in next(reader)]
    except (StopIteration, csv.Error) as problem:
        raise MemberImportError(f"{path} has no readable header row ({problem}).") from None
    if "email" not in header:
        shown = ", ".join(name or "(blank)" for name in header[:20])
        raise MemberImportError(
            f"{path} has no 'email' column, so members cannot be matched; its header is: {shown}."
        )
    seen: set[str] = set()
    for name in header:
        if name and name in seen:
            raise MemberImportError(f"{path} has the column {name!r} twice in its header.")
        seen.add(name)
    rejected: list[RejectedRow] = []
    unknown = [name for name in header if name not in _KNOWN]
    if unknown:
        reasons = tuple(_unknown_column_reason(name, "column") for name in unknown)
        rejected.append(RejectedRow(1, None, reasons, "line"))

    raws: list[tuple[int, dict[str, object] | RejectedRow]] = []
    email_index = header.index("email")
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as problem:
            raise MemberImportError(
                f"{path} is not valid CSV near line {line}: {problem}."
            ) from None
        if not any(cell.strip() for cell in cells):
            continue  # blank lines and rows of empty cells are spreadsheet padding
        if len(cells) != len(header):
            email = cells[email_index].strip() if email_index < len(cells) else None
            reason = (
                f"has {len(cells)} fields but the header has {len(header)}"
                f" (is a value with a {delimiter!r} missing its quotes?)"
            )
            raws.append((line, RejectedRow(line, email or None, (reason,), "line")))
            continue
        raws.append(
            (line, {name: cell for name, cell in zip(header, cells, strict=True) if name in _KNOWN})
        )
    return parse_rows(path, "csv", raws, rejected)


def _refuse_control_characters(path: Path, text: str) -> None:
    """The input gate's text rule (`rewards.inputs`): a NUL or another control character would
    reach the members table (PostgreSQL refuses NUL), so the file is refused, naming the line."""
    if text_problem(text) is None:
        return
    for number, line in enumerate(text.split("\n"), start=1):
        if (problem := text_problem(line)) is not None:
            raise MemberImportError(f"{path}, line {number}: {problem}.")


def _read_json(path: Path, text: str) -> MemberFile:
    try:
        check_json_limits(text, FILE_JSON, str(path))  # the input gate: size, nesting depth
    except InputRefused as refused:
        raise MemberImportError(str(refused)) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as problem:
        raise MemberImportError(
            f"{path} is not valid JSON: {problem.msg} at line {problem.lineno},"
            f" column {problem.colno}."
        ) from None
    try:  # "\u0000" escapes are only seen once parsed
        check_document_text(document)
    except InputRefused as refused:
        raise MemberImportError(f"{path}: {str(refused).rstrip('.')}.") from None
    if isinstance(document, dict) and isinstance(document.get("members"), list):
        items: list[object] = document["members"]
    elif isinstance(document, list):
        items = document
    else:
        raise MemberImportError(
            f'{path} must hold a list of members or an object {{"members": [...]}}.'
        )
    rejected: list[RejectedRow] = []
    raws: list[tuple[int, dict[str, object] | RejectedRow]] = []
    reported: set[str] = set()
    has_email_field = False
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            reason = f"is {_json_kind(item)}, not an object"
            raws.append((number, RejectedRow(number, None, (reason,), "item")))
            continue
        fields = {_column_name(str(key)): value for key, value in item.items()}
        has_email_field = has_email_field or "email" in fields
        new_unknown = [name for name in fields if name not in _KNOWN and name not in reported]
        if new_unknown:
            reported.update(new_unknown)
            email = fields.get("email")
            reasons = tuple(_unknown_column_reason(name, "field") for name in new_unknown)
            rejected.append(
                RejectedRow(
                    number,
                    normalise_email(email) if isinstance(email, str) else None,
                    tuple(reason + " (in every item)" for reason in reasons),
                    "item",
                )
            )
        raws.append((number, {k: v for k, v in fields.items() if k in _KNOWN}))
    if items and not has_email_field:
        raise MemberImportError(
            f"No member in {path} has an 'email' field, so members cannot be matched."
        )
    return parse_rows(path, "json", raws, rejected)


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object"


def parse_rows(
    path: Path,
    kind: Literal["csv", "json"],
    raws: list[tuple[int, dict[str, object] | RejectedRow]],
    rejected: list[RejectedRow],
) -> MemberFile:
    """Parse each row, then apply the checks that span rows: duplicate emails and platform ids.

    Public because the REST API imports member objects through the same checks as a file."""
    unit: Literal["line", "item"] = "item" if kind == "json" else "line"
    records: list[MemberRecord] = []
    refused = 0
    first_email: dict[str, int] = {}
    first_account: dict[tuple[str, str], int] = {}
    for line, raw in raws:
        if isinstance(raw, RejectedRow):
            rejected.append(raw)
            refused += 1
            continue
        parsed = _parse_row(raw, line, unit)
        if isinstance(parsed, RejectedRow):
            rejected.append(parsed)
            refused += 1
            email = parsed.email
            if email and is_valid_email(email):
                first_email.setdefault(email, line)
            continue
        reasons: list[str] = []
        earlier = first_email.setdefault(parsed.email, line)
        if earlier != line:
            reasons.append(f"email {parsed.email} is already on {unit} {earlier}")
        for account in parsed.accounts:
            earlier = first_account.setdefault((account.platform, account.user_id), line)
            if earlier != line:
                reasons.append(f"{account.label} is already on {unit} {earlier}")
        if reasons:
            rejected.append(RejectedRow(line, parsed.email, tuple(reasons), unit))
            refused += 1
        else:
            records.append(parsed)
    rejected.sort(key=lambda r: r.line)
    return MemberFile(path, kind, records, rejected, row_count=len(raws), rejected_rows=refused)


def _parse_row(
    raw: Mapping[str, object], line: int, unit: Literal["line", "item"]
) -> MemberRecord | RejectedRow:
    """A MemberRecord, or a RejectedRow listing every problem in the row."""
    reasons: list[str] = []
    values: dict[str, Any] = {}

    email_value = _text(raw.get("email"), "email", reasons)
    email = normalise_email(email_value) if email_value else None
    if email is None:
        if not reasons:  # not already "email: expected text"
            reasons.append("email is missing")
    elif not is_valid_email(email):
        reasons.append(f"email {email_value!r} is not a valid email address")

    if "display_name" in raw:
        name = _text(raw["display_name"], "display_name", reasons)
        if name and len(name) > MAX_DISPLAY_NAME:
            reasons.append(f"display_name is longer than {MAX_DISPLAY_NAME} characters")
        elif name:
            values["display_name"] = name

    for column, limit in _TEXT_LIMITS.items():
        if column in raw:
            text = _text(raw[column], column, reasons)
            if text and len(text) > limit:
                reasons.append(f"{column} is longer than {limit} characters")
            else:
                values[column] = text

    groups: tuple[str, ...] | None = None
    if "groups" in raw:
        groups = _groups(raw["groups"], reasons)

    sets_manager = "manager_email" in raw
    manager_email: str | None = None
    if sets_manager:
        manager_raw = _text(raw["manager_email"], "manager_email", reasons)
        if manager_raw:
            manager_email = normalise_email(manager_raw)
            if not is_valid_email(manager_email):
                reasons.append(f"manager_email {manager_raw!r} is not a valid email address")
            elif manager_email == email:
                reasons.append("manager_email is the member's own email")

    if "birthday" in raw:
        values.update(_birthday(_text(raw["birthday"], "birthday", reasons), reasons))

    if "hire_date" in raw:
        hire = _text(raw["hire_date"], "hire_date", reasons)
        values["hire_date"] = None
        if hire:
            parsed = _iso_date(hire)
            if parsed is None:
                reasons.append(f"hire_date {hire!r} is not a date in the form YYYY-MM-DD")
            else:
                values["hire_date"] = parsed

    if "timezone" in raw:
        zone = _text(raw["timezone"], "timezone", reasons)
        if zone and not is_valid_timezone(zone):
            reasons.append(f"timezone {zone!r} is not an IANA time zone such as Europe/Madrid")
        values["timezone"] = zone or None

    if "locale" in raw:
        locale = _text(raw["locale"], "locale", reasons)
        if locale and (len(locale) > _MAX_LOCALE or not _LOCALE.match(locale)):
            reasons.append(f"locale {locale!r} is not a language tag such as es-ES")
        values["locale"] = locale.replace("_", "-") if locale else None

    for flag in ("active", "leaderboard_opt_out", "celebrations_opt_out"):
        if flag in raw:
            answer = _boolean(raw[flag], flag, reasons)
            if answer is not None:
                values[flag] = answer

    accounts, replaces_pending = _accounts(raw, reasons)

    if reasons:
        return RejectedRow(line, email, tuple(reasons), unit)
    assert email is not None
    return MemberRecord(
        line=line,
        email=email,
        values=values,
        groups=groups,
        sets_manager=sets_manager,
        manager_email=manager_email,
        accounts=accounts,
        replaces_pending_telegram=replaces_pending,
    )


def _text(value: object, column: str, reasons: list[str]) -> str | None:
    """A cell as stripped text; None when empty. JSON numbers are accepted as text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    reasons.append(f"{column}: expected text, got {_json_kind(value)}")
    return None


def _boolean(value: object, column: str, reasons: list[str]) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = _text(value, column, reasons) if not isinstance(value, int) else str(value)
    if text is None:
        return None
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    reasons.append(f"{column} {text!r} is not true or false")
    return None


def _groups(value: object, reasons: list[str]) -> tuple[str, ...]:
    """Groups from `a; b` (CSV) or a list (JSON); duplicates dropped ignoring case."""
    if isinstance(value, list):
        parts: list[str] = []
        for item in value:
            if not isinstance(item, str):
                reasons.append(f"groups: expected a list of text, found {_json_kind(item)}")
                return ()
            parts.append(item)
    else:
        text = _text(value, "groups", reasons)
        parts = text.split(";") if text else []
    groups: list[str] = []
    seen: set[str] = set()
    for part in parts:
        name = part.strip()
        if not name or name.lower() in seen:
            continue
        if len(name) > 200:
            reasons.append(f"group {name[:20]!r}... is longer than 200 characters")
            continue
        seen.add(name.lower())
        groups.append(name)
    return tuple(groups)


def _iso_date(text: str) -> date | None:
    match = _ISO_DATE.match(text)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _birthday(text: str | None, reasons: list[str]) -> dict[str, int | None]:
    """`MM-DD` or `YYYY-MM-DD`; 02-29 is a real birthday, celebrated on 28 February or 1 March
    by the rules, so it is valid without a year."""
    cleared: dict[str, int | None] = {
        "birthday_month": None,
        "birthday_day": None,
        "birth_year": None,
    }
    if not text:
        return cleared
    year: int | None = None
    match = _MONTH_DAY.match(text)
    if match:
        month, day = int(match[1]), int(match[2])
        try:
            date(2000, month, day)  # a leap year, so 02-29 passes
        except ValueError:
            reasons.append(f"birthday {text!r} is not a real day of the year")
            return cleared
    else:
        full = _iso_date(text)
        if full is None:
            reasons.append(f"birthday {text!r} is not in the form MM-DD or YYYY-MM-DD")
            return cleared
        if not 1900 <= full.year <= 2100:
            reasons.append(f"birthday {text!r} has an implausible year")
            return cleared
        year, month, day = full.year, full.month, full.day
    return {"birthday_month": month, "birthday_day": day, "birth_year": year}


def _accounts(raw: Mapping[str, object], reasons: list[str]) -> tuple[tuple[_Account, ...], bool]:
    accounts: list[_Account] = []
    aad = _text(raw.get("teams_aad_id"), "teams_aad_id", reasons)
    if aad:
        if _GUID.match(aad.lower()):
            accounts.append(_Account("teams", aad.lower(), None, f"teams_aad_id {aad.lower()}"))
        else:
            reasons.append(f"teams_aad_id {aad!r} is not an Azure AD object id (a GUID)")
    slack = _text(raw.get("slack_user_id"), "slack_user_id", reasons)
    if slack:
        if _SLACK_ID.match(slack.upper()):
            accounts.append(
                _Account("slack", slack.upper(), None, f"slack_user_id {slack.upper()}")
            )
        else:
            reasons.append(f"slack_user_id {slack!r} is not a Slack user id such as U0123ABCD")
    telegram_id = _text(raw.get("telegram_user_id"), "telegram_user_id", reasons)
    username_raw = _text(raw.get("telegram_username"), "telegram_username", reasons)
    username = username_raw.lstrip("@").lower() if username_raw else None
    if username is not None and not _TELEGRAM_USERNAME.match(username):
        reasons.append(f"telegram_username {username_raw!r} is not a Telegram username")
        username = None
    if telegram_id and not _TELEGRAM_ID.match(telegram_id):
        reasons.append(f"telegram_user_id {telegram_id!r} is not a number")
        telegram_id = None
    if telegram_id:
        accounts.append(
            _Account("telegram", telegram_id, username, f"telegram_user_id {telegram_id}")
        )
    elif username:
        accounts.append(
            _Account(
                "telegram", pending_user_id(username), username, f"telegram_username @{username}"
            )
        )
    return tuple(accounts), bool(telegram_id)


# --- importing --------------------------------------------------------------------------------


async def import_members(
    db: Database,
    source: str | Path | MemberFile,
    *,
    progress: Callable[[int], None] | None = None,
    clock: Clock | None = None,
    chunk_size: int = MAX_CHUNK,
) -> ImportReport:
    """Upsert the members of a CSV or JSON file by email, in one transaction.

    `progress`, when given, is called after each batch with the number of rows handled so far
    (it reaches `MemberFile.row_count`). An exception raised by it aborts the import and rolls
    everything back. Raises MemberImportError on a fatal problem; nothing is written then.
    """
    parsed = (
        source
        if isinstance(source, MemberFile)
        else await asyncio.to_thread(read_members_file, source)
    )
    chunk_size = max(1, min(chunk_size, MAX_CHUNK))
    try:
        async with db.write() as session:
            with _gc_paused():
                return await _import_in(
                    session, parsed, progress, clock or SystemClock(), chunk_size
                )
    except SQLAlchemyError as problem:
        cause = type(getattr(problem, "orig", None) or problem).__name__
        raise MemberImportError(
            f"The database refused the import of {parsed.path} ({cause}), so nothing was"
            " imported; if members were being changed at the same time, run it again."
        ) from problem


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Lookup:
    """`column IN values`, phrased and chunked for the session's database."""

    def __init__(self, session: AsyncSession) -> None:
        self.postgresql = session.get_bind().dialect.name == "postgresql"
        self.size = PG_IN_CHUNK if self.postgresql else IN_CHUNK

    def chunks(self, values: Iterable[Any]) -> Iterator[Sequence[Any]]:
        return _chunks(sorted(set(values)), self.size)

    def where_in(self, column: Any, values: Sequence[Any]) -> Any:
        if not self.postgresql:
            return column.in_(values)
        kind = Integer() if values and isinstance(values[0], int) else String()
        return column == any_(literal(list(values), ARRAY(kind)))


@dataclass(eq=False)
class _Plan:
    """What to do with one accepted record."""

    record: MemberRecord
    member_id: int | None  # None: create
    is_new: bool = False
    new_email: bool = False  # adopting a placeholder member: its email becomes the real one
    member_changed: bool = False
    merged: dict[str, Any] = field(default_factory=dict)
    groups_changed: bool = False
    new_accounts: list[_Account] = field(default_factory=list)
    username_updates: list[tuple[int, str]] = field(default_factory=list)  # (account id, name)
    pending_to_drop: list[int] = field(default_factory=list)  # account ids
    manager_is_new: bool = False  # the manager is created by this import; id known once written
    manager_fixup: bool = False  # created with no manager (a cycle of new members), linked last

    @property
    def changed(self) -> bool:
        return bool(
            self.member_changed
            or self.groups_changed
            or self.new_accounts
            or self.username_updates
            or self.pending_to_drop
            or self.manager_is_new
        )


_MANAGED = (
    "email",
    "display_name",
    "job_code",
    "department",
    "manager_id",
    "birthday_month",
    "birthday_day",
    "birth_year",
    "hire_date",
    "timezone",
    "locale",
    "active",
    "leaderboard_opt_out",
    "celebrations_opt_out",
)
_DEFAULTS: dict[str, Any] = {
    "job_code": None,
    "department": None,
    "manager_id": None,
    "birthday_month": None,
    "birthday_day": None,
    "birth_year": None,
    "hire_date": None,
    "timezone": None,
    "locale": None,
    "active": True,
    "leaderboard_opt_out": False,
    "celebrations_opt_out": False,
}


def _default_name(email: str) -> str:
    return email.split("@", 1)[0].replace(".", " ").replace("_", " ").title()[:MAX_DISPLAY_NAME]


async def _load_members(session: AsyncSession, emails: Iterable[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    lookup = _Lookup(session)
    for chunk in lookup.chunks(emails):
        for row in await session.execute(
            select(*MEMBER_COLUMNS).where(lookup.where_in(MEMBER.c.email, chunk))
        ):
            found[row.email] = row
    return found


async def _load_accounts_by_key(
    session: AsyncSession, records: Sequence[MemberRecord]
) -> tuple[dict[tuple[str, str], list[Any]], dict[str, list[Any]]]:
    """Existing accounts holding any platform id of the file, and telegram usernames of it."""
    wanted: dict[str, set[str]] = defaultdict(set)
    usernames: set[str] = set()
    for record in records:
        for account in record.accounts:
            wanted[account.platform].add(account.user_id)
            if account.platform == "telegram" and account.username:
                usernames.add(account.username)
    columns = (
        ACCOUNT.c.id,
        ACCOUNT.c.member_id,
        ACCOUNT.c.platform,
        ACCOUNT.c.user_id,
        ACCOUNT.c.username,
        MEMBER.c.email,
    )
    joined = ACCOUNT.join(MEMBER, MEMBER.c.id == ACCOUNT.c.member_id)
    lookup = _Lookup(session)
    by_key: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for platform, ids in wanted.items():
        # The unique index is (platform, tenant, user_id). Naming the few tenants lets both
        # databases seek it; leaving tenant open would scan every account of the platform once
        # per chunk, which is quadratic over a large file.
        tenants = list(
            (
                await session.execute(
                    select(ACCOUNT.c.tenant).where(ACCOUNT.c.platform == platform).distinct()
                )
            ).scalars()
        )
        if not tenants:
            continue
        for chunk in lookup.chunks(ids):
            for row in await session.execute(
                select(*columns)
                .select_from(joined)
                .where(
                    ACCOUNT.c.platform == platform,
                    ACCOUNT.c.tenant.in_(tenants),
                    lookup.where_in(ACCOUNT.c.user_id, chunk),
                )
            ):
                by_key[(row.platform, row.user_id)].append(row)
    by_username: dict[str, list[Any]] = defaultdict(list)
    for chunk in lookup.chunks(usernames):
        for row in await session.execute(
            select(*columns)
            .select_from(joined)
            .where(ACCOUNT.c.platform == "telegram", lookup.where_in(ACCOUNT.c.username, chunk))
        ):
            by_username[row.username].append(row)
    return by_key, by_username


async def _load_by_member(
    session: AsyncSession, table: Any, columns: Sequence[Any], member_ids: Iterable[int]
) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = defaultdict(list)
    lookup = _Lookup(session)
    for chunk in lookup.chunks(member_ids):
        where = lookup.where_in(table.c.member_id, chunk)
        for row in await session.execute(select(*columns).where(where)):
            found[row.member_id].append(row)
    return found


def _account_conflicts(
    record: MemberRecord,
    target: int | None,
    by_key: Mapping[tuple[str, str], list[Any]],
    by_username: Mapping[str, list[Any]],
) -> list[str]:
    reasons = []
    for account in record.accounts:
        for holder in by_key.get((account.platform, account.user_id), ()):
            if holder.member_id != target:
                reasons.append(f"{account.label} already belongs to {holder.email}")
                break
        if account.platform == "telegram" and account.username:
            for holder in by_username.get(account.username, ()):
                if holder.member_id != target:
                    reasons.append(
                        f"telegram_username @{account.username} already belongs to {holder.email}"
                    )
                    break
    return list(dict.fromkeys(reasons))


def _adoptable(
    record: MemberRecord,
    by_key: Mapping[tuple[str, str], list[Any]],
    by_username: Mapping[str, list[Any]],
    adopted: set[int],
) -> int | None:
    """A placeholder member (first seen on a platform without email) this new row describes."""
    holders: dict[int, str] = {}
    for account in record.accounts:
        for holder in by_key.get((account.platform, account.user_id), ()):
            holders[holder.member_id] = holder.email
        if account.platform == "telegram" and account.username:
            for holder in by_username.get(account.username, ()):
                holders[holder.member_id] = holder.email
    if len(holders) != 1:
        return None
    ((member_id, email),) = holders.items()
    if is_placeholder_email(email) and member_id not in adopted:
        return member_id
    return None


async def _import_in(
    session: AsyncSession,
    parsed: MemberFile,
    progress: Callable[[int], None] | None,
    clock: Clock,
    chunk_size: int,
) -> ImportReport:
    unit = parsed.unit
    report = ImportReport(rejected=list(parsed.rejected))
    records = parsed.records

    # 1. Read everything the decisions need, in chunked IN queries.
    existing = await _load_members(
        session,
        [r.email for r in records] + [r.manager_email for r in records if r.manager_email],
    )
    by_key, by_username = await _load_accounts_by_key(session, records)

    # 2. Decide each row's target member and refuse rows whose platform ids belong to others.
    adopted: set[int] = set()
    plans: list[_Plan] = []
    refused: dict[int, RejectedRow] = {}
    for record in records:
        target = existing[record.email].id if record.email in existing else None
        new_email = False
        if target is None:
            target = _adoptable(record, by_key, by_username, adopted)
            if target is not None:
                adopted.add(target)
                new_email = True
        reasons = _account_conflicts(record, target, by_key, by_username)
        if reasons:
            refused[record.line] = RejectedRow(record.line, record.email, tuple(reasons), unit)
        else:
            plans.append(_Plan(record, target, is_new=target is None, new_email=new_email))

    # 3. Managers: an existing member or a row of this file that is itself accepted. Refusing a
    #    row can orphan rows managed by it, so refusals cascade.
    lines_by_email = {plan.record.email: plan.record.line for plan in plans}
    for bad in (*parsed.rejected, *refused.values()):
        if bad.email:
            lines_by_email.setdefault(bad.email, bad.line)
    accepted = {plan.record.email: plan for plan in plans}
    dependants: dict[str, list[_Plan]] = defaultdict(list)
    queue: list[_Plan] = []
    for plan in plans:
        manager = plan.record.manager_email
        if manager and manager not in existing:
            dependants[manager].append(plan)
            if manager not in accepted:
                queue.append(plan)
    while queue:
        plan = queue.pop()
        record = plan.record
        if record.line in refused:
            continue
        manager = record.manager_email
        where = lines_by_email.get(manager or "")
        reason = (
            f"manager_email {manager} is on {unit} {where}, which was rejected"
            if where is not None
            else f"manager_email {manager} is neither a member nor in this file"
        )
        refused[record.line] = RejectedRow(record.line, record.email, (reason,), unit)
        accepted.pop(record.email, None)
        if record.email not in existing:
            queue.extend(dependants.get(record.email, ()))
    plans = [plan for plan in plans if plan.record.line not in refused]
    report.rejected.extend(refused.values())
    report.rejected.sort(key=lambda r: r.line)

    # 4. Work out what changes for members that exist already.
    ids_by_email: dict[str, int] = {email: row.id for email, row in existing.items()}
    current_by_id = {row.id: row for row in existing.values()}
    targets = [plan.member_id for plan in plans if plan.member_id is not None]
    missing = [t for t in targets if t not in current_by_id]  # adopted placeholder members
    lookup = _Lookup(session)
    for ids in lookup.chunks(missing):
        where = lookup.where_in(MEMBER.c.id, ids)
        for member in await session.execute(select(*MEMBER_COLUMNS).where(where)):
            current_by_id[member.id] = member
    for plan in plans:
        if plan.member_id is not None:
            ids_by_email[plan.record.email] = plan.member_id
    group_rows = await _load_by_member(
        session,
        MEMBER_GROUP,
        (MEMBER_GROUP.c.member_id, MEMBER_GROUP.c.name),
        [p.member_id for p in plans if p.member_id is not None and p.record.groups is not None],
    )
    account_rows = await _load_by_member(
        session,
        ACCOUNT,
        (
            ACCOUNT.c.id,
            ACCOUNT.c.member_id,
            ACCOUNT.c.platform,
            ACCOUNT.c.user_id,
            ACCOUNT.c.username,
        ),
        [p.member_id for p in plans if p.member_id is not None and p.record.accounts],
    )
    for plan in plans:
        _plan_changes(plan, current_by_id, ids_by_email, group_rows, account_rows)

    # 5. Write. New members go in manager-before-report order, so a report's manager_id is known
    #    when it is inserted instead of being patched by a second UPDATE per row; only members
    #    caught in a management cycle are linked afterwards.
    now = clock.now()
    done = parsed.rejected_rows + len(refused)
    creates = [plan for plan in plans if plan.is_new]
    batches = [batch for level in _creation_levels(creates) for batch in _chunks(level, chunk_size)]
    batches.extend(_chunks([plan for plan in plans if not plan.is_new], chunk_size))
    for batch in batches:
        await _write_batch(session, batch, ids_by_email, now, report)
        done = min(parsed.row_count, done + len(batch))
        if progress is not None:
            progress(done)
    fixups = [
        {"b_id": plan.member_id, "b_manager": ids_by_email[plan.record.manager_email or ""]}
        for plan in creates
        if plan.manager_fixup
    ]
    statement = (
        update(MEMBER)
        .where(MEMBER.c.id == bindparam("b_id"))
        .values(manager_id=bindparam("b_manager"))
    )
    for params in _chunks(fixups, chunk_size):
        await session.execute(statement, list(params))
    if progress is not None and (done < parsed.row_count or not batches):
        progress(parsed.row_count)  # also when every row was rejected: the bar must finish
    if session.get_bind().dialect.name == "postgresql" and report.created + report.updated >= 1000:
        # A bulk load leaves PostgreSQL's statistics describing the old, smaller tables until
        # autovacuum catches up; the next import's `email IN (...)` lookups were then planned as
        # sequential scans (minutes instead of seconds). Refresh them with the data.
        await session.execute(text("ANALYZE member, member_group, platform_account"))
    return report


def _creation_levels(creates: Sequence[_Plan]) -> list[list[_Plan]]:
    """New members grouped so every member's manager is in an earlier group (or not new).

    Level 0 has no new manager; level n is managed by someone at level n - 1. Members in a
    management cycle, or reporting into one, cannot be ordered: they form the last group, are
    inserted without a manager and get `manager_fixup` so the manager is set afterwards.
    """
    by_email = {plan.record.email: plan for plan in creates}
    level: dict[str, int] = {}
    cyclic: set[str] = set()
    for plan in creates:
        path: list[str] = []
        on_path: set[str] = set()
        email: str | None = plan.record.email
        base = -1
        while email is not None and email in by_email and email not in level:
            if email in cyclic or email in on_path:
                base = -2  # reaches a cycle
                break
            path.append(email)
            on_path.add(email)
            manager = by_email[email].record.manager_email
            email = manager if by_email[email].manager_is_new else None
        if base != -2 and email is not None and email in level:
            base = level[email]
        for depth, member in enumerate(reversed(path), start=1):
            if base == -2:
                cyclic.add(member)
            else:
                level[member] = base + depth
    groups: dict[int, list[_Plan]] = defaultdict(list)
    last: list[_Plan] = []
    for plan in creates:
        if plan.record.email in cyclic:
            plan.manager_fixup = plan.manager_is_new
            last.append(plan)
        else:
            groups[level[plan.record.email]].append(plan)
    ordered = [groups[key] for key in sorted(groups)]
    return [*ordered, last] if last else ordered


def _plan_changes(
    plan: _Plan,
    current_by_id: Mapping[int, Any],
    ids_by_email: Mapping[str, int],
    group_rows: Mapping[int, list[Any]],
    account_rows: Mapping[int, list[Any]],
) -> None:
    record = plan.record
    manager_id: int | None = None
    if record.sets_manager and record.manager_email:
        known = ids_by_email.get(record.manager_email)
        if known is None:
            plan.manager_is_new = True
        else:
            manager_id = known
    if plan.member_id is None:
        plan.merged = {
            **_DEFAULTS,
            "display_name": _default_name(record.email),
            **record.values,
            "email": record.email,
            "manager_id": manager_id,
        }
        plan.new_accounts = list(record.accounts)
        plan.groups_changed = bool(record.groups)
        return
    current = current_by_id[plan.member_id]._mapping
    merged = {name: current[name] for name in _MANAGED}
    merged.update(record.values)
    merged["email"] = record.email
    if record.sets_manager and not plan.manager_is_new:
        merged["manager_id"] = manager_id
    plan.merged = merged
    plan.member_changed = plan.manager_is_new or any(
        merged[name] != current[name] for name in _MANAGED
    )
    if record.groups is not None:
        have = {row.name for row in group_rows.get(plan.member_id, ())}
        plan.groups_changed = have != set(record.groups)
    held = account_rows.get(plan.member_id, ())
    for account in record.accounts:
        same = [r for r in held if r.platform == account.platform and r.user_id == account.user_id]
        if account.user_id.startswith("@") and any(
            r.platform == "telegram" and not r.user_id.startswith("@") for r in held
        ):
            continue  # already linked to a real Telegram account; Telegram knows its username
        if not same:
            plan.new_accounts.append(account)
        elif account.username and all(r.username != account.username for r in same):
            plan.username_updates.append((same[0].id, account.username))
    if record.replaces_pending_telegram:
        plan.pending_to_drop = [
            r.id for r in held if r.platform == "telegram" and r.user_id.startswith("@")
        ]


async def _write_batch(
    session: AsyncSession,
    batch: Sequence[_Plan],
    ids_by_email: dict[str, int],
    now: datetime,
    report: ImportReport,
) -> None:
    creates = [plan for plan in batch if plan.is_new]
    updates = [plan for plan in batch if not plan.is_new and plan.member_changed]
    report.created += len(creates)
    for plan in batch:
        if not plan.is_new:
            if plan.changed:
                report.updated += 1
            else:
                report.unchanged += 1

    for plan in batch:
        if plan.manager_is_new and not plan.manager_fixup:
            plan.merged["manager_id"] = ids_by_email[plan.record.manager_email or ""]
    if creates:
        rows = [{**plan.merged, "created_at": now, "updated_at": now} for plan in creates]
        # Matched back by email, not by position: SQLite does not promise RETURNING order, and
        # asking SQLAlchemy to sort would make it insert one row per statement.
        result = await session.execute(insert(MEMBER).returning(MEMBER.c.id, MEMBER.c.email), rows)
        ids_by_email.update({email: member_id for member_id, email in result.all()})
        for plan in creates:
            plan.member_id = ids_by_email[plan.record.email]

    if updates:
        statement = (
            update(MEMBER)
            .where(MEMBER.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}") for name in (*_MANAGED, "updated_at")})
        )
        await session.execute(
            statement,
            [
                {
                    "b_id": plan.member_id,
                    "b_updated_at": now,
                    **{f"b_{name}": plan.merged[name] for name in _MANAGED},
                }
                for plan in updates
            ],
        )

    regroup = [plan.member_id for plan in batch if plan.groups_changed and not plan.is_new]
    for chunk in _chunks(regroup, IN_CHUNK):
        await session.execute(delete(MEMBER_GROUP).where(MEMBER_GROUP.c.member_id.in_(chunk)))
    group_rows = [
        {"member_id": plan.member_id, "name": name}
        for plan in batch
        if plan.groups_changed
        for name in plan.record.groups or ()
    ]
    if group_rows:
        await session.execute(insert(MEMBER_GROUP), group_rows)

    dropped = [account_id for plan in batch for account_id in plan.pending_to_drop]
    for chunk in _chunks(dropped, IN_CHUNK):
        await session.execute(delete(ACCOUNT).where(ACCOUNT.c.id.in_(chunk)))
    account_rows = [
        {
            "member_id": plan.member_id,
            "platform": account.platform,
            "tenant": "",
            "user_id": account.user_id,
            "username": account.username,
            "created_at": now,
        }
        for plan in batch
        for account in plan.new_accounts
    ]
    if account_rows:
        await session.execute(insert(ACCOUNT), account_rows)
    renames = [
        {"b_id": account_id, "b_username": username}
        for plan in batch
        for account_id, username in plan.username_updates
    ]
    if renames:
        await session.execute(
            update(ACCOUNT)
            .where(ACCOUNT.c.id == bindparam("b_id"))
            .values(username=bindparam("b_username")),
            renames,
        )
