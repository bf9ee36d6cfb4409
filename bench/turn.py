"""What one Slack `/kudos` costs: SQL statements, commits, pool checkouts and CPU per kudos.

A real slack-bolt app (the project's `create_app` with Slack mounted) in this process, signed
slash commands posted to it through aiohttp's test server, a fake Slack Web API on loopback
(`tests.support.slack_api`), and a fresh PostgreSQL database holding `--members` members (the
leaderboard benchmark's data set, `bench.dataset`, bulk-loaded). The three people of the kudos
are members of that population, found by their email on first contact (as an HR import would
have it); the warm-up kudos admit them, so the measured ones are the steady state.

Counted on the server's engine: statements the driver is asked to execute
(`before_cursor_execute`; asyncpg's BEGIN is not one, SQLite's `BEGIN IMMEDIATE` is), commits,
rollbacks and pool checkouts. CPU is `time.process_time()` of the whole process over the
measured kudos, so it includes the in-process client and the fake Slack API (both small).

`--hooks off` (default) measures the turn alone: the kudos still stages its event hook rows (that
insert is part of the turn), but the hook runner is not woken, so the hooks, which run after the
reply, are left out; `--hooks on` loads the example catalogue and lets the server's hook runner
drain them as it does in production (a drain at most every `DRAIN_EVERY`, so a batch holds the
hooks of several kudos), then drains what is left before the clock stops, so every hook's
statements and CPU are counted.

    .venv/bin/python -m bench.turn --pg-server postgresql://postgres@127.0.0.1:55432/postgres
    .venv/bin/python -m bench.turn --members 2000 --kudos 20       # quick check
    .venv/bin/python -m bench.turn --hooks on --profile turn.prof  # where the CPU goes (pstats)

With `--profile` it also prints `python_calls`, the Python function calls per kudos: unlike the
CPU time (which the profiler inflates, and other work on the machine shifts by ±20%), a count
that only changes with the code, for comparing two trees on a busy machine.

The script only imports the application, so the same file measures another checkout:
`PYTHONPATH=/path/to/other/checkout python /path/to/bench/turn.py ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event
from sqlalchemy.engine import make_url

if __package__ in (None, ""):  # run as a file, e.g. against another checkout on PYTHONPATH
    sys.path.append(str(Path(__file__).resolve().parents[1]))

from bench.dataset import generate
from bench.loaders import load_postgresql
from bots.server import create_app
from bots.slack import SLACK, setup
from rewards.core import Core
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.migrate import upgrade_async
from tests.support.slack_api import FakeSlackApi
from tests.test_slack import BOT_TOKEN, PAYLOADS, SECRET, TEAM, sign

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:55432/postgres"
GIVER, RECEIVERS = "U0BENCH01", ("U0BENCH02", "U0BENCH03")


@dataclass
class Counts:
    statements: int = 0
    commits: int = 0
    rollbacks: int = 0
    checkouts: int = 0
    texts: Counter[tuple[str, str]] = field(default_factory=Counter)


def _record(db: Database, counts: Counts) -> None:
    def _statement(_connection: Any, cursor: Any, statement: str, *_args: Any) -> None:
        counts.statements += 1
        # `run_fixed` passes no cursor: it sent the statement straight to the driver.
        way = "driver " if cursor is None else "session"
        counts.texts[(way, " ".join(statement.split())[:110])] += 1

    def _commit(*_args: Any) -> None:
        counts.commits += 1

    def _rollback(*_args: Any) -> None:
        counts.rollbacks += 1

    def _checkout(*_args: Any) -> None:
        counts.checkouts += 1

    for engine in (e.sync_engine for e in db.engines()):  # a kudos turn has a pool of its own
        event.listen(engine, "before_cursor_execute", _statement)
        event.listen(engine, "commit", _commit)
        event.listen(engine, "rollback", _rollback)
        event.listen(engine.pool, "checkout", _checkout)


def _command_body(api: FakeSlackApi, text: str) -> str:
    body = dict(parse_qsl((PAYLOADS / "slash_command.txt").read_text(), keep_blank_values=True))
    body.update(
        command="/kudos",
        text=text,
        user_id=GIVER,
        response_url=api.response_url("command"),
        trigger_id=f"6276563421.4466731401.{uuid.uuid4().hex}",
    )
    return urlencode(body)


async def _kudos(client: TestClient[Any, Any], api: FakeSlackApi, bot: Any, n: int) -> None:
    mentions = " ".join(f"<@{r}>" for r in RECEIVERS)
    body = _command_body(api, f"{mentions} thanks for the demo number {n} #teamwork #quality")
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
    response = await client.post("/slack/events", data=body, headers=headers)
    assert response.status == 200, await response.text()
    await bot.drain()


def _hold_hooks(core: Core) -> None:
    """Leave the staged hooks in their queue: nothing wakes the runner after a commit."""
    core.db.hook_listeners.remove(core.hooks.nudge)


async def run_once(url: str, dsn: str, args: argparse.Namespace) -> dict[str, float]:
    ds = generate(members=args.members, entries=args.entries)
    await upgrade_async(url)
    await load_postgresql(dsn, ds)
    people = [m for m in ds.members if m.active][:3]
    async with FakeSlackApi(team_id=TEAM) as api:
        for user_id, member in zip((GIVER, *RECEIVERS), people, strict=True):
            api.add_user(user_id, member.display_name, member.email)
        settings = Settings(
            database_url=url,
            catalog_files=(args.catalog,) if args.hooks == "on" else (),
            reward_scheduler=False,
            chat_rate_limit=0,  # one giver sends every kudos: measured, not throttled
            extra={
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": api.api_url,
            },
        )
        db = Database(url)
        core = Core(settings=settings, db=db)
        if args.hooks == "off":
            _hold_hooks(core)
        app = create_app(settings, core, platforms=False)
        assert setup(app, settings)
        async with TestClient(TestServer(app)) as client:
            bot = app[SLACK]
            for n in range(args.warmup):
                await _kudos(client, api, bot, n)
            counts = Counts()
            _record(db, counts)
            profiler = cProfile.Profile(time.process_time) if args.profile else None
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler is not None:
                profiler.enable()
            for n in range(args.kudos):
                await _kudos(client, api, bot, 1000 + n)
            if args.hooks == "on":
                await core.hooks.drain()  # what the paced runner has not run yet
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.profile)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            calls = pstats.Stats(profiler).total_calls if profiler is not None else 0
        await db.dispose()
    if args.statements:
        for (way, text), n in sorted(counts.texts.items(), key=lambda item: -item[1]):
            print(f"{n / args.kudos:5.2f} {way} {text}")
    k = args.kudos
    return {
        "statements": counts.statements / k,
        "commits": counts.commits / k,
        "rollbacks": counts.rollbacks / k,
        "checkouts": counts.checkouts / k,
        "cpu_ms": 1000 * cpu / k,
        "wall_ms": 1000 * wall / k,
    } | ({"python_calls": calls / k} if calls else {})


async def run(args: argparse.Namespace) -> int:
    name = f"bench_turn_{os.getpid()}"
    server = args.pg_server
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        dsn = make_url(server).set(database=name).render_as_string(hide_password=False)
        url = make_url(dsn).set(drivername="postgresql+asyncpg").render_as_string(False)
        result = await run_once(url, dsn, args)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    print(
        f"members={args.members} kudos={args.kudos} hooks={args.hooks} "
        + " ".join(f"{key}={value:.1f}" for key, value in result.items())
    )
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pg-server", default=DEFAULT_SERVER, help="a server to create a db on")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=10_000, help="ledger entries loaded")
    parser.add_argument("--kudos", type=int, default=200, help="measured kudos")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--hooks", choices=("on", "off"), default="off")
    parser.add_argument(
        "--statements",
        action="store_true",
        help="list each statement per kudos, and whether it went through the session or straight"
        " to the driver",
    )
    parser.add_argument(
        "--profile", help="write a cProfile (CPU time) of the measured kudos to this file"
    )
    parser.add_argument(
        "--catalog", default=str(Path(__file__).resolve().parents[1] / "examples" / "rewards.json")
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    raise SystemExit(asyncio.run(run(parse_args(argv))))


if __name__ == "__main__":
    main()
