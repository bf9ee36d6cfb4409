"""End-to-end kudos benchmark: signed Slack `/kudos` slash commands and REST kudos against real
`rewards serve` processes (1, 2 and 4 replicas on one PostgreSQL), compared with what the
database itself does on the same machine in the same run (single-row inserts on one bare asyncpg
connection, one commit each).

    python -m bench.e2e                     # full size: 100,000 members, 1/2/4 replicas (~15 min)
    python -m bench.e2e --quick             # 2,000 members, 1 and 2 replicas, ~200 kudos (< 1 min)
    python -m bench.e2e --replicas 1 --paths slack --duration 30

Options:
  --quick             2,000 members (40 of them giving and receiving), replicas 1,2, at most
                      30 kudos (4 s) per throughput phase and 20 kudos (3 s) per latency phase.
  --members N         members imported with `rewards members import` (100,000).
  --users N           of them, the people who give and receive in the benchmark (200); each has a
                      Slack account (linked before the servers start, as in a running workspace).
  --replicas LIST     server processes per configuration (1,2,4), on their own ports, one
                      database; a bigger configuration keeps the servers already started.
  --paths LIST        slack,rest (both): signed `/kudos` slash commands on /slack/events, and
                      POST /kudos/api/v1/user_kudos with a write key.
  --concurrency N     clients per server in the throughput phase, each with one kudos in flight
                      (8: a Slack turn waits on its round trips to PostgreSQL and its commit's
                      flush, and with only 2 in flight the server sat idle between them (5-7%
                      of raw where 8 make 10%); more than 8 only queue, and past the server's
                      10 pooled connections cost a connection each). The Slack path's commands
                      go over plain keep-alive connections (`KeepAlive`), the REST path's
                      through aiohttp's client.
  --duration S        cap on each throughput phase (60 s; a phase also stops at --max-kudos).
  --max-kudos N       cap on the kudos of one throughput phase (3,000).
  --latency-kudos N   kudos sent in the half-load phase (200; fewer if they do not fit in
                      --latency-duration at half the measured maximum, but at least 2).
  --latency-duration S  cap on the half-load phase's sending (30 s).
  --reply-timeout S   a kudos not answered (REST) or replied to (Slack) within S seconds counts
                      as failed (120); the kudos in flight when a phase's cap is reached finish
                      within this, so a phase lasts at most its cap plus this.
  --raw-seconds S     how long to time raw inserts, at the start and at the end of the run (3 s).
  --pg-url URL        use this EMPTY PostgreSQL database instead of a throwaway server
                      (pg_stat_statements is used if it can be created there).
  --seed N            the data set's seed.

What is measured, per configuration (replica count) and path:
- kudos/s: the maximum throughput, closed loop: `--concurrency` clients each send a kudos and
  wait until it is done (REST: the 201; Slack: the reply, in the command's answer or reaching
  the fake Slack API), until `--max-kudos` or `--duration`. The ratio is to the
  raw insert rate measured at the start of the run.
- ack and reply p50/p99 at half that maximum: open loop, one kudos every 2/max seconds
  whatever the answers. Ack = the HTTP answer (Slack: the 200 within Slack's 3 s; REST: the
  201, which is also the reply). Reply = from sending until the reply carrying this command's
  reference is out: the command's HTTP answer when it carries the message (Slack posts it on
  receipt; then reply = ack), else the chat.postMessage or response_url post the fake Slack API
  receives.
- statements and commits per kudos during the throughput phase, from pg_stat_statements (every
  statement including BEGIN/COMMIT/ROLLBACK, summed over the database; the servers' background
  work, such as the notifier's poll, is included) and from pg_stat_database.xact_commit, which
  also counts every statement sent outside a transaction (a read without BEGIN is a transaction
  of its own to PostgreSQL). So "writing xacts" counts the transactions that wrote: the
  transaction ids PostgreSQL assigned in the phase (an id is assigned at a transaction's first
  write, never to one that only read), whether committed by COMMIT or as a single statement.
- server CPU ms per kudos: user+system CPU of the server processes (from /proc) during the
  throughput phase, divided by the kudos completed; likewise PostgreSQL's (all its processes)
  and the load generator's (this process: the clients, their signing, the fake Slack API),
  which share the machine's cores with the servers.
- under the table: the half-load phase's three slowest replies, each with when it was sent,
  and the WAL flushes meanwhile (count; mean time with track_wal_io_timing), to tell a tail of
  one held-up kudos (a lock) from a moment of the server or the disk.

Each server is measured once started: after /healthz, the benchmark waits for its Teams SDK
import (a worker thread two seconds after the start) and for half a second of idle.

Everything stays on 127.0.0.1: the servers, the fake Slack Web API (in this process, so the
servers' SLACK_API_URL points at it, with SLACK_TEAM_IDS set to its workspace) and PostgreSQL.
Each Slack command carries a unique reference in its message so its reply can be matched.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlencode

import aiohttp
import asyncpg  # type: ignore[import-untyped]
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from bench.dataset import generate
from bench.leaderboards import write_members_csv
from bench.pgserver import throwaway_postgres
from bench.timing import machine_lines

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "examples" / "rewards.json"
CLI = "import sys; from bots.cli import main; sys.argv = ['rewards', *sys.argv[1:]]; main()"
TEAM = "T0BENCH01"
CHANNEL = "C0BENCH01"
SIGNING_SECRET = "bench-signing-secret-0123456789ab"
BOT_TOKEN = "xoxb-bench-0000-token"
REF = re.compile(rb"zq(\d+)x")
# What every benchmark `/kudos` command's form holds besides its sender, text and references.
COMMAND_FORM = urlencode(
    {
        "token": "bench",
        "team_id": TEAM,
        "team_domain": "bench",
        "channel_id": CHANNEL,
        "channel_name": "kudos",
        "command": "/kudos",
        "api_app_id": "A0BENCH01",
        "is_enterprise_install": "false",
    }
)
# --- the fake Slack Web API ----


@dataclass
class FakeSlack:
    """The Slack Web API methods the bot calls, answering like Slack, and a clock on replies: the
    first request whose body carries `zq<ref>x` marks reply `ref` as received."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    replies: dict[int, float] = field(default_factory=dict)
    waiters: dict[int, asyncio.Future[float]] = field(default_factory=dict)
    calls: int = 0
    runner: web.AppRunner | None = None
    port: int = 0

    def add_user(self, user_id: str, name: str, email: str) -> None:
        self.users[user_id] = {
            "id": user_id,
            "team_id": TEAM,
            "name": name.lower().replace(" ", "."),
            "real_name": name,
            "tz": "Europe/Oslo",
            "is_bot": False,
            "is_app_user": False,
            "deleted": False,
            "profile": {"real_name": name, "display_name": name, "email": email},
        }

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{ref}", self._response)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, ref: int) -> str:
        return f"http://127.0.0.1:{self.port}/response/{ref}"

    def expect(self, ref: int) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[ref] = future
        return future

    def _mark(self, body: bytes) -> None:
        now = time.perf_counter()
        for match in REF.finditer(body):
            ref = int(match.group(1))
            if ref not in self.replies:
                self.replies[ref] = now
                waiter = self.waiters.pop(ref, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(now)

    async def _response(self, request: web.Request) -> web.Response:
        self.calls += 1
        self._mark(await request.read())
        return web.Response(text="ok")

    async def _api(self, request: web.Request) -> web.Response:
        self.calls += 1
        method = request.match_info["method"]
        body = await request.read()
        self._mark(body)
        ts = f"1763990000.{self.calls:06d}"
        if method == "auth.test":
            answer: dict[str, Any] = {
                "ok": True,
                "team": "Bench",
                "team_id": TEAM,
                "user": "rewards",
                "user_id": "UBOT0001",
                "bot_id": "B0001",
                "is_enterprise_install": False,
            }
        elif method == "chat.postMessage":
            answer = {"ok": True, "channel": CHANNEL, "ts": ts, "message": {"ts": ts}}
        elif method == "chat.postEphemeral":
            answer = {"ok": True, "message_ts": ts}
        elif method == "chat.update":
            answer = {"ok": True, "channel": CHANNEL, "ts": ts}
        elif method == "users.info":
            params = dict(request.query)
            if body and request.content_type != "application/json":
                params.update({k: str(v) for k, v in (await request.post()).items()})
            user = self.users.get(params.get("user", ""))
            answer = (
                {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
            )
        elif method == "conversations.open":
            answer = {"ok": True, "channel": {"id": "D0BENCH01"}}
        else:
            answer = {"ok": False, "error": "unknown_method"}
        return web.json_response(answer)


def slack_signature(body: str, timestamp: str) -> str:
    """Slack's v0 request signature, as Slack computes it (and as tests/test_slack.py signs)."""
    return (
        SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body) or ""
    )


# --- database helpers ----


def sqlalchemy_url(dsn: str) -> str:
    return re.sub(r"^postgres(ql)?://", "postgresql+asyncpg://", dsn)


async def raw_insert_rate(dsn: str, seconds: float) -> float:
    """Single-row INSERTs per second on one bare asyncpg connection, each its own transaction
    (so each waits for its commit to be flushed, like a kudos)."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw_kudos (id bigserial PRIMARY KEY, giver int, "
            "receiver int, message text, created_at timestamptz DEFAULT now())"
        )
        statement = await connection.prepare(
            "INSERT INTO bench_raw_kudos (giver, receiver, message) VALUES ($1, $2, $3)"
        )
        for i in range(20):  # warm-up
            await statement.fetchval(i, i + 1, "warm-up")
        done = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            await statement.fetchval(done % 1000, done % 997, "thanks for the review")
            done += 1
        return done / (time.perf_counter() - started)
    finally:
        await connection.close()


@dataclass
class DbCounters:
    statements: int | None
    commits_sql: int | None
    xact_commit: int
    xact_rollback: int
    xids: int  # transaction ids assigned so far: one per transaction that wrote
    wal_syncs: int = 0  # WAL flushes to disk (pg_stat_wal.wal_sync), the whole server
    wal_sync_ms: float | None = None  # their total time; None without track_wal_io_timing


async def db_counters(dsn: str, statements: bool) -> DbCounters:
    connection = await asyncpg.connect(dsn)
    try:
        calls = commits = None
        if statements:
            row = await connection.fetchrow(
                "SELECT coalesce(sum(calls), 0) AS calls, coalesce(sum(calls) FILTER (WHERE "
                "lower(btrim(query, ' ;')) IN ('commit', 'end')), 0) AS commits "
                "FROM pg_stat_statements s "
                "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database()"
            )
            calls, commits = int(row["calls"]), int(row["commits"])
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        stats = await connection.fetchrow(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        )
        # txid_current() assigns this probe an id of its own (one more between two probes).
        xids = int(await connection.fetchval("SELECT txid_current()"))
        wal = await connection.fetchrow(
            "SELECT wal_sync, wal_sync_time, current_setting('track_wal_io_timing')::bool "
            "AS timed FROM pg_stat_wal"
        )
        return DbCounters(
            calls,
            commits,
            int(stats["xact_commit"]),
            int(stats["xact_rollback"]),
            xids,
            int(wal["wal_sync"]),
            float(wal["wal_sync_time"]) if wal["timed"] else None,
        )
    finally:
        await connection.close()


async def enable_statements(dsn: str) -> bool:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await connection.fetchval("SELECT count(*) FROM pg_stat_statements")
        return True
    except (asyncpg.PostgresError, OSError):
        return False
    finally:
        await connection.close()


async def settle(dsn: str) -> None:
    """Vacuum and analyse what the import wrote, then flush it: the state a running workspace
    is in, instead of autovacuum and the checkpointer working through 100,000 new members during
    the first timing (which they did: the first phase after the import was up to a third slower,
    its reply p99 above 50 ms)."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("VACUUM (ANALYZE)")
        await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


async def kudos_rows(dsn: str) -> int:
    """How many kudos the servers wrote (a check that the answers were kudos, not refusals)."""
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM kudos"))
    finally:
        await connection.close()


async def postgres_version(dsn: str) -> str:
    connection = await asyncpg.connect(dsn)
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


# --- setting up: members, keys, Slack accounts ----


T0 = time.perf_counter()


def note(what: str) -> None:
    """Progress on stderr (the results go to stdout)."""
    print(f"[{time.perf_counter() - T0:6.1f} s] {what}", file=sys.stderr, flush=True)


def cli_env(dsn: str, work: Path, **extra: str) -> dict[str, str]:
    prefixes = ("DATABASE_URL", "DB", "REWARDS_", "RABBITMQ_", "ENABLE_", "REWARD_", "SLACK_")
    env = {k: v for k, v in os.environ.items() if not k.startswith((*prefixes, "TELEGRAM_"))}
    env.update(
        DATABASE_URL=sqlalchemy_url(dsn),
        REWARDS_ENV_FILE=str(work / "none.env"),
        API_RATE_LIMIT="0",  # the load is the measurement: no per-key or per-member throttle
        CHAT_RATE_LIMIT="0",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
        **extra,
    )
    return env


def rewards_cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CLI, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"rewards {' '.join(args)} failed: {done.stderr[-3000:]}")
    return done.stdout


