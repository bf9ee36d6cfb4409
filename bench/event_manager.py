"""Event manager benchmark: what the RabbitMQ outbox relay and inbound consumer cost and carry.

    .venv/bin/python -m bench.event_manager [--pg URL] [--kudos 1000] [--rounds 4]
        [--relay 10000] [--inbound 5000] [--members 1000] [--prefetch 10]

Everything runs against the real thing: a private RabbitMQ node (`tests.support.rabbitmq`,
started for the run and deleted after it), the project's `EventManager` with its default
batching, and a database migrated by the project's own migration (a temporary SQLite file, and a
fresh database created on the PostgreSQL server of `--pg` and dropped afterwards). What is
measured, per database:

1. **Write path**: `core.kudos.give()` (one giver, one receiver, one tag: what the chat and the
   API call), the same number of kudos sequentially with the event manager off (nothing staged),
   on with the manager stopped (each kudos also stages its ``kudos.given`` outbox row: the pure
   cost of the outbox) and on with the manager running (the relay claims, publishes and stamps
   those rows while kudos are written, competing for the database). The modes take turns in
   `--rounds` rounds of `--kudos / --rounds` kudos each, so drift hits all three alike. The
   running mode also gives the lag: how long after the last kudos the relay had published
   everything (a commit that staged events wakes the relay, which gathers a burst for
   `RELAY_GATHER_SECONDS` before publishing it).
2. **Relay**: `--relay` events staged while the manager is stopped (as after a broker outage),
   then `start()` and the time until every one was confirmed by the broker and stamped published.
   A durable queue is bound to ``rewards.#``, so the broker must store each persistent message
   before it confirms it (an exchange with no queue drops and confirms at once). The phases of
   each batch are timed by wrapping `outbox.claim` / `outbox.mark_published`. Baselines: the
   same messages published straight with aio-pika in groups of the relay's batch size (the
   relay without its database), and in groups of 500 with no queue bound (the client's ceiling).
3. **Inbound**: `--inbound` ``user.login`` messages waiting in the inbound queue (published
   before the manager starts), then `start()` and the time until it consumed them all with the
   default prefetch. Logins go round-robin to `--members` members on one past day (5 each by
   default): the first round is every member's first login of the day, which awards the
   Welcome badge (an award, a ledger entry, a ``badge.awarded`` outbox row that the relay then
   publishes), the later rounds are repeats (activity recorded, the event id remembered): the
   everyday mix. Then the same messages again: every one a duplicate, found in `InboundEvent` and
   dropped, which is about the consumer's own ceiling. The handler is wrapped to time it, which
   shows how many messages are really in flight. Baseline: the same mix (on another day) handed
   to `inbound.handle` directly, one after another, without the broker.
4. **Peak RSS** of the process (`resource.getrusage`), after each database's run (cumulative:
   the process's peak so far).

Results are printed as markdown (one column per database).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import resource
import shlex
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg  # type: ignore[import-untyped]
from aio_pika.abc import AbstractChannel
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bench.timing import machine_lines
from bots.broker import EventManager
from bots.broker.base import PUBLISH_TIMEOUT, RELAY_BATCH
from bots.broker.topology import outbound_message
from rewards.core import Core
from rewards.services import inbound, outbox
from rewards.services.inbound import HandleResult, InboundMessage
from rewards.settings import EventManagerSettings, Settings
from rewards.store.db import Database
from rewards.store.migrate import upgrade_async
from rewards.store.models import Award
from tests.factories import add_member, add_welcome
from tests.support.rabbitmq import RabbitNode

STAGE_CHUNK = 1000  # outbox rows per transaction when staging the relay's backlog
PUBLISH_IN_FLIGHT = 500  # the bench's own publisher: messages awaiting confirms at once
WAIT_LIMIT = 300.0  # seconds before a phase that does not finish is reported as such


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def wait_until(
    check: Callable[[], bool | Awaitable[bool]], limit: float = WAIT_LIMIT, every: float = 0.005
) -> bool:
    """Poll `check` until it holds (True) or `limit` seconds passed (False)."""
    deadline = time.perf_counter() + limit
    while True:
        value = check()
        if not isinstance(value, bool):
            value = await value
        if value:
            return True
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(every)


@dataclass
class Phases:
    """Accumulated wall time and call count of a wrapped coroutine function."""

    calls: int = 0
    seconds: float = 0.0

    def ms(self) -> float:
        return self.seconds * 1000 / self.calls if self.calls else 0.0


@contextlib.contextmanager
def timed_outbox() -> Any:
    """Time the relay's database steps (the manager looks them up on the module at each call)."""
    claim, mark = outbox.claim, outbox.mark_published
    phases = {"claim": Phases(), "mark": Phases()}

    def wrap(function: Callable[..., Awaitable[Any]], phase: Phases) -> Any:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                phase.calls += 1
                phase.seconds += time.perf_counter() - began

        return wrapper

    outbox.claim = wrap(claim, phases["claim"])  # type: ignore[assignment]
    outbox.mark_published = wrap(mark, phases["mark"])  # type: ignore[assignment]
    try:
        yield phases
    finally:
        outbox.claim = claim  # type: ignore[assignment]
        outbox.mark_published = mark  # type: ignore[assignment]


