"""Importing members from HR data (CSV and JSON), and the `rewards members` commands."""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
from contextlib import closing
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from bots.commands.members import members
from rewards.clock import FixedClock
from rewards.services.members import (
    MEMBER,
    MemberView,
    ensure_member_for_account,
    find_by_account,
    find_by_email,
    get_member,
    list_members,
)
from rewards.services.members_import import (
    ImportReport,
    MemberImportError,
    RejectedRow,
    import_members,
    read_members_file,
)
from rewards.store.db import Database
from rewards.store.migrate import upgrade

DATA = Path(__file__).parent / "data" / "members"
HEADER = "email,display_name,department,manager_email,birthday,timezone,active\n"


def _write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


async def _member(db: Database, email: str) -> MemberView:
    found = await find_by_email(db, email)
    assert found is not None, f"{email} was not imported"
    return found


async def _member_count(db: Database) -> int:
    async with db.read() as session:
        return int((await session.execute(select(func.count()).select_from(MEMBER))).scalar_one())


def _by_line(report: ImportReport) -> dict[int, RejectedRow]:
    return {row.line: row for row in report.rejected}


async def _check_hr_export(db: Database, report: ImportReport) -> None:
    """What tests/data/members/hr_export.{csv,json} must produce."""
    assert (report.created, report.updated, report.unchanged) == (4, 0, 0)
    assert report.rejected == []
    ana = await _member(db, "ana.lopez@example.com")
    lee = await _member(db, "lee.chen@example.com")
    maria = await _member(db, "maria.garcia@example.com")
    sam = await _member(db, "sam.o'neil@example.com")

    assert ana.display_name == "Ana López"
    assert ana.job_code == "ENG2" and ana.department == "Engineering"
    assert set(ana.groups) == {"Engineering", "Release Crew"}
    assert ana.manager_id == lee.id  # the manager's row comes later in the file
    assert (ana.birthday, ana.birth_year) == ((2, 28), 1990)
    assert ana.hire_date == date(2019, 4, 1)
    assert (ana.timezone, ana.locale) == ("Europe/Madrid", "es-ES")
    assert {(a.platform, a.user_id, a.username) for a in ana.accounts} == {
        ("teams", "6f1c2b2e-9f0a-4c1e-8d7a-2b9b1f3e4a5c", None),
        ("slack", "U01ANA", None),
        ("telegram", "@ana_lopez", "ana_lopez"),  # known by username until they write
    }

    assert maria.display_name == "Maria Garcia"  # from the email when the name is blank
    assert (maria.birthday, maria.birth_year) == ((2, 29), None)
    assert maria.locale == "es-MX"
    assert maria.leaderboard_opt_out and not maria.celebrations_opt_out
    assert ("telegram", "5550001") in {(a.platform, a.user_id) for a in maria.accounts}

    assert lee.manager_id is None and lee.celebrations_opt_out
    assert sam.display_name == "O'Neil, Sam" and not sam.active and sam.manager_id == ana.id
    assert sam.groups == ()


async def test_csv_export_imports_every_field(database: Database, clock: FixedClock) -> None:
    report = await import_members(database, DATA / "hr_export.csv", clock=clock)
    await _check_hr_export(database, report)


async def test_json_export_imports_every_field(database: Database) -> None:
    report = await import_members(database, DATA / "hr_export.json")
    await _check_hr_export(database, report)


async def test_a_plain_json_list_works_too(database: Database, tmp_path: Path) -> None:
    items = json.loads((DATA / "hr_export.json").read_text(encoding="utf-8"))["members"]
    path = _write(tmp_path, "people.json", json.dumps(items))
    await _check_hr_export(database, await import_members(database, path))