@dataclass(frozen=True)
class Person:
    slack_id: str
    email: str
    name: str


def write_members(members: int, seed: int, path: Path) -> list[tuple[str, str]]:
    """The HR CSV of `members` generated people (the leaderboard bench's export); returns
    (email, name) of the active ones."""
    ds = generate(members=members, entries=0, seed=seed)
    write_members_csv(ds, path)
    return [(m.email, m.display_name) for m in ds.members if m.active and not m.opt_out]


async def link_slack_accounts(dsn: str, people: Sequence[Person]) -> None:
    """Give each benchmark person a Slack account, as a running workspace would have (the first
    message of a new person costs a users.info and an insert; that is not what is measured)."""
    from rewards.services.members import ensure_member_for_account
    from rewards.store.db import Database

    database = Database(sqlalchemy_url(dsn))
    try:
        for person in people:
            await ensure_member_for_account(
                database,
                "slack",
                person.slack_id,
                tenant=TEAM,
                email=person.email,
                display_name=person.name,
            )
    finally:
        await database.dispose()


# --- the servers ----


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its waited-for children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """User + system CPU of every PostgreSQL process on this machine, with that of the backends
    which have exited (the postmaster's waited-for children), so a phase's difference is what
    PostgreSQL spent on it even when connections closed meanwhile."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        if "(postgres)" in text.split(" ", 2)[1]:
            total += sum(int(x) for x in text.rsplit(")", 1)[1].split()[11:15])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Servers:
    processes: list[subprocess.Popen[bytes]]
    ports: list[int]

    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.processes)


class ServerPool:
    """`rewards serve` processes on free ports; `grow_to(n)` starts more (a configuration with
    more replicas keeps the ones already running), `stop()` ends them all. The waits run in
    threads: the fake Slack API shares this event loop."""

    def __init__(self, env: dict[str, str], work: Path) -> None:
        self.env = env
        self.work = work
        self.servers = Servers([], [])

    def _spawn(self) -> tuple[subprocess.Popen[bytes], int, Path]:
        port = free_port()
        log_path = self.work / f"serve-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-c", CLI, "serve", "--port", str(port)],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return process, port, log_path

    async def grow_to(self, count: int) -> Servers:
        started = [self._spawn() for _ in range(count - len(self.servers.processes))]
        for process, port, log_path in started:
            self.servers.processes.append(process)
            self.servers.ports.append(port)
            await asyncio.to_thread(wait_healthy, process, port, log_path)
        for process, _port, log_path in started:
            await asyncio.to_thread(wait_warm, process, log_path)
        return Servers(self.servers.processes[:count], self.servers.ports[:count])

    async def stop(self) -> None:
        for process in self.servers.processes:
            process.terminate()
        for process in self.servers.processes:
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)


def wait_healthy(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rewards serve exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"rewards serve on port {port} did not become healthy")


def wait_warm(process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until a healthy server has done its start-up work: it imports the Teams SDK in a
    worker thread `WARM_UP_SECONDS` after its lifecycle starts (about a second of CPU, holding
    the interpreter's lock most of it, then ``teams: ... SDK loaded`` in its log), which
    otherwise lands in the first throughput phase (8-10% of the server's samples in it). Then
    until it has been idle (under 5% of a core) for half a second: a running deployment's
    steady state, which is what is measured."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and b"SDK loaded" not in log.read_bytes():
        time.sleep(0.1)
    before = cpu_seconds(process.pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(process.pid)
        if now - before < 0.025:
            return
        before = now


# --- load ----


class KeepAlive:
    """Plain HTTP/1.1 keep-alive connections for the Slack path's commands: a request costs the
    load generator, which shares the machine's cores with the servers and PostgreSQL, a few
    string operations and one write, where aiohttp's client took about as much CPU per request
    as a quarter of the server's turn. The servers see the same requests (a form, its Slack
    headers, `Content-Length`). Each connection carries one request at a time; idle ones are
    kept per server."""

    def __init__(self) -> None:
        self.idle: dict[str, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}
        self.opened: list[asyncio.StreamWriter] = []

    async def post(
        self, url: str, path: str, body: str, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        """(status, body) of a POST; OSError or ValueError when the exchange broke."""
        host = url.removeprefix("http://")
        idle = self.idle.setdefault(host, [])
        if idle:
            reader, writer = idle.pop()
        else:
            name, _, port = host.partition(":")
            reader, writer = await asyncio.open_connection(name, int(port))
            self.opened.append(writer)
        content = body.encode()
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{lines}"
        writer.write(f"{head}Content-Length: {len(content)}\r\n\r\n".encode() + content)
        try:
            status_line, *fields = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
            found = {n.lower(): v for n, _, v in (f.partition(": ") for f in fields if f)}
            data = await reader.readexactly(int(found["content-length"]))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, KeyError) as broken:
            writer.close()
            raise ValueError(f"a broken answer from {host}") from broken
        if found.get("connection", "").lower() == "close":
            writer.close()
        else:
            idle.append((reader, writer))
        return int(status_line.split(" ", 2)[1]), data

    async def close(self) -> None:
        for writer in self.opened:
            writer.close()
        self.opened.clear()
        self.idle.clear()


@dataclass
class Outcome:
    ack_ms: float | None
    reply_ms: float | None
    ok: bool
    started: float = 0.0
    """`time.perf_counter()` when the kudos was sent (set by `Load.one`)."""


class Load:
    """Sends one kudos per call through a path, round-robin over the servers, and times it."""

    def __init__(
        self,
        path: str,
        session: aiohttp.ClientSession,
        urls: Sequence[str],
        fake: FakeSlack,
        people: Sequence[Person],
        key: str,
        reply_timeout: float,
    ) -> None:
        self.path = path
        self.session = session
        self.urls = urls
        self.fake = fake
        self.people = people
        self.key = key
        self.reply_timeout = reply_timeout
        self.sent = 0
        self.commands = KeepAlive()

    def _pair(self, ref: int) -> tuple[Person, Person]:
        giver = self.people[ref % len(self.people)]
        receiver = self.people[(ref * 7 + 1 + ref // len(self.people)) % len(self.people)]
        if receiver == giver:
            receiver = self.people[(ref + 1) % len(self.people)]
        return giver, receiver

    async def one(self, ref: int) -> Outcome:
        url = self.urls[self.sent % len(self.urls)]
        self.sent += 1
        giver, receiver = self._pair(ref)
        message = f"thanks for the review zq{ref}x"
        started = time.perf_counter()
        try:
            if self.path == "rest":
                outcome = await self._rest(url, giver, receiver, message, started)
            else:
                outcome = await self._slack(url, giver, receiver, message, ref, started)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            outcome = Outcome(None, None, False)
        outcome.started = started
        return outcome

    async def _rest(
        self, url: str, giver: Person, receiver: Person, message: str, started: float
    ) -> Outcome:
        body = {"giver": giver.email, "receivers": [receiver.email], "message": message}
        async with self.session.post(
            f"{url}/kudos/api/v1/user_kudos",
            json=body,
            headers={"Authorization": f"Bearer {self.key}"},
        ) as answer:
            await answer.read()
            elapsed = (time.perf_counter() - started) * 1000
            ok = answer.status == 201
            return Outcome(elapsed, elapsed if ok else None, ok)

    async def _slack(
        self, url: str, giver: Person, receiver: Person, message: str, ref: int, started: float
    ) -> Outcome:
        form = {
            "user_id": giver.slack_id,
            "user_name": giver.name.lower().replace(" ", "."),
            "text": f"<@{receiver.slack_id}> {message}",
            "response_url": self.fake.response_url(ref),
            "trigger_id": f"6276563421.4466731401.{ref:032x}",
        }
        # The form's fixed fields are encoded once (urlencode was half the load generator's
        # CPU per command); the server reads the fields, not their order.
        body = COMMAND_FORM + "&" + "&".join(f"{k}={quote_plus(v)}" for k, v in form.items())
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": slack_signature(body, stamp),
        }
        reply = self.fake.expect(ref)
        try:
            async with asyncio.timeout(self.reply_timeout):
                status, content = await self.commands.post(url, "/slack/events", body, headers)
        except BaseException:
            self.fake.waiters.pop(ref, None)
            raise
        ack = (time.perf_counter() - started) * 1000
        if status != 200:
            self.fake.waiters.pop(ref, None)
            return Outcome(ack, None, False)
        if any(int(m.group(1)) == ref for m in REF.finditer(content)):
            # The reply is the message of the command's answer, which Slack posts on receipt.
            self.fake.waiters.pop(ref, None)
            return Outcome(ack, ack, True)
        try:
            arrived = await asyncio.wait_for(reply, self.reply_timeout)
        except TimeoutError:
            self.fake.waiters.pop(ref, None)
            return Outcome(ack, None, False)
        return Outcome(ack, (arrived - started) * 1000, True)


@dataclass
class Phase:
    done: int = 0
    failed: int = 0
    seconds: float = 0.0
    acks: list[float] = field(default_factory=list)
    replies: list[float] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    """Seconds from the phase's start to the sending of each kudos of `replies`."""

    def slowest(self, count: int = 3) -> list[tuple[float, float]]:
        """The `count` slowest replies as (ms, seconds into the phase when sent): whether the
        tail is a few kudos held up alone (a lock, a lost packet) or a stretch of the run
        (a stalled event loop or disk delays every kudos sent in it)."""
        return sorted(zip(self.replies, self.sent_at, strict=True), reverse=True)[:count]

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0


