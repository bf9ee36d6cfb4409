"""The RabbitMQ event manager against a real broker (the private node of tests/support/rabbitmq.py).

Every test declares its own exchange and queues (unique names through the settings), so the tests
share one node without seeing each other's messages, and deletes them afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bots.broker import EventManager
from bots.broker.topology import (
    ATTEMPT_HEADER,
    FAILURE_HEADER,
    REASON_HEADER,
    ROUTING_KEY_HEADER,
    dead_letter_queue_name,
    retry_delays,
    retry_queue_name,
)
from bots.server import EVENT_MANAGER, create_app
from rewards.clock import FixedClock
from rewards.core import Core
from rewards.services import inbound, outbox
from rewards.services.inbound import HandleResult, InboundMessage
from rewards.settings import EventManagerSettings, Settings
from rewards.store.db import Database
from rewards.store.models import InboundEvent, OutboxEvent
from tests.factories import add_member, add_reward, add_welcome, award_points
from tests.support.rabbitmq import RabbitNode


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within}s: {check.__name__}")
        await asyncio.sleep(0.05)


def _settings(node: RabbitNode, **fields: Any) -> Settings:
    name = f"test-{uuid.uuid4().hex[:12]}"
    config = EventManagerSettings(
        enabled=True,
        host="127.0.0.1",
        port=node.port,
        user=node.user,
        password=node.password,
        exchange=name,
        queue=f"{name}.inbound",
        retry_seconds=1,
        max_retries=2,
    )
    return Settings(event_manager=config.model_copy(update=fields))


@pytest.fixture
async def broker(rabbitmq_node: RabbitNode) -> AsyncIterator[AbstractChannel]:
    """A channel of the test's own connection (publishing events, reading queues)."""
    connection = await aio_pika.connect(rabbitmq_node.url)
    try:
        yield await connection.channel()
    finally:
        with contextlib.suppress(Exception):  # it may have died with a restarted node
            await connection.close()


async def _cleanup(node: RabbitNode, settings: Settings, extra: tuple[str, ...] = ()) -> None:
    config = settings.event_manager
    names = [config.queue, dead_letter_queue_name(config), *extra]
    names += [retry_queue_name(config, d) for d in retry_delays(config)]
    async with await aio_pika.connect(node.url) as connection:
        channel = await connection.channel()
        for name in names:
            await channel.queue_delete(name)
        await channel.exchange_delete(config.exchange)


@asynccontextmanager
async def running(
    core: Core, settings: Settings, *, handler: Any = None, wait: bool = True
) -> AsyncIterator[EventManager]:
    manager = EventManager(core, settings, handler=handler)
    await manager.start()
    try:
        if wait:
            await eventually(_connected(manager))
        yield manager
    finally:
        began = time.monotonic()
        await manager.stop()
        stopped_in = time.monotonic() - began
        assert stopped_in < 2.0, f"stop() took {stopped_in:.2f}s"
        assert manager.status()["state"] == "stopped"


def _connected(manager: EventManager, want: bool = True) -> Callable[[], Awaitable[bool]]:
    async def connected() -> bool:
        return manager.connected is want

    return connected


async def _publish(
    channel: AbstractChannel, settings: Settings, routing_key: str, body: bytes | dict[str, Any]
) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    exchange = await channel.get_exchange(settings.event_manager.exchange)
    await exchange.publish(aio_pika.Message(data, content_type="application/json"), routing_key)


async def _drain(queue: AbstractQueue, count: int, within: float = 10.0) -> list[Any]:
    """Exactly `count` messages from `queue` (acked), waiting up to `within` seconds for them."""
    got: list[AbstractIncomingMessage] = []

    async def enough() -> bool:
        message = await queue.get(fail=False)
        if message is not None:
            await message.ack()
            got.append(message)
        return len(got) >= count

    await eventually(enough, within)
    return got


# --- inbound --------------------------------------------------------------------------------------


async def test_login_messages_award_welcome_once_whatever_the_repeats(
    database: Database, clock: FixedClock, rabbitmq_node: RabbitNode, broker: AbstractChannel
) -> None:
    ana = await add_member(database, "Ana")
    await add_welcome(database)
    settings = _settings(rabbitmq_node)
    core = Core(settings, database, clock)
    try:
        async with running(core, settings) as manager:
            login = {"event_id": "login-1", "member": "ana@example.com"}
            await _publish(broker, settings, "user.login", login)
            await _publish(broker, settings, "user.login", login)  # a producer's re-send
            await _publish(broker, settings, "user.login", {**login, "event_id": "login-2"})

            async def all_handled() -> bool:
                return manager.consumed == 3

            await eventually(all_handled)
            assert manager.dead_lettered == manager.retried == 0
        assert await award_points(database) == [(1007, ana, 10)]
        async with database.read() as session:
            seen = (await session.scalars(select(InboundEvent.event_id))).all()
        assert sorted(seen) == ["login-1", "login-2"]
    finally:
        await _cleanup(rabbitmq_node, settings)