@pytest.mark.parametrize("delimiter", [";", "\t"])
async def test_semicolon_and_tab_files_are_recognised(
    database: Database, tmp_path: Path, delimiter: str
) -> None:
    with (DATA / "hr_export.csv").open(encoding="utf-8", newline="") as source:
        rows = list(csv.reader(source))
    path = tmp_path / "people.csv"
    with path.open("w", encoding="utf-8", newline="") as target:
        csv.writer(target, delimiter=delimiter).writerows(rows)
    await _check_hr_export(database, await import_members(database, path))


async def test_reimport_counts_unchanged_rows_and_applies_changes(
    database: Database, tmp_path: Path
) -> None:
    first = _write(
        tmp_path,
        "v1.csv",
        "email,department,groups\n"
        "a@example.com,Sales,North;South\n"
        "b@example.com,Sales,North\n"
        "c@example.com,Support,\n",
    )
    assert (await import_members(database, first)).created == 3
    again = await import_members(database, first)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)

    second = _write(
        tmp_path,
        "v2.csv",
        "email,department,groups\n"
        "a@example.com,Sales,South\n"
        "b@example.com,Marketing,North\n"
        "c@example.com,Support,\n"
        "d@example.com,Support,West\n",
    )
    report = await import_members(database, second)
    assert (report.created, report.updated, report.unchanged) == (1, 2, 1)
    assert (await _member(database, "a@example.com")).groups == ("South",)
    assert (await _member(database, "b@example.com")).department == "Marketing"
    assert (await _member(database, "d@example.com")).groups == ("West",)


async def test_absent_columns_and_blank_flags_leave_data_alone(
    database: Database, tmp_path: Path
) -> None:
    full = _write(
        tmp_path,
        "full.csv",
        "email,job_code,department,timezone,leaderboard_opt_out\n"
        "a@example.com,ENG,Engineering,Europe/Madrid,true\n",
    )
    await import_members(database, full)
    partial = _write(
        tmp_path, "partial.csv", "email,department,leaderboard_opt_out\na@example.com,Sales,\n"
    )
    report = await import_members(database, partial)
    assert report.updated == 1
    ana = await _member(database, "a@example.com")
    assert ana.department == "Sales"
    assert ana.job_code == "ENG" and ana.timezone == "Europe/Madrid"
    assert ana.leaderboard_opt_out  # a blank cell must not undo the member's own choice


async def test_each_bad_row_is_rejected_with_its_line_and_every_reason(
    database: Database, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        "people.csv",
        HEADER
        + "ana@example.com,Ana,Sales,,,,\n"  # 2 good
        + "not-an-email,Bad,Sales,,,Mars/Olympus,\n"  # 3 two problems
        + "bo@example.com,Bo,Sales,,02-30,,\n"  # 4 no such day
        + 'cy@example.com,"Cy\nSmith",Sales,,,,maybe\n'  # 5-6 one row over two lines
        + "di@example.com,Di,Sales,,,,\n"  # 7 good
        + "ANA@example.com,Ana again,Sales,,,,\n"  # 8 duplicate of line 2
        + "ed@example.com,Ed,Sales\n"  # 9 too few fields
        + "fe@example.com,Fe,Sales,ghost@example.com,,,\n",  # 10 manager unknown
    )
    report = await import_members(database, path)
    assert report.created == 2
    rejected = _by_line(report)
    assert sorted(rejected) == [3, 4, 5, 8, 9, 10]
    assert rejected[3].reasons == (
        "email 'not-an-email' is not a valid email address",
        "timezone 'Mars/Olympus' is not an IANA time zone such as Europe/Madrid",
    )
    assert rejected[4].reasons == ("birthday '02-30' is not a real day of the year",)
    assert rejected[5].email == "cy@example.com"
    assert rejected[5].reasons == ("active 'maybe' is not true or false",)
    assert rejected[8].reasons == ("email ana@example.com is already on line 2",)
    assert rejected[9].reasons[0].startswith("has 3 fields but the header has 7")
    assert rejected[10].reasons == (
        "manager_email ghost@example.com is neither a member nor in this file",
    )
    assert str(rejected[10]) == (
        "line 10 (fe@example.com): manager_email ghost@example.com is neither a member nor in"
        " this file"
    )
    # The earlier of two duplicate rows wins.
    assert (await _member(database, "ana@example.com")).display_name == "Ana"