class TimedHandler:
    """`inbound.handle`, timed: the sum over messages / the wall time = messages in flight."""

    def __init__(self) -> None:
        self.phases = Phases()

    async def __call__(self, core: Core, message: InboundMessage) -> HandleResult:
        began = time.perf_counter()
        try:
            return await inbound.handle(core, message)
        finally:
            self.phases.calls += 1
            self.phases.seconds += time.perf_counter() - began


@dataclass
class Results:
    """Figures of one database, by row label."""

    name: str
    values: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "—"


# --- setup ----------------------------------------------------------------------------------------


def manager_settings(node: RabbitNode, prefetch: int, *, enabled: bool = True) -> Settings:
    name = f"bench-{uuid.uuid4().hex[:10]}"
    config = EventManagerSettings(
        enabled=enabled,
        host="127.0.0.1",
        port=node.port,
        user=node.user,
        password=node.password,
        exchange=name,
        queue=f"{name}.inbound",
        prefetch=prefetch,
    )
    return Settings(event_manager=config)


@contextlib.asynccontextmanager
async def sqlite_database() -> AsyncIterator[Database]:
    with tempfile.TemporaryDirectory(prefix="bench-broker-") as work:
        url = f"sqlite+aiosqlite:///{Path(work) / 'rewards.db'}"
        await upgrade_async(url)
        database = Database(url)
        try:
            yield database
        finally:
            await database.dispose()


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def postgres_database(server_url: str) -> AsyncIterator[Database]:
    """A fresh database on the server of `server_url`, dropped afterwards whatever happens."""
    name = f"bench_broker_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_libpq(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = (
        make_url(server_url)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )
    database: Database | None = None
    try:
        await upgrade_async(url)
        database = Database(url)
        yield database
    finally:
        if database is not None:
            await database.dispose()
        admin = await asyncpg.connect(_libpq(server_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def postgres_version(server_url: str) -> str:
    conn = await asyncpg.connect(_libpq(server_url))
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def running(manager: EventManager) -> AsyncIterator[float]:
    """The manager started; yields when it started (perf_counter) and stops it afterwards."""
    began = time.perf_counter()
    await manager.start()
    try:
        yield began
    finally:
        await manager.stop()


async def publish_all(
    channel: AbstractChannel,
    exchange_name: str,
    count: int,
    make: Callable[[int], tuple[str, aio_pika.Message]],
    *,
    in_flight: int = PUBLISH_IN_FLIGHT,
    publish_timeout: float | None = None,
) -> float:
    """Publish `make(0..count-1)` (routing key, message) with confirms, `in_flight` at a time,
    each group confirmed before the next; returns the seconds."""
    exchange = await channel.get_exchange(exchange_name)
    began = time.perf_counter()
    for start in range(0, count, in_flight):
        batch = [make(i) for i in range(start, min(count, start + in_flight))]
        await asyncio.gather(
            *(exchange.publish(m, routing_key=key, timeout=publish_timeout) for key, m in batch)
        )
    return time.perf_counter() - began


async def queue_depth(channel: AbstractChannel, name: str) -> int:
    queue = await channel.declare_queue(name, durable=True, passive=True)
    return int(queue.declaration_result.message_count or 0)


# --- the measurements -----------------------------------------------------------------------------


async def give_kudos(core: Core, members: Sequence[int], count: int, offset: int) -> float:
    """`count` kudos one after another, giver and receiver cycling over the members; seconds."""
    m = len(members)
    began = time.perf_counter()
    for i in range(offset, offset + count):
        giver = members[i % m]
        receiver = members[(i * 7 + 1 + i // m) % m]
        if receiver == giver:
            receiver = members[(i + 1) % m]
        await core.kudos.give(giver, [receiver], f"thanks for the help with ticket {i}", ["help"])
    return time.perf_counter() - began


async def pending(database: Database) -> int:
    return (await outbox.stats(database)).pending


async def write_path(
    args: argparse.Namespace,
    database: Database,
    node: RabbitNode,
    members: Sequence[int],
    out: Results,
) -> None:
    """The three modes in `args.rounds` interleaved rounds (rotating order), so that drift (a
    growing database, a neighbour's load) spreads over all three instead of favouring one."""
    on = manager_settings(node, args.prefetch)
    off = on.model_copy(
        update={"event_manager": on.event_manager.model_copy(update={"enabled": False})}
    )
    core_off, core_on = Core(off, database), Core(on, database)
    manager = EventManager(core_on, on)
    chunk = max(1, args.kudos // args.rounds)
    count = chunk * args.rounds
    offset = 0
    seconds = {"off": 0.0, "staging": 0.0, "running": 0.0}
    lags: list[float] = []
    problems: set[str] = set()

    async def mode_off() -> None:
        before = await pending(database)
        seconds["off"] += await give_kudos(core_off, members, chunk, offset)
        if await pending(database) != before:
            problems.add("the event manager off staged events")

    async def mode_staging() -> None:
        before = await pending(database)
        seconds["staging"] += await give_kudos(core_on, members, chunk, offset)
        if await pending(database) != before + chunk:
            problems.add("not one outbox row per kudos")

    async def mode_running() -> None:
        async with running(manager):
            # Any backlog of the staging mode goes first (untimed): what is timed is the relay
            # keeping up with kudos as they are written.
            if not await wait_until(lambda: manager.connected, limit=30):
                problems.add(f"no connection: {manager.status()['last_error']}")
            if not await wait_until(_drained(database), every=0.02):
                problems.add("the relay did not publish the staging mode's backlog")
            target = manager.published + chunk
            seconds["running"] += await give_kudos(core_on, members, chunk, offset)
            written = time.perf_counter()
            if not await wait_until(lambda: manager.published >= target, every=0.002):
                problems.add("the relay did not publish every kudos event")
            lags.append(time.perf_counter() - written)
            if manager.status()["last_error"]:
                problems.add(f"relay error: {manager.status()['last_error']}")

    # Warm-up (caches, the connection pool, the tag row), not counted.
    await give_kudos(core_off, members, max(50, count // 20), 0)
    offset = count
    modes = [mode_off, mode_staging, mode_running]
    for round_ in range(args.rounds):
        for step in modes[round_ % 3 :] + modes[: round_ % 3]:
            await step()
            offset += chunk
    out.notes += [f"{out.name}: write path: {p}" for p in sorted(problems)]

    out.values["kudos/s, event manager off"] = rate(count, seconds["off"])
    for key, label in (
        ("staging", "kudos/s, on, manager stopped (staging only)"),
        ("running", "kudos/s, on, manager running (relay publishing alongside)"),
    ):
        overhead = (seconds[key] / seconds["off"] - 1) * 100
        out.values[label] = f"{rate(count, seconds[key])} ({overhead:+.0f}%)"
    out.values["… after the last kudos, until all were published (worst round)"] = (
        f"{max(lags) * 1000:,.0f} ms"
    )


def _drained(database: Database) -> Callable[[], Awaitable[bool]]:
    async def drained() -> bool:
        return await pending(database) == 0

    return drained


async def relay(
    args: argparse.Namespace,
    database: Database,
    node: RabbitNode,
    channel: AbstractChannel,
    out: Results,
) -> None:
    settings = manager_settings(node, args.prefetch)
    config = settings.event_manager
    count = args.relay
    # A durable queue on every outbound key: the broker stores each message before confirming.
    exchange = await channel.declare_exchange(
        config.exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    tap = await channel.declare_queue(f"{config.exchange}.tap", durable=True)
    await tap.bind(exchange, "rewards.#")

    now = datetime.now(UTC)
    payload = {
        "kudos_id": 0,
        "giver": {"id": 1, "name": "Ana Lima", "email": "ana.lima@example.com"},
        "receivers": [{"id": 2, "name": "Bo Chen", "email": "bo.chen@example.com"}],
        "message": "thanks for the help with the release",
        "tags": ["help"],
        "points_each": 1,
        "visibility": "public",
    }
    began = time.perf_counter()
    for start in range(0, count, STAGE_CHUNK):
        async with database.write() as session:
            for i in range(start, min(count, start + STAGE_CHUNK)):
                event = {**payload, "kudos_id": i}
                outbox.stage(session, settings, outbox.KUDOS_GIVEN, event, at=now)
    stage_seconds = time.perf_counter() - began
    assert await pending(database) == count

    manager = EventManager(Core(settings, database), settings)
    with timed_outbox() as phases:
        async with running(manager) as started:
            connected = await wait_until(lambda: manager.connected)
            connect_seconds = time.perf_counter() - started
            done = await wait_until(lambda: manager.published >= count, every=0.002)
            seconds = time.perf_counter() - started
            claim, mark = replace(phases["claim"]), replace(phases["mark"])
    stored = await queue_depth(channel, tap.name)
    left = await pending(database)
    if not (connected and done) or stored != count or left:
        out.notes.append(
            f"{out.name}: relay incomplete: published {manager.published}, {stored} in the "
            f"queue, {left} pending"
        )
    await tap.delete(if_unused=False, if_empty=False)

    # The broker's ceiling: the same messages from a plain aio-pika publisher, in groups of the
    # relay's batch size with its timeout, without the database.
    baseline = await channel.declare_queue(f"{config.exchange}.baseline", durable=True)
    await baseline.bind(exchange, "rewards.#")

    def make(i: int) -> tuple[str, aio_pika.Message]:
        event = outbox.OutboxMessage(
            i, str(uuid.uuid4()), outbox.KUDOS_GIVEN, now, {**payload, "kudos_id": i}
        )
        message = outbound_message(event)  # exactly what the relay sends
        return event.routing_key, message

    baseline_seconds = await publish_all(
        channel,
        config.exchange,
        count,
        make,
        in_flight=RELAY_BATCH,
        publish_timeout=PUBLISH_TIMEOUT,
    )
    await baseline.delete(if_unused=False, if_empty=False)
    wide_seconds = await publish_all(channel, config.exchange, count, make)

    batches = mark.calls
    publish_ms = (seconds - connect_seconds - claim.seconds - mark.seconds) * 1000 / max(1, batches)
    out.values["relay: events/s (backlog, start → all confirmed and stamped)"] = (
        f"{rate(count, seconds)} ({seconds:.1f} s)"
    )
    out.values["… batches; ms per batch: claim / publish+confirm / stamp"] = (
        f"{batches}; {claim.ms():.1f} / {publish_ms:.1f} / {mark.ms():.1f}"
    )
    out.values["… connect + declare"] = f"{connect_seconds * 1000:,.0f} ms"
    out.values["… staging the backlog (1,000 rows per transaction)"] = (
        f"{rate(count, stage_seconds)} rows/s"
    )
    out.values[
        f"baseline: the same messages, plain aio-pika, {RELAY_BATCH} per confirm wait, no database"
    ] = f"{rate(count, baseline_seconds)} msg/s"
    out.values[f"… {PUBLISH_IN_FLIGHT} per confirm wait, no queue bound"] = (
        f"{rate(count, wide_seconds)} msg/s"
    )


async def consume(
    manager: EventManager, handler: TimedHandler, count: int
) -> tuple[float, float, bool]:
    """Start the manager, wait for `count` more consumed; (seconds, handler in-flight, done)."""
    before, calls, busy = manager.consumed, handler.phases.calls, handler.phases.seconds
    async with running(manager) as started:
        done = await wait_until(lambda: manager.consumed - before >= count, every=0.002)
        seconds = time.perf_counter() - started
    in_flight = (handler.phases.seconds - busy) / seconds if seconds else 0.0
    if handler.phases.calls - calls < count:
        done = False
    return seconds, in_flight, done


def logins(
    members: Sequence[int], count: int, day: datetime, prefix: str
) -> list[tuple[str, bytes]]:
    """`count` user.login messages, round-robin over the members on `day` (UTC): the first round
    is every member's first login of the day, the later rounds are repeats."""
    rounds = -(-count // len(members))
    step = min(timedelta(minutes=90), timedelta(hours=14) / rounds)
    messages = []
    for i in range(count):
        moment = day + step * (i // len(members)) + timedelta(seconds=i % len(members) % 3600)
        body = {
            "event_id": f"{prefix}-{i}",
            "type": inbound.USER_LOGIN,
            "member": members[i % len(members)],
            "occurred_at": moment.isoformat(),
        }
        messages.append((inbound.USER_LOGIN, _json(body)))
    return messages


async def inbound_path(
    args: argparse.Namespace,
    database: Database,
    node: RabbitNode,
    channel: AbstractChannel,
    members: Sequence[int],
    out: Results,
) -> None:
    settings = manager_settings(node, args.prefetch)
    config = settings.event_manager
    count = args.inbound
    core = Core(settings, database)
    handler = TimedHandler()
    manager = EventManager(core, settings, handler=handler)
    # Let the manager declare and bind its queue once, then stop it and fill the queue.
    async with running(manager):
        if not await wait_until(lambda: manager.connected, limit=30):
            raise RuntimeError(f"the event manager did not connect: {manager.status()}")
    today = datetime.now(UTC).replace(hour=7, minute=0, second=0, microsecond=0)
    messages = logins(members, count, today - timedelta(days=1), "login")
    firsts = min(count, len(members))
    awards_before = await _award_count(database)

    def make(i: int) -> tuple[str, aio_pika.Message]:
        key, body = messages[i]
        return key, aio_pika.Message(
            body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )

    rows = []
    for label in (
        f"user.login, {firsts:,} of them first of the day (award)",
        "the same again: duplicates (looked up, dropped)",
    ):
        await publish_all(channel, config.exchange, count, make)
        depth = await queue_depth(channel, config.queue)
        if depth != count:
            out.notes.append(f"{out.name}: {depth} messages queued for {count} published")
        seconds, in_flight, done = await consume(manager, handler, count)
        if not done:
            out.notes.append(f"{out.name}: inbound ({label}) did not finish in {WAIT_LIMIT:.0f}s")
        rows.append((label, seconds, in_flight))
    awards = await _award_count(database) - awards_before
    if awards != firsts:
        out.notes.append(f"{out.name}: {awards} Welcome awards for {firsts} first logins")
    if manager.dead_lettered or manager.retried:
        out.notes.append(
            f"{out.name}: inbound dead-lettered {manager.dead_lettered}, retried {manager.retried}"
        )

    # Baseline: the same mix handed to `inbound.handle` directly, one after another, no broker.
    per_member = -(-count // len(members))
    sample_members = members[: max(1, min(len(members), 500 // per_member))]
    sample = logins(sample_members, len(sample_members) * per_member, today, "direct")
    began = time.perf_counter()
    for key, body in sample:
        await inbound.handle(core, inbound.parse(body, key))
    direct_seconds = time.perf_counter() - began

    for label, seconds, in_flight in rows:
        out.values[f"inbound msg/s: {label}"] = (
            f"{rate(count, seconds)} ({seconds:.1f} s; {in_flight:.1f} in flight)"
        )
    out.values["baseline: the same mix through `inbound.handle` directly, sequentially"] = (
        f"{rate(len(sample), direct_seconds)} msg/s ({len(sample):,} messages)"
    )


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


async def _award_count(database: Database) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Award)) or 0)


async def run_database(
    args: argparse.Namespace,
    name: str,
    database: Database,
    node: RabbitNode,
    channel: AbstractChannel,
) -> Results:
    out = Results(name)
    began = time.perf_counter()
    members = [await add_member(database, f"Member {i:05d}") for i in range(args.members)]
    await add_welcome(database)
    print(
        f"[{name}] {len(members):,} members in {time.perf_counter() - began:.1f} s", file=sys.stderr
    )

    for title, step in (
        ("write path", write_path(args, database, node, members, out)),
        ("relay", relay(args, database, node, channel, out)),
        ("inbound", inbound_path(args, database, node, channel, members, out)),
    ):
        step_began = time.perf_counter()
        await step
        print(f"[{name}] {title}: {time.perf_counter() - step_began:.1f} s", file=sys.stderr)
    out.values["peak RSS of the process so far"] = f"{peak_rss_mib():,.0f} MiB"
    out.values["run time (this database)"] = f"{time.perf_counter() - began:.0f} s"
    return out


def rabbitmq_version() -> str:
    found = Path("/usr/lib/rabbitmq/lib").glob("rabbitmq_server-*")
    versions = sorted(p.name.removeprefix("rabbitmq_server-") for p in found)
    return versions[-1] if versions else "?"


def table(results: Sequence[Results]) -> list[str]:
    labels = list(dict.fromkeys(label for r in results for label in r.values))
    lines = [
        "| " + " | ".join(["measurement", *(r.name for r in results)]) + " |",
        "|" + "---|" * (1 + len(results)),
    ]
    for label in labels:
        cells = [r.values.get(label, "—") for r in results]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return lines


async def run(args: argparse.Namespace, command: str) -> None:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    rss_start = peak_rss_mib()
    pg_version = await postgres_version(args.pg) if args.pg else None
    node = RabbitNode()
    results: list[Results] = []
    try:
        await asyncio.to_thread(node.start)
        print(f"RabbitMQ node up in {node.last_start_seconds:.1f} s", file=sys.stderr)
        connection = await aio_pika.connect(node.url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            if not args.no_sqlite:
                async with sqlite_database() as database:
                    results.append(await run_database(args, "SQLite", database, node, channel))
            if args.pg:
                async with postgres_database(args.pg) as database:
                    results.append(await run_database(args, "PostgreSQL", database, node, channel))
        finally:
            await connection.close()
    finally:
        await asyncio.to_thread(node.close)

    lines = [
        "## Event manager",
        "",
        f"Command: `{command}`",
        "",
        *machine_lines(pg_version),
        f"- RabbitMQ {rabbitmq_version()} (private node, no plugins), "
        f"aio-pika {aio_pika.__version__}",
        f"- kudos {args.kudos:,} per mode, relay backlog {args.relay:,}, inbound {args.inbound:,}, "
        f"members {args.members:,}, prefetch {args.prefetch}",
        f"- peak RSS after imports, before any work: {rss_start:,.0f} MiB",
        "",
        *table(results),
    ]
    notes = [n for r in results for n in r.notes]
    if notes:
        lines += ["", "Warnings:", *(f"- ⚠ {n}" for n in notes)]
    print("\n".join(lines))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.event_manager", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--pg",
        default="",
        metavar="URL",
        help="a PostgreSQL server (any database on it): a fresh database is created and dropped",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--kudos", type=int, default=1000, help="kudos per write-path mode")
    parser.add_argument("--relay", type=int, default=10_000, help="outbox backlog to publish")
    parser.add_argument("--inbound", type=int, default=5000, help="inbound messages to consume")
    parser.add_argument(
        "--rounds", type=int, default=4, help="interleaved rounds of the write path's modes"
    )
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument(
        "--prefetch", type=int, default=EventManagerSettings.prefetch, help="RABBITMQ_PREFETCH"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="the manager's INFO logs")
    args = parser.parse_args(argv)
    if args.no_sqlite and not args.pg:
        parser.error("--no-sqlite needs --pg")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    shown = [make_url(a).render_as_string(hide_password=True) if "://" in a else a for a in argv]
    asyncio.run(run(args, shlex.join([".venv/bin/python", "-m", "bench.event_manager", *shown])))


if __name__ == "__main__":
    main()