async def test_malformed_messages_are_dead_lettered_with_their_reason_and_consuming_goes_on(
    database: Database, clock: FixedClock, rabbitmq_node: RabbitNode, broker: AbstractChannel
) -> None:
    ana = await add_member(database, "Ana")
    await add_welcome(database)
    settings = _settings(rabbitmq_node)
    core = Core(settings, database, clock)
    try:
        async with running(core, settings) as manager:
            await _publish(broker, settings, "user.login", b"this is not json")
            await _publish(broker, settings, "user.login", {"member": ana})
            await _publish(
                broker, settings, "user.login", {"event_id": "g1", "member": "ghost@example.com"}
            )
            await _publish(broker, settings, "user.login", {"event_id": "ok-1", "member": ana})

            async def welcomed() -> bool:
                return await award_points(database) == [(1007, ana, 10)]

            await eventually(welcomed)
            dead = await broker.declare_queue(
                dead_letter_queue_name(settings.event_manager), durable=True, passive=True
            )
            letters = await _drain(dead, 3)
            assert manager.dead_lettered == 3 and manager.retried == 0
        by_body = {m.body: m for m in letters}
        assert set(by_body) == {
            b"this is not json",
            json.dumps({"member": ana}).encode(),
            json.dumps({"event_id": "g1", "member": "ghost@example.com"}).encode(),
        }
        failures = {
            m.body: (str(m.headers[FAILURE_HEADER]), str(m.headers[REASON_HEADER])) for m in letters
        }
        kind, reason = failures[b"this is not json"]
        assert kind == "malformed" and reason.startswith("the body is not JSON")
        assert failures[json.dumps({"member": ana}).encode()] == (
            "malformed",
            "event_id is missing",
        )
        assert failures[json.dumps({"event_id": "g1", "member": "ghost@example.com"}).encode()] == (
            "rejected",
            "unknown member 'ghost@example.com'",
        )
        for letter in letters:
            assert letter.headers[ROUTING_KEY_HEADER] == "user.login"
            assert letter.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        # Nothing is left behind in the inbound queue.
        queue = await broker.declare_queue(settings.event_manager.queue, passive=True)
        assert queue.declaration_result.message_count == 0
    finally:
        await _cleanup(rabbitmq_node, settings)


async def test_a_transient_failure_is_retried_with_back_off_then_dead_lettered(
    database: Database, clock: FixedClock, rabbitmq_node: RabbitNode, broker: AbstractChannel
) -> None:
    ana = await add_member(database, "Ana")
    await add_welcome(database)
    settings = _settings(rabbitmq_node, retry_seconds=1, max_retries=2)
    core = Core(settings, database, clock)
    calls: list[tuple[str, float]] = []

    async def flaky(core: Core, message: InboundMessage) -> HandleResult:
        calls.append((message.event_id, time.monotonic()))
        if message.event_id == "poison":
            raise ConnectionError("the database went away")
        return await inbound.handle(core, message)

    try:
        async with running(core, settings, handler=flaky) as manager:
            await _publish(broker, settings, "user.login", {"event_id": "poison", "member": ana})
            await _publish(broker, settings, "user.login", {"event_id": "fine", "member": ana})

            async def welcomed() -> bool:
                return len(await award_points(database)) == 1

            # The next message is handled at once, not after the failing one's retries.
            await eventually(welcomed, within=0.9)
            dead = await broker.declare_queue(
                dead_letter_queue_name(settings.event_manager), durable=True, passive=True
            )
            [letter] = await _drain(dead, 1, within=10)

            async def counted() -> bool:  # the counter moves once the broker has confirmed
                return manager.retried == 2 and manager.dead_lettered == 1

            await eventually(counted, within=2)
        poison = [at for event_id, at in calls if event_id == "poison"]
        assert len(poison) == 3  # the first try and two retries
        first_gap, second_gap = poison[1] - poison[0], poison[2] - poison[1]
        assert 0.9 <= first_gap < 1.9, first_gap  # retry_seconds
        assert 1.9 <= second_gap < 3.5, second_gap  # doubled
        assert letter.headers[FAILURE_HEADER] == "exhausted"
        assert letter.headers[ATTEMPT_HEADER] == 2
        assert letter.headers[ROUTING_KEY_HEADER] == "user.login"
        assert "ConnectionError: the database went away" in str(letter.headers[REASON_HEADER])
        assert json.loads(letter.body)["event_id"] == "poison"
    finally:
        await _cleanup(rabbitmq_node, settings)