async def test_json_rejections_name_the_item(database: Database, tmp_path: Path) -> None:
    items = [
        {"email": "ana@example.com"},
        "bob@example.com",
        {"email": "cy@example.com", "hire_date": "15/01/2020", "groups": {"a": 1}},
        {"display_name": "No Email"},
    ]
    report = await import_members(database, _write(tmp_path, "people.json", json.dumps(items)))
    assert report.created == 1
    assert [str(row) for row in report.rejected] == [
        "item 2: is text, not an object",
        "item 3 (cy@example.com): groups: expected text, got an object;"
        " hire_date '15/01/2020' is not a date in the form YYYY-MM-DD",
        "item 4: email is missing",
    ]


async def test_manager_may_be_a_later_row_or_an_existing_member(
    database: Database, tmp_path: Path
) -> None:
    await import_members(database, _write(tmp_path, "boss.csv", "email\nboss@example.com\n"))
    path = _write(
        tmp_path,
        "team.csv",
        "email,manager_email\n"
        "ana@example.com,lee@example.com\n"
        "lee@example.com,boss@example.com\n"
        "cy@example.com,zed@example.com\n"  # zed's row is rejected below
        "zed@example.com,zed@example.com\n",
    )
    report = await import_members(database, path)
    assert report.created == 2
    rejected = _by_line(report)
    assert rejected[5].reasons == ("manager_email is the member's own email",)
    assert rejected[4].reasons == (
        "manager_email zed@example.com is on line 5, which was rejected",
    )
    boss = await _member(database, "boss@example.com")
    lee = await _member(database, "lee@example.com")
    assert lee.manager_id == boss.id
    assert (await _member(database, "ana@example.com")).manager_id == lee.id


async def test_managers_link_across_batches_and_cycles(database: Database, tmp_path: Path) -> None:
    """Reports before managers, over several write batches, plus a two-person cycle."""
    rows = ["email,manager_email"]
    rows += [f"p{i}@example.com,p{i + 1}@example.com" for i in range(24)]
    rows += ["p24@example.com,", "x@example.com,y@example.com", "y@example.com,x@example.com"]
    path = _write(tmp_path, "chain.csv", "\n".join(rows) + "\n")
    seen: list[int] = []
    report = await import_members(database, path, chunk_size=4, progress=seen.append)
    assert report.created == 27 and report.rejected == []
    assert seen == sorted(seen) and seen[-1] == 27 and len(seen) > 5
    people = {m.email: m for m in await list_members(database, limit=100)}
    for i in range(24):
        assert people[f"p{i}@example.com"].manager_id == people[f"p{i + 1}@example.com"].id
    assert people["p24@example.com"].manager_id is None
    assert people["x@example.com"].manager_id == people["y@example.com"].id
    assert people["y@example.com"].manager_id == people["x@example.com"].id


async def test_birthdays_accept_february_29_only_when_it_exists(
    database: Database, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        "birthdays.csv",
        "email,birthday\n"
        "leap@example.com,02-29\n"
        "leapyear@example.com,2024-02-29\n"
        "notleap@example.com,2023-02-29\n"
        "words@example.com,May 1st\n",
    )
    report = await import_members(database, path)
    assert report.created == 2
    assert (await _member(database, "leap@example.com")).birthday == (2, 29)
    leapyear = await _member(database, "leapyear@example.com")
    assert (leapyear.birthday, leapyear.birth_year) == ((2, 29), 2024)
    assert _by_line(report)[4].reasons == (
        "birthday '2023-02-29' is not in the form MM-DD or YYYY-MM-DD",
    )
    assert _by_line(report)[5].reasons == (
        "birthday 'May 1st' is not in the form MM-DD or YYYY-MM-DD",
    )


