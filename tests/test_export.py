"""Exports on SQLite and PostgreSQL: every kind's header and columns, the period filter in the
organisation's zone, JSON Lines, the chunked read (keyset paging over a two-column key), the
participation aggregate, the CLI and the API's streaming downloads with their scope refusals."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bots.cli import cli
from rewards.admin.audit import Actor
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.economy.shop.file import parse_shop
from rewards.exports import stream
from rewards.exports.files import OutgoingFile, export_file
from rewards.exports.kinds import KINDS
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.migrate import upgrade
from rewards.store.models import Award, LedgerEntry, Nomination, NominationCampaign
from tests.conftest import _Backends
from tests.factories import add_member, add_reward
from tests.support.api import api_client

OSLO = "Europe/Oslo"


@dataclass
class Org:
    core: Core
    ids: dict[str, int]


@asynccontextmanager
async def organisation(database: Database, clock: FixedClock) -> AsyncIterator[Org]:
    """Ana and Bo (Engineering), Cy (Sales), Di (no department); kudos in October and November
    (one at 23:30 UTC on Oct 31, which is already November in Oslo), a badge, a nomination and a
    redemption."""
    settings = Settings(
        database_url=database.url, catalog_files=(), reward_scheduler=False, timezone=OSLO
    )
    core = Core(settings=settings, db=database, clock=clock)
    ids = {
        "ana": await add_member(database, "Ana Lopez"),
        "bo": await add_member(database, "Bo Smith"),
        "cy": await add_member(database, "Cy Young", department="Sales"),
        "di": await add_member(database, "Di Noone", department=None),
    }
    clock.set(datetime(2026, 10, 5, 12, 0, tzinfo=UTC))
    await core.kudos.give(ids["ana"], [ids["bo"], ids["cy"]], "=SUM(A1) great demo", ["teamwork"])
    clock.set(datetime(2026, 10, 31, 23, 30, tzinfo=UTC))  # November 1st in Oslo
    await core.kudos.give(ids["cy"], [ids["ana"]], "thanks for the review")
    clock.set(datetime(2026, 11, 10, 9, 0, tzinfo=UTC))
    await core.kudos.give(ids["bo"], [ids["ana"], ids["di"]], "ship it")
    await add_reward(database, reward_id=501, reward="Star", points=20)
    await add_reward(database, reward_id=502, reward="MVP", reward_type="Nomination Badge")
    async with database.write() as session:
        award = Award(
            reward_id=501,
            member_id=ids["bo"],
            giver_id=ids["ana"],
            points=20,
            source="user",
            award_key="t:1",
            message="well done",
            awarded_at=clock.now(),
        )
        session.add(award)
        await session.flush()
        session.add(
            LedgerEntry(
                member_id=ids["bo"],
                points=20,
                kind="award",
                award_id=award.id,
                created_at=clock.now(),
            )
        )
        campaign = NominationCampaign(
            key="c1",
            reward_id=502,
            opened_at=clock.now(),
            nominations_close_at=clock.now() + timedelta(days=7),
            voting_close_at=clock.now() + timedelta(days=14),
        )
        session.add(campaign)
        await session.flush()
        assert campaign.id is not None
        session.add(
            Nomination(
                campaign_id=campaign.id,
                nominator_id=ids["cy"],
                nominee_id=ids["ana"],
                reason="always helps",
                created_at=clock.now(),
            )
        )
    await core.shop.load(parse_shop([{"item_id": 1, "name": "Mug", "cost": 5}]))
    await core.shop.redeem(ids["bo"], "Mug", "blue please")
    clock.set(datetime(2026, 11, 18, 15, 0, tzinfo=UTC))
    yield Org(core, ids)


async def read(file: OutgoingFile) -> bytes:
    return b"".join([piece async for piece in file.open()])


async def export_csv(core: Core, kind: str, **period: str) -> list[dict[str, str]]:
    recipe = {"what": "export", "kind": kind, "format": "csv", **period}
    text = (await read(export_file(core.db, core.settings, recipe))).decode()
    lines = list(csv.reader(io.StringIO(text)))
    assert tuple(lines[0]) == KINDS[kind].columns  # the header row, the stated columns
    return [dict(zip(lines[0], line, strict=True)) for line in lines[1:]]


async def test_every_kind_has_its_columns_and_rows(
    database: Database, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "CHUNK", 2)  # several chunks, over the two-column kudos key
    async with organisation(database, clock) as org:
        kudos = await export_csv(org.core, "kudos")
        assert [(k["giver_name"], k["receiver_name"]) for k in kudos] == [
            ("Ana Lopez", "Bo Smith"),
            ("Ana Lopez", "Cy Young"),
            ("Cy Young", "Ana Lopez"),
            ("Bo Smith", "Ana Lopez"),
            ("Bo Smith", "Di Noone"),
        ]
        first = kudos[0]
        assert first["created_at"] == "2026-10-05T12:00:00Z"
        assert first["giver_email"] == "ana.lopez@example.com"
        assert first["points"] == "5" and first["tags"] == "teamwork"
        assert first["message"].startswith("'=SUM(A1)")  # a formula is defused, not run
        assert first["receiver_department"] == "Engineering"
        assert first["revoked_at"] == first["revoke_reason"] == ""

        [award] = await export_csv(org.core, "awards")
        assert (award["reward_name"], award["member_email"], award["giver_email"]) == (
            "Star",
            "bo.smith@example.com",
            "ana.lopez@example.com",
        )
        assert award["points"] == "20" and award["revoked_at"] == ""

        ledger = await export_csv(org.core, "ledger")
        assert sorted((e["kind"], e["member_name"], e["points"]) for e in ledger) == sorted(
            [("kudos", n, "5") for n in ("Bo Smith", "Cy Young", "Ana Lopez", "Ana Lopez")]
            + [("kudos", "Di Noone", "5"), ("award", "Bo Smith", "20")]
        )

        members = await export_csv(org.core, "members")
        assert [m["email"] for m in members] == [
            "ana.lopez@example.com",
            "bo.smith@example.com",
            "cy.young@example.com",
            "di.noone@example.com",
        ]
        assert members[3]["department"] == "" and members[0]["active"] == "true"

        [nomination] = await export_csv(org.core, "nominations")
        assert (nomination["nominator_email"], nomination["nominee_name"]) == (
            "cy.young@example.com",
            "Ana Lopez",
        )
        assert nomination["reward_name"] == "MVP" and nomination["reason"] == "always helps"

        [redemption] = await export_csv(org.core, "redemptions")
        assert (redemption["member_email"], redemption["item_name"], redemption["cost"]) == (
            "bo.smith@example.com",
            "Mug",
            "5",
        )
        assert redemption["state"] == "approved" and redemption["note"] == "blue please"

        # A revoked kudos stays in the export, saying when and why.
        await org.core.admin.revoke_kudos(int(first["kudos_id"]), "sent twice", Actor.cli())
        again = (await export_csv(org.core, "kudos"))[0]
        assert (
            again["revoked_at"] == "2026-11-18T15:00:00Z" and again["revoke_reason"] == "sent twice"
        )


async def test_the_period_is_local_days_and_participation_counts_people_and_kudos(
    database: Database, clock: FixedClock
) -> None:
    async with organisation(database, clock) as org:
        # Oct 31 23:30 UTC is November 1st in Oslo: in November, not in October.
        october = await export_csv(org.core, "kudos", **{"from": "2026-10-01", "to": "2026-10-31"})
        assert {k["message"][:8] for k in october} == {"'=SUM(A1"}
        november = await export_csv(org.core, "kudos", **{"from": "2026-11-01"})
        assert len(november) == 3
        assert await export_csv(org.core, "ledger", to="2026-09-30") == []

        rows = await export_csv(org.core, "participation")
        table = {(r["department"], r["month"]): r for r in rows}
        assert set(table) == {
            ("Engineering", "2026-10"),
            ("Sales", "2026-10"),
            ("Engineering", "2026-11"),
            ("Sales", "2026-11"),
            ("", "2026-11"),
        }
        october_eng = table[("Engineering", "2026-10")]
        assert (october_eng["active_givers"], october_eng["kudos_given"]) == ("1", "1")
        assert (october_eng["active_receivers"], october_eng["kudos_received"]) == ("1", "1")
        assert october_eng["members"] == "2"
        november_eng = table[("Engineering", "2026-11")]
        # Bo gave one kudos to two people; Ana received from Cy and from Bo.
        assert (november_eng["active_givers"], november_eng["kudos_given"]) == ("1", "1")
        assert (november_eng["active_receivers"], november_eng["kudos_received"]) == ("1", "2")
        assert table[("Sales", "2026-11")]["kudos_given"] == "1"
        assert table[("", "2026-11")]["kudos_received"] == "1"


async def test_jsonl_has_one_object_per_row(database: Database, clock: FixedClock) -> None:
    async with organisation(database, clock) as org:
        recipe = {"what": "export", "kind": "redemptions", "format": "jsonl"}
        file = export_file(org.core.db, org.core.settings, recipe)
        assert file.name == "redemptions-all.jsonl" and file.content_type == "application/x-ndjson"
        [line] = (await read(file)).decode().splitlines()
        record = json.loads(line)
        assert list(record) == list(KINDS["redemptions"].columns)
        assert record["cost"] == 5 and record["decided_at"].endswith("Z")
        assert record["fulfilled_at"] is None


async def test_the_api_streams_exports_to_admin_keys_only(
    database: Database, clock: FixedClock
) -> None:
    async with organisation(database, clock), api_client(database, clock) as api:
        url = "/rewards/api/v1/exports/kudos?from=2026-10-31&format=csv"  # UTC here
        for scope in ("read", "write"):
            refused = await api.client.get(url, headers=api.auth(scope))
            assert refused.status == 403, scope
            assert refused.content_type == "application/problem+json"
        answer = await api.client.get(url, headers=api.auth("admin"))
        assert answer.status == 200
        assert answer.headers["Content-Disposition"] == (
            'attachment; filename="kudos-2026-10-31_now.csv"'
        )
        assert answer.headers.get("Transfer-Encoding") == "chunked"
        lines = (await answer.text()).splitlines()
        assert lines[0].split(",") == list(KINDS["kudos"].columns) and len(lines) == 4

        for bad, words in (
            ("/rewards/api/v1/exports/bananas", "I don't know the export 'bananas'"),
            ("/rewards/api/v1/exports/ledger?from=2026-13-01", "must be a date"),
            ("/rewards/api/v1/exports/ledger?format=xlsx", "csv or jsonl"),
            ("/rewards/api/v1/exports/ledger?from=2026-11-02&to=2026-11-01", "after it ends"),
        ):
            problem = await api.client.get(bad, headers=api.auth("admin"))
            assert problem.status == 422, bad
            assert problem.content_type == "application/problem+json"
            assert words in (await problem.json())["detail"]

        data = await api.client.get(
            "/rewards/api/v1/members/bo.smith@example.com/data", headers=api.auth("admin")
        )
        assert data.status == 200 and "attachment" in data.headers["Content-Disposition"]
        document: dict[str, Any] = json.loads(await data.read())
        assert document["profile"]["email"] == "bo.smith@example.com"
        assert [r["item_name"] for r in document["redemptions"]] == ["Mug"]
        refused = await api.client.get(
            "/rewards/api/v1/members/bo.smith@example.com/data", headers=api.auth("write")
        )
        assert refused.status == 403


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_url(request: pytest.FixtureRequest, tmp_path: Path, _backends: _Backends) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'export.db'}"
    return asyncio.run(_backends.create_pg_database("export_cli"))


def test_the_command_line_writes_a_file_and_refuses_bad_input(cli_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": cli_url, "REWARDS_ENV_FILE": str(tmp_path / "no.env")}
    upgrade(cli_url)

    async def seed() -> None:
        db = Database(cli_url)
        try:
            clock = FixedClock(datetime(2026, 11, 18, 15, 0, tzinfo=UTC))
            settings = Settings(database_url=cli_url, catalog_files=(), reward_scheduler=False)
            core = Core(settings=settings, db=db, clock=clock)
            ana, bo = await add_member(db, "Ana Lopez"), await add_member(db, "Bo Smith")
            await core.kudos.give(ana, [bo], "thanks, Bo")
            await core.hooks.drain()
        finally:
            await db.dispose()

    asyncio.run(seed())
    runner = CliRunner()
    out = tmp_path / "kudos.jsonl"
    done = runner.invoke(
        cli,
        ["export", "kudos", "--from", "2026-11-01", "--format", "jsonl", "-o", str(out)],
        env=env,
    )
    assert done.exit_code == 0, done.output
    assert "1 rows written" in done.output and "Exporting" not in done.output  # no bar: no TTY
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    assert (record["giver_name"], record["receiver_name"]) == ("Ana Lopez", "Bo Smith")

    to_stdout = runner.invoke(cli, ["export", "members"], env=env)
    assert to_stdout.exit_code == 0
    assert to_stdout.output.splitlines()[0] == ",".join(KINDS["members"].columns)

    never = tmp_path / "never.csv"
    bad = runner.invoke(
        cli, ["export", "ledger", "--from", "2026-02-30", "-o", str(never)], env=env
    )
    assert bad.exit_code == 1 and "must be a date" in bad.output
    assert not never.exists()  # refused before any file is opened