async def test_custom_event_names_of_the_catalogue_are_bound(
    database: Database, clock: FixedClock, rabbitmq_node: RabbitNode, broker: AbstractChannel
) -> None:
    ana = await add_member(database, "Ana")
    await add_reward(
        database,
        reward_id=30,
        reward="Closer",
        reward_type="Automated Badge",
        multiple=True,
        points=25,
        events=["deal.closed"],
    )
    settings = _settings(rabbitmq_node)
    core = Core(settings, database, clock)
    try:
        async with running(core, settings):
            message = {"event_id": "d1", "member": ana, "payload": {"amount": 3}}
            await _publish(broker, settings, "deal.closed", message)

            async def awarded() -> bool:
                return await award_points(database) == [(30, ana, 25)]

            await eventually(awarded)
    finally:
        await _cleanup(rabbitmq_node, settings)


# --- outbound -------------------------------------------------------------------------------------


async def _tap(channel: AbstractChannel, settings: Settings) -> AbstractQueue:
    """A queue of the test's, bound to every outbound event (`rewards.#`)."""
    exchange = await channel.declare_exchange(
        settings.event_manager.exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(f"{settings.event_manager.exchange}.tap", durable=True)
    await queue.bind(exchange, "rewards.#")
    return queue


async def _all_published(db: Database) -> bool:
    async with db.read() as session:
        rows = (await session.scalars(select(OutboxEvent))).all()
    return bool(rows) and all(r.published_at is not None for r in rows)


async def test_kudos_and_awards_are_published_with_the_documented_shape(
    database: Database, clock: FixedClock, rabbitmq_node: RabbitNode, broker: AbstractChannel
) -> None:
    boss = await add_member(database, "Boss", job_code="MANAGER")
    li = await add_member(database, "Li")
    await add_reward(database, reward_id=20, reward="Team Player", multiple=True, points=15)
    settings = _settings(rabbitmq_node)
    core = Core(settings, database, clock)
    tap = await _tap(broker, settings)
    try:
        async with running(core, settings) as manager:
            kudos = await core.kudos.give(boss, [li], "great demo")
            award = await core.awards.award(20, li, boss, "thanks for the help")
            manager.nudge()
            messages = await _drain(tap, 2)
            await eventually(lambda: _all_published(database))
            status = await manager.refresh_status()
            assert status["pending"] == 0 and status["published"] == 2
        by_type = {m.type: m for m in messages}
        assert set(by_type) == {"kudos.given", "badge.awarded"}
        for message in messages:
            body = json.loads(message.body)
            assert set(body) == {"event_id", "type", "occurred_at", "source", "payload"}
            assert message.routing_key == f"rewards.{body['type']}"
            assert message.message_id == body["event_id"]
            assert message.type == body["type"]
            assert message.content_type == "application/json"
            assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
            assert message.headers["event_type"] == body["type"]
            assert body["source"] == "nav-rewards"
            assert body["occurred_at"] == "2026-11-18T15:00:00+00:00"
            assert message.timestamp is not None
            assert message.timestamp.timestamp() == clock.now().timestamp()
        given = json.loads(by_type["kudos.given"].body)["payload"]
        assert given["kudos_id"] == kudos.id and given["message"] == "great demo"
        assert given["giver"]["id"] == boss and [r["id"] for r in given["receivers"]] == [li]
        awarded = json.loads(by_type["badge.awarded"].body)["payload"]
        assert awarded["award_id"] == award.id and awarded["reward_id"] == 20
        assert awarded["member"]["email"] == "li@example.com" and awarded["points"] == 15
    finally:
        await _cleanup(rabbitmq_node, settings, extra=(tap.name,))


async def test_events_staged_during_an_outage_are_published_once_after_it(
    database: Database,
    clock: FixedClock,
    rabbitmq_restartable: RabbitNode,
    broker: AbstractChannel,
) -> None:
    node = rabbitmq_restartable
    boss = await add_member(database, "Boss", job_code="MANAGER")
    people = [await add_member(database, name) for name in ("Li", "Bo", "Ana")]
    await add_reward(database, reward_id=20, reward="Team Player", multiple=True)
    settings = _settings(node)
    core = Core(settings, database, clock)
    tap_name = (await _tap(broker, settings)).name
    try:
        async with running(core, settings) as manager:
            await core.kudos.give(boss, people[:1], "before the outage")
            await eventually(lambda: _all_published(database))

            await asyncio.to_thread(node.stop)
            await eventually(_connected(manager, False))
            # The engine keeps working: kudos and awards succeed, the outbox holds their events.
            for person in people:
                await core.kudos.give(boss, [person], "during the outage")
                await core.awards.award(20, person, boss)
            pending = (await outbox.stats(database)).pending
            assert pending == 2 * len(people)
            assert (await manager.refresh_status())["pending"] == pending

            node.start()
            await eventually(_connected(manager), within=15)
            await eventually(lambda: _all_published(database), within=15)
            await asyncio.sleep(1.5)  # a relay round more: nothing may go twice

        async with await aio_pika.connect(node.url) as connection:
            channel = await connection.channel()
            tap = await channel.declare_queue(tap_name, durable=True, passive=True)
            expected = 1 + 2 * len(people)
            messages = await _drain(tap, expected)
            assert await tap.get(fail=False) is None
        counts = Counter(json.loads(m.body)["event_id"] for m in messages)
        async with database.read() as session:
            rows = (await session.scalars(select(OutboxEvent))).all()
        assert set(counts) == {r.event_id for r in rows}  # none missing
        assert set(counts.values()) == {1}  # none twice
        assert all(r.published_at is not None for r in rows)
    finally:
        await _cleanup(node, settings, extra=(tap_name,))


# --- life cycle -----------------------------------------------------------------------------------


async def test_an_unreachable_broker_never_blocks_start_or_stop(
    database: Database, clock: FixedClock, rabbitmq_node: RabbitNode
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings = _settings(rabbitmq_node, port=closed_port, password="s3cret-pass")
    core = Core(settings, database, clock)
    began = time.monotonic()
    async with running(core, settings, wait=False) as manager:
        assert time.monotonic() - began < 0.5

        async def failed_once() -> bool:
            return manager.status()["last_error"] is not None

        await eventually(failed_once, within=8)
        status = manager.status()
        assert status["connected"] is False and status["state"] in {"connecting", "disconnected"}
        assert "s3cret-pass" not in json.dumps(status)
        assert status["broker"] == f"amqp://guest:***@127.0.0.1:{closed_port}/%2F"
        # Kudos still work and wait in the outbox.
        a, b = await add_member(database, "A"), await add_member(database, "B")
        await core.kudos.give(a, [b], "thanks")
        assert (await manager.refresh_status())["pending"] == 1


# --- the server -----------------------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "rewards.json"


async def test_the_server_runs_the_event_manager_with_the_seed_catalogue(
    database: Database, rabbitmq_node: RabbitNode, broker: AbstractChannel
) -> None:
    ana = await add_member(database, "Ana")
    settings = _settings(rabbitmq_node).model_copy(
        update={
            "database_url": database.url,
            "catalog_files": (str(EXAMPLES),),
            "reward_scheduler": False,
        }
    )
    try:
        async with TestClient(TestServer(create_app(settings, platforms=False))) as client:
            manager = client.app[EVENT_MANAGER]
            await eventually(_connected(manager))
            for event_id in ("s1", "s1", "s2"):
                await _publish(
                    broker, settings, "user.login", {"event_id": event_id, "member": ana}
                )

            async def handled() -> bool:
                return manager.consumed == 3

            await eventually(handled)
            health = await (await client.get("/healthz")).json()
            assert health["broker"]["connected"] is True
            assert health["broker"]["consumed"] == 3
            assert health["event_manager"].startswith("on: amqp://guest:***@127.0.0.1:")
        # The seed's "Welcome to Navigator" (multiple, 10 points) pays once per login day, and
        # so does its other login badge, "Welcome Badge" (1001).
        assert sorted(await award_points(database)) == [(1001, ana, 10), (1007, ana, 10)]
    finally:
        await _cleanup(rabbitmq_node, settings)


async def test_the_server_starts_and_serves_with_the_broker_down(
    database: Database, rabbitmq_node: RabbitNode
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings = _settings(rabbitmq_node, port=closed_port).model_copy(
        update={"database_url": database.url, "catalog_files": (), "reward_scheduler": False}
    )
    began = time.monotonic()
    async with TestClient(TestServer(create_app(settings, platforms=False))) as client:
        assert time.monotonic() - began < 5
        response = await client.get("/healthz")
        assert response.status == 200
        assert (await response.json())["broker"]["connected"] is False
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 3