async def test_time_zones_must_be_iana_names(database: Database, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "zones.csv",
        "email,timezone\n"
        "a@example.com,America/Argentina/Buenos_Aires\n"
        "b@example.com,CEST\n"
        "c@example.com,../../etc/passwd\n",
    )
    report = await import_members(database, path)
    assert report.created == 1
    assert sorted(_by_line(report)) == [3, 4]
    assert "CEST" in _by_line(report)[3].reasons[0]


async def test_unknown_columns_are_reported_once_and_ignored(
    database: Database, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        "people.csv",
        "email,departmnet,fax\na@example.com,Sales,123\nb@example.com,Sales,456\n",
    )
    report = await import_members(database, path)
    assert report.created == 2
    assert report.rejected == [
        RejectedRow(
            1,
            None,
            (
                "unknown column 'departmnet' was ignored; did you mean 'department'?",
                "unknown column 'fax' was ignored",
            ),
        )
    ]
    assert (await _member(database, "a@example.com")).department is None

    items = [{"email": "c@example.com", "Phone": "1"}, {"email": "d@example.com", "phone": "2"}]
    report = await import_members(database, _write(tmp_path, "more.json", json.dumps(items)))
    assert report.created == 2
    assert [str(row) for row in report.rejected] == [
        "item 1 (c@example.com): unknown field 'phone' was ignored (in every item)"
    ]


async def test_platform_ids_belong_to_one_member_only(database: Database, tmp_path: Path) -> None:
    await ensure_member_for_account(database, "slack", "U0BOB", email="bob@example.com")
    path = _write(
        tmp_path,
        "people.csv",
        "email,slack_user_id,teams_aad_id\n"
        "ana@example.com,U0BOB,\n"
        "cy@example.com,,0b7e6a3c-1d2e-4f50-9a8b-7c6d5e4f3a2b\n"
        "di@example.com,,0B7E6A3C-1D2E-4F50-9A8B-7C6D5E4F3A2B\n"
        "ed@example.com,U 0 ED,not-a-guid\n",
    )
    report = await import_members(database, path)
    rejected = _by_line(report)
    assert rejected[2].reasons == ("slack_user_id U0BOB already belongs to bob@example.com",)
    assert rejected[4].reasons == (
        "teams_aad_id 0b7e6a3c-1d2e-4f50-9a8b-7c6d5e4f3a2b is already on line 3",
    )
    assert len(rejected[5].reasons) == 2
    assert report.created == 1
    bob = await find_by_account(database, "slack", "U0BOB")
    assert bob is not None and bob.email == "bob@example.com"


async def test_import_gives_a_telegram_first_member_their_real_email(
    database: Database, tmp_path: Path
) -> None:
    stranger = await ensure_member_for_account(database, "telegram", "4242", username="ana_l")
    path = _write(
        tmp_path,
        "people.csv",
        "email,display_name,telegram_user_id\nana@example.com,Ana López,4242\n",
    )
    report = await import_members(database, path)
    assert (report.created, report.updated) == (0, 1)
    ana = await get_member(database, stranger.id)
    assert ana.email == "ana@example.com" and ana.display_name == "Ana López"
    assert await _member_count(database) == 1


async def test_a_telegram_id_replaces_the_username_placeholder(
    database: Database, tmp_path: Path
) -> None:
    first = _write(tmp_path, "v1.csv", "email,telegram_username\nana@example.com,@Ana_L\n")
    await import_members(database, first)
    assert (await _member(database, "ana@example.com")).accounts[0].user_id == "@ana_l"
    second = _write(
        tmp_path,
        "v2.csv",
        "email,telegram_username,telegram_user_id\nana@example.com,ana_l,987654\n",
    )
    report = await import_members(database, second)
    assert report.updated == 1
    accounts = (await _member(database, "ana@example.com")).accounts
    assert [(a.platform, a.user_id, a.username) for a in accounts] == [
        ("telegram", "987654", "ana_l")
    ]