async def closed_loop(
    load: Load, refs: Iterator[int], clients: int, limit: int, cap: float
) -> Phase:
    """`clients` senders, each with one kudos in flight, until `limit` kudos or `cap` seconds."""
    phase = Phase()
    started = time.perf_counter()
    budget = iter(range(limit))

    async def client() -> None:
        for _ in budget:
            if time.perf_counter() - started >= cap:
                return
            outcome = await load.one(next(refs))
            if outcome.ok:
                phase.done += 1
            else:
                phase.failed += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    phase.seconds = time.perf_counter() - started
    return phase


async def open_loop(load: Load, refs: Iterator[int], rate: float, count: int, cap: float) -> Phase:
    """`count` kudos at a fixed `rate` per second, whatever the answers; none is sent after
    `cap` seconds except the first two (so a very slow server still gets a sample)."""
    phase = Phase()
    interval = 1.0 / rate
    started = time.perf_counter()
    tasks: list[asyncio.Task[Outcome]] = []
    for index in range(count):
        if index >= 2 and index * interval > cap:
            break
        delay = started + index * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(load.one(next(refs))))
    for outcome in await asyncio.gather(*tasks):
        if outcome.ok:
            phase.done += 1
            if outcome.ack_ms is not None:
                phase.acks.append(outcome.ack_ms)
            if outcome.reply_ms is not None:
                phase.replies.append(outcome.reply_ms)
                phase.sent_at.append(outcome.started - started)
        else:
            phase.failed += 1
    phase.seconds = time.perf_counter() - started
    return phase


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# --- the run ----