async def test_progress_finishes_even_when_every_row_is_rejected(
    database: Database, tmp_path: Path
) -> None:
    path = _write(tmp_path, "people.csv", "email\nnot-an-email\nalso bad\n")
    seen: list[int] = []
    report = await import_members(database, path, progress=seen.append)
    assert len(report.rejected) == 2
    assert seen == [2]


async def test_a_file_without_an_email_column_imports_nothing(
    database: Database, tmp_path: Path
) -> None:
    await ensure_member_for_account(database, "slack", "U0BOB", email="bob@example.com")
    path = _write(tmp_path, "people.csv", "mail,department\nana@example.com,Sales\n")
    with pytest.raises(MemberImportError, match="has no 'email' column"):
        await import_members(database, path)
    assert await _member_count(database) == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("people.json", b'[{"email": "a@example.com",}]', "is not valid JSON"),
        ("people.json", b'{"people": []}', "must hold a list of members"),
        ("people.xlsx", b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xff\xfe", "not UTF-8"),
        ("people.csv", b"   \n", "is empty"),
    ],
)
async def test_unusable_files_are_fatal(
    database: Database, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MemberImportError, match=message):
        await import_members(database, path)
    with pytest.raises(MemberImportError, match="Cannot read the members file"):
        await import_members(database, tmp_path / "missing.csv")
    assert await _member_count(database) == 0


async def test_an_abort_after_the_first_batch_leaves_no_rows(
    database: Database, tmp_path: Path
) -> None:
    lines = "".join(f"p{i}@example.com,Engineering;Crew\n" for i in range(25))
    path = _write(tmp_path, "people.csv", "email,groups\n" + lines)
    calls: list[int] = []

    def interrupt(done: int) -> None:
        calls.append(done)
        raise RuntimeError("operator pressed Ctrl-C")

    with pytest.raises(RuntimeError):
        await import_members(database, path, chunk_size=10, progress=interrupt)
    assert calls == [10]
    assert await _member_count(database) == 0


async def test_a_database_failure_mid_import_is_typed_and_rolls_back(
    database: Database, tmp_path: Path
) -> None:
    """The database itself refuses the group rows, after the members went in."""
    if database.dialect == "postgresql":
        create = [
            "CREATE FUNCTION refuse_groups() RETURNS trigger AS $$"
            " BEGIN RAISE EXCEPTION 'groups are read-only today'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_groups BEFORE INSERT ON member_group"
            " FOR EACH ROW EXECUTE FUNCTION refuse_groups()",
        ]
        drop = [
            "DROP TRIGGER refuse_groups ON member_group",
            "DROP FUNCTION refuse_groups()",
        ]
    else:
        create = [
            "CREATE TRIGGER refuse_groups BEFORE INSERT ON member_group"
            " BEGIN SELECT RAISE(ABORT, 'groups are read-only today'); END"
        ]
        drop = ["DROP TRIGGER refuse_groups"]
    async with database.write() as session:
        for statement in create:
            await session.execute(text(statement))
    try:
        path = _write(tmp_path, "people.csv", "email,groups\na@example.com,Sales\n")
        with pytest.raises(MemberImportError, match="nothing was imported") as caught:
            await import_members(database, path)
        assert "SELECT" not in str(caught.value) and "INSERT" not in str(caught.value)
        assert await _member_count(database) == 0
    finally:
        async with database.write() as session:
            for statement in drop:
                await session.execute(text(statement))


def test_reading_counts_rows_for_a_progress_bar(tmp_path: Path) -> None:
    parsed = read_members_file(DATA / "hr_export.csv")
    assert (parsed.format, parsed.row_count, len(parsed.records)) == ("csv", 4, 4)
    blank = _write(tmp_path, "blank.csv", "email\n\na@example.com\n,\n\n")
    assert read_members_file(blank).row_count == 1


# --- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Settings for the CLI: a fresh SQLite file and no env file."""
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "REWARDS_ENV_FILE": str(tmp_path / "no.env"),
    }


def _sqlite_count(env: dict[str, str], table: str) -> int:
    path = env["DATABASE_URL"].removeprefix("sqlite:///")
    upgrade(f"sqlite+aiosqlite:///{path}")
    with closing(sqlite3.connect(path)) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_cli_import_prints_a_summary_and_exits_0(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(members, ["import", str(DATA / "hr_export.csv")], env=cli_env)
    assert result.exit_code == 0, result.output
    assert result.stdout == "created: 4, updated: 0, unchanged: 0, rejected: 0\n"
    again = CliRunner().invoke(members, ["import", str(DATA / "hr_export.csv")], env=cli_env)
    assert again.stdout == "created: 0, updated: 0, unchanged: 4, rejected: 0\n"


def test_cli_import_lists_rejected_rows_and_exits_1(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        "people.csv",
        "email,timezone,birthday\n"
        "ana@example.com,UTC,\n"
        "bob@example.com,Nowhere,13-13\n"
        "ana@example.com,UTC,\n",
    )
    result = CliRunner().invoke(members, ["import", str(path)], env=cli_env)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "created: 1, updated: 0, unchanged: 0, rejected: 2",
        "line 3 (bob@example.com): birthday '13-13' is not a real day of the year;"
        " timezone 'Nowhere' is not an IANA time zone such as Europe/Madrid",
        "line 4 (ana@example.com): email ana@example.com is already on line 2",
    ]
    assert _sqlite_count(cli_env, "member") == 1


def test_cli_import_of_an_unusable_file_exits_2_and_imports_nothing(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    path = _write(tmp_path, "people.csv", "name,department\nAna,Sales\n")
    result = CliRunner().invoke(members, ["import", str(path)], env=cli_env)
    assert result.exit_code == 2
    assert "has no 'email' column" in result.stderr
    assert "Nothing was imported." in result.stderr
    assert result.stdout == ""
    assert _sqlite_count(cli_env, "member") == 0


def test_cli_list_and_show(cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    runner.invoke(members, ["import", str(DATA / "hr_export.csv")], env=cli_env)

    listed = runner.invoke(members, ["list", "--department", "engineering"], env=cli_env)
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["id", "email", "name", "department", "groups"]
    assert sorted(line.split()[1] for line in lines[1:]) == [
        "ana.lopez@example.com",
        "lee.chen@example.com",
    ]
    limited = runner.invoke(members, ["list", "--all", "--limit", "1"], env=cli_env)
    assert len(limited.stdout.splitlines()) == 2
    nobody = runner.invoke(members, ["list", "--group", "nobody"], env=cli_env)
    assert nobody.stdout == "No members found.\n"

    shown = runner.invoke(members, ["show", "slack:U01ANA"], env=cli_env)
    assert shown.exit_code == 0
    assert "email:           ana.lopez@example.com" in shown.stdout
    assert "manager:         Lee Chen <lee.chen@example.com>" in shown.stdout
    assert "birthday:        02-28" in shown.stdout
    assert "1990" not in shown.stdout

    unknown = runner.invoke(members, ["show", "ghost@example.com"], env=cli_env)
    assert unknown.exit_code == 1
    assert unknown.stderr == "I don't know anyone called ghost@example.com.\n"


def test_cli_helpers_see_the_same_database(cli_env: dict[str, str]) -> None:
    """The CLI writes where the services read: a member imported by the CLI is listed."""
    CliRunner().invoke(members, ["import", str(DATA / "hr_export.json")], env=cli_env)
    url = "sqlite+aiosqlite:///" + cli_env["DATABASE_URL"].removeprefix("sqlite:///")

    async def listed() -> list[str]:
        db = Database(url)
        try:
            return [m.email for m in await list_members(db, active=None)]
        finally:
            await db.dispose()

    assert len(asyncio.run(listed())) == 4