@dataclass
class Result:
    replicas: int
    path: str
    throughput: Phase
    latency: Phase | None
    statements: float | None
    commits_sql: float | None
    xact_commits: float | None
    cpu_ms: float | None
    load_rate: float = 0.0
    writing_xacts: float | None = None
    postgres_ms: float | None = None
    client_ms: float | None = None
    wal_syncs: int = 0
    wal_sync_ms: float | None = None  # during the half-load phase (track_wal_io_timing)


def fmt(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def table(results: Sequence[Result], raw: float) -> list[str]:
    lines = [
        "| replicas | path | kudos/s | of raw | failed | ack p50 / p99 ms | reply p50 / p99 ms "
        "| at kudos/s | statements / kudos | COMMITs / kudos | xact_commit / kudos "
        "| writing xacts / kudos | server CPU ms / kudos | PostgreSQL CPU ms / kudos "
        "| load generator CPU ms / kudos |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lat = r.latency
        acks = (
            f"{fmt(percentile(lat.acks, 0.5))} / {fmt(percentile(lat.acks, 0.99))}" if lat else "–"
        )
        replies = (
            f"{fmt(percentile(lat.replies, 0.5))} / {fmt(percentile(lat.replies, 0.99))}"
            if lat
            else "–"
        )
        failed = r.throughput.failed + (lat.failed if lat else 0)
        lines.append(
            f"| {r.replicas} | {r.path} | {r.throughput.rate:,.2f} ({r.throughput.done} in "
            f"{r.throughput.seconds:.0f} s) | {100 * r.throughput.rate / raw:.2f}% | {failed} "
            f"| {acks} | {replies} | {fmt(r.load_rate, 2)} ({lat.done if lat else 0}) "
            f"| {fmt(r.statements, 1)} | {fmt(r.commits_sql, 1)} | {fmt(r.xact_commits, 1)} "
            f"| {fmt(r.writing_xacts, 2)} | {fmt(r.cpu_ms, 1)} | {fmt(r.postgres_ms, 1)} "
            f"| {fmt(r.client_ms, 1)} |"
        )
    return lines


async def measure(
    args: argparse.Namespace,
    servers: Servers,
    path: str,
    fake: FakeSlack,
    people: Sequence[Person],
    key: str,
    dsn: str,
    statements: bool,
    refs: Iterator[int],
) -> Result:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=args.reply_timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        load = Load(
            path, session, servers.urls(), fake, people, key, reply_timeout=args.reply_timeout
        )
        # Warm-up: every server answers a few (first-use costs: caches, prepared statements).
        await closed_loop(load, refs, len(servers.ports), 2 * len(servers.ports), args.duration)
        before = await db_counters(dsn, statements)
        cpu_before, pg_before, own_before = servers.cpu(), postgres_cpu(), time.process_time()
        note(f"{path}: throughput")
        clients = args.concurrency * len(servers.ports)
        throughput = await closed_loop(load, refs, clients, args.max_kudos, args.duration)
        cpu = servers.cpu() - cpu_before
        pg_cpu, own_cpu = postgres_cpu() - pg_before, time.process_time() - own_before
        await asyncio.sleep(1.2)  # backends report xact counts at most once a second
        after = await db_counters(dsn, statements)
        per = max(1, throughput.done)
        result = Result(
            servers_count(servers),
            path,
            throughput,
            None,
            (after.statements - before.statements) / per
            if after.statements is not None and before.statements is not None
            else None,
            (after.commits_sql - before.commits_sql) / per
            if after.commits_sql is not None and before.commits_sql is not None
            else None,
            (after.xact_commit - before.xact_commit) / per,
            1000 * cpu / per,
            writing_xacts=(after.xids - before.xids - 1) / per,
            postgres_ms=1000 * pg_cpu / per,
            client_ms=1000 * own_cpu / per,
        )
        if throughput.rate > 0:
            rate = throughput.rate / 2
            count = max(2, min(args.latency_kudos, int(rate * args.latency_duration)))
            result.load_rate = rate
            note(f"{path}: latency, {count} kudos at {rate:.2f}/s")
            wal_before = await db_counters(dsn, False)
            result.latency = await open_loop(load, refs, rate, count, args.latency_duration)
            wal_after = await db_counters(dsn, False)
            result.wal_syncs = wal_after.wal_syncs - wal_before.wal_syncs
            if wal_after.wal_sync_ms is not None and wal_before.wal_sync_ms is not None:
                result.wal_sync_ms = wal_after.wal_sync_ms - wal_before.wal_sync_ms
        await load.commands.close()
        return result


def servers_count(servers: Servers) -> int:
    return len(servers.ports)


@asynccontextmanager
async def fake_slack(people: Sequence[Person]) -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    for person in people:
        fake.add_user(person.slack_id, person.name, person.email)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def run_on(dsn: str, args: argparse.Namespace, work: Path) -> list[str]:
    out: list[str] = []
    statements = await enable_statements(dsn)
    version = await postgres_version(dsn)
    env = cli_env(dsn, work)

    note("generating and importing members")
    started = time.perf_counter()
    csv_path = work / "members.csv"
    active = write_members(args.members, args.seed, csv_path)
    rewards_cli(env, "members", "import", str(csv_path))
    imported = time.perf_counter() - started
    people = [
        Person(f"U{index:08d}", email, name)
        for index, (email, name) in enumerate(active[: args.users])
    ]
    note("linking Slack accounts, creating a write key")
    await link_slack_accounts(dsn, people)
    key = rewards_cli(env, "apikey", "create", "--name", "bench-e2e", "--scope", "write").strip()

    note("raw inserts")
    await settle(dsn)
    raw_start = await raw_insert_rate(dsn, args.raw_seconds)
    results: list[Result] = []
    refs = iter(range(1, 10**9))
    async with fake_slack(people) as fake:
        server_env = cli_env(
            dsn,
            work,
            REWARDS_CATALOG=str(CATALOG),
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=fake.api_url,
            SLACK_TEAM_IDS=TEAM,
        )
        pool = ServerPool(server_env, work)
        try:
            for replicas in sorted(args.replicas):
                note(f"starting server(s) up to {replicas}")
                servers = await pool.grow_to(replicas)
                note("servers healthy")
                for path in args.paths:
                    result = await measure(
                        args, servers, path, fake, people, key, dsn, statements, refs
                    )
                    results.append(result)
                    note(f"{replicas} replica(s), {path}: {result.throughput.rate:.2f} kudos/s")
        finally:
            await pool.stop()
    raw_end = await raw_insert_rate(dsn, args.raw_seconds)
    written = await kudos_rows(dsn)
    raw = max(raw_start, raw_end)  # the database's speed on this machine; noise only lowers it

    out.append(f"# End-to-end kudos ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    out.append("")
    out += machine_lines(version)
    out.append(
        f"- {args.members:,} members imported in {imported:.1f} s (`rewards members import`), "
        f"{len(people)} of them giving and receiving, the example catalogue "
        f"({CATALOG.relative_to(ROOT)}), PostgreSQL fsync and synchronous_commit on"
    )
    out.append(
        f"- raw basis: {raw:,.0f} single-row inserts/s (one commit each) on one asyncpg "
        f"connection, the better of the start ({raw_start:,.0f}/s) and the end "
        f"({raw_end:,.0f}/s) of the run"
    )
    out.append(
        f"- throughput: {args.concurrency} clients per server, closed loop, at most "
        f"{args.max_kudos} kudos or {args.duration:.0f} s per phase; latency: open loop at "
        f"half that rate, at most {args.latency_kudos} kudos or {args.latency_duration:.0f} s"
    )
    sent = sum(r.throughput.done + (r.latency.done if r.latency else 0) for r in results)
    out.append(
        f"- kudos rows in the database at the end: {written:,} for {sent:,} kudos answered in "
        "the measured phases (plus two warm-up kudos per server per phase)"
    )
    if not statements:
        out.append("- pg_stat_statements unavailable: statements per kudos not measured")
    out.append("")
    out += table(results, raw)
    out.append("")
    out += tails(results)
    return out


def tails(results: Sequence[Result]) -> list[str]:
    """Per configuration, the half-load phase's slowest replies and the WAL flushes meanwhile:
    what a p99 far above the p50 was made of."""
    lines = []
    for r in results:
        if r.latency is None or not r.latency.replies:
            continue
        slow = ", ".join(f"{ms:,.0f} ms (sent at {at:.2f} s)" for ms, at in r.latency.slowest())
        wal = f"{r.wal_syncs:,} WAL flushes"
        if r.wal_sync_ms is not None and r.wal_syncs:
            wal += f", {r.wal_sync_ms / r.wal_syncs:.2f} ms each on average"
        lines.append(
            f"- {r.replicas} replica(s), {r.path}, half load ({r.latency.seconds:.1f} s): "
            f"slowest replies {slow}; {wal}"
        )
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--members", type=int)
    parser.add_argument("--users", type=int)
    parser.add_argument("--replicas")
    parser.add_argument("--paths", default="slack,rest")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--max-kudos", type=int)
    parser.add_argument("--latency-kudos", type=int)
    parser.add_argument("--latency-duration", type=float)
    parser.add_argument("--raw-seconds", type=float)
    parser.add_argument("--reply-timeout", type=float, default=120.0)
    parser.add_argument("--pg-url")
    parser.add_argument("--seed", type=int, default=20261118)
    args = parser.parse_args(argv)
    quick = args.quick
    defaults: dict[str, Any] = {
        "members": 2_000 if quick else 100_000,
        "users": 40 if quick else 200,
        "replicas": "1,2" if quick else "1,2,4",
        "duration": 4.0 if quick else 60.0,
        "max_kudos": 30 if quick else 3_000,
        "latency_kudos": 20 if quick else 200,
        "latency_duration": 3.0 if quick else 30.0,
        "raw_seconds": 1.0 if quick else 3.0,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.replicas = [int(x) for x in str(args.replicas).split(",") if x]
    args.paths = [p for p in args.paths.split(",") if p]
    if set(args.paths) - {"slack", "rest"}:
        parser.error("--paths takes slack and/or rest")
    args.users = max(2, min(args.users, args.members))
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    note("starting PostgreSQL" if not args.pg_url else "using --pg-url")
    with tempfile.TemporaryDirectory(prefix="rewards-e2e-") as tmp:
        work = Path(tmp)
        if args.pg_url:
            lines = asyncio.run(run_on(args.pg_url, args, work))
        else:
            # track_wal_io_timing: the WAL flushes' time during the half-load phase is reported
            settings = {
                "shared_preload_libraries": "pg_stat_statements",
                "track_wal_io_timing": "on",
            }
            with throwaway_postgres(settings) as dsn:
                lines = asyncio.run(run_on(dsn, args, work))
    text = "\n".join(lines)
    print(text)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "e2e.md").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
