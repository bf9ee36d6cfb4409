"""Inbound broker events without a broker: parsing, and what each event type does to the store.

`rewards.services.inbound` is what the RabbitMQ consumer runs for every delivery; the broker tests
(`test_event_manager.py`) cover acks, retries and dead letters around it.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlmodel import col

from rewards.clock import FixedClock
from rewards.core import Core
from rewards.services import inbound
from rewards.services.catalog import bump_version
from rewards.services.inbound import (
    HandleResult,
    InboundMessage,
    MalformedEvent,
    Outcome,
    PermanentFailure,
    RejectedEvent,
)
from rewards.services.members import link_account
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import AttendanceRecord, Award, InboundEvent, MemberActivity, Reward
from tests.factories import add_member, add_reward, add_welcome, award_points


def _core(database: Database, clock: FixedClock) -> Core:
    return Core(settings=Settings(), db=database, clock=clock)


def _body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


async def _seen(db: Database) -> list[tuple[str, str]]:
    async with db.read() as session:
        rows = await session.execute(
            select(InboundEvent.platform, InboundEvent.event_id).order_by(InboundEvent.id)  # type: ignore[arg-type]
        )
        return [(str(p), str(e)) for p, e in rows.all()]


async def _handle(core: Core, routing_key: str = "", **fields: Any) -> HandleResult:
    return await inbound.handle(core, inbound.parse(_body(**fields), routing_key))


# --- parse ----------------------------------------------------------------------------------------


def test_parse_reads_the_documented_shape() -> None:
    message = inbound.parse(
        _body(
            event_id="crm-1",
            type="deal.closed",
            occurred_at="2026-11-18T10:00:00+02:00",
            member="ana@example.com",
            payload={"amount": 3},
        ),
        "ignored.when.type.is.given",
    )
    assert message == InboundMessage(
        event_id="crm-1",
        type="deal.closed",
        member="ana@example.com",
        payload={"amount": 3},
        occurred_at=datetime(2026, 11, 18, 8, 0, tzinfo=UTC),
    )


def test_parse_defaults_type_to_the_routing_key_and_time_to_none() -> None:
    message = inbound.parse(_body(event_id="e", member=7), "user.login")
    assert (message.type, message.member, message.payload, message.occurred_at) == (
        "user.login",
        7,
        {},
        None,
    )
    # No offset means UTC.
    naive = inbound.parse(_body(event_id="e", member=7, occurred_at="2026-11-18T10:00:00"), "x")
    assert naive.occurred_at == datetime(2026, 11, 18, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "routing_key", "reason"),
    [
        (b"not json", "user.login", "not JSON"),
        (b"\xff\xfe", "user.login", "not UTF-8"),
        (b"[1, 2]", "user.login", "JSON object"),
        (b'{"event_id": "e", "member": 1, "payload": {"x": NaN}}', "user.login", "not JSON"),
        (_body(member=1), "user.login", "event_id is missing"),
        (_body(event_id="", member=1), "user.login", "event_id must be a non-empty string"),
        (_body(event_id=5, member=1), "user.login", "event_id must be a non-empty string"),
        (_body(event_id="e" * 201, member=1), "user.login", "longer than 200"),
        (_body(event_id="e", member=1), "", "type is missing"),
        (_body(event_id="e", member=1, type="bad type!"), "x", "type must be"),
        (_body(event_id="e", member=1, type=["x"]), "x", "type must be"),
        (_body(event_id="e"), "user.login", "member is missing"),
        (_body(event_id="e", member=True), "user.login", "member must be"),
        (_body(event_id="e", member=0), "user.login", "positive"),
        (_body(event_id="e", member=" "), "user.login", "member must be 1 to 320"),
        (_body(event_id="e", member=1, occurred_at="yesterday"), "x", "occurred_at is not"),
        (_body(event_id="e", member=1, occurred_at=5), "x", "occurred_at must be"),
        (_body(event_id="e", member=1, payload=[1]), "x", "payload must be a JSON object"),
        (
            _body(event_id="e", member=1, payload={str(i): i for i in range(101)}),
            "x",
            "more than 100 keys",
        ),
        (b'{"event_id": "e", "member": 1, "p": "' + b"x" * 70_000 + b'"}', "x", "the limit"),
        (
            _body(event_id="e", member=1, payload={"day": "2026-11-18"}),
            "attendance.recorded",
            "payload.dataset",
        ),
        (
            _body(event_id="e", member=1, payload={"dataset": "office", "day": "18/11/2026"}),
            "attendance.recorded",
            "YYYY-MM-DD",
        ),
        (
            _body(
                event_id="e",
                member=1,
                payload={"dataset": "o", "day": "2026-11-18", "present": "yes"},
            ),
            "attendance.recorded",
            "present must be",
        ),
    ],
)
def test_parse_refuses_malformed_bodies_with_a_reason(
    body: bytes, routing_key: str, reason: str
) -> None:
    with pytest.raises(MalformedEvent) as caught:
        inbound.parse(body, routing_key)
    assert reason in caught.value.reason
    assert isinstance(caught.value, PermanentFailure) and caught.value.kind == "malformed"


# --- handle ---------------------------------------------------------------------------------------


async def test_user_login_awards_welcome_once_per_login_day_and_dedups_event_ids(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana", timezone="America/New_York")
    await add_welcome(database)
    core = _core(database, clock)

    first = await _handle(core, "user.login", event_id="login-1", member="ana@example.com")
    assert first.outcome is Outcome.PROCESSED and first.member_id == ana
    assert [(a.reward_id, a.points) for a in first.awards] == [(1007, 10)]
    again = await _handle(core, "user.login", event_id="login-1", member="ana@example.com")
    assert again.outcome is Outcome.DUPLICATE and again.awards == ()
    # Another login the same (New York) day: processed, but no second award.
    later = await _handle(
        core, "user.login", event_id="login-2", member=ana, occurred_at="2026-11-19T03:00:00Z"
    )
    assert later.outcome is Outcome.PROCESSED and later.awards == ()
    assert await award_points(database) == [(1007, ana, 10)]
    # The next New York day pays again.
    next_day = await _handle(
        core, "user.login", event_id="login-3", member=ana, occurred_at="2026-11-19T06:00:00Z"
    )
    assert len(next_day.awards) == 1
    assert await award_points(database) == [(1007, ana, 10), (1007, ana, 10)]
    async with database.read() as session:
        days = (await session.scalars(select(MemberActivity.day))).all()
    assert sorted(d.isoformat() for d in days) == ["2026-11-18", "2026-11-19"]
    assert await _seen(database) == [
        ("rabbitmq", "login-1"),
        ("rabbitmq", "login-2"),
        ("rabbitmq", "login-3"),
    ]


async def test_login_by_platform_account_and_the_type_field(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana")
    await link_account(database, ana, "slack", "U024BE7LH")
    await add_welcome(database)
    core = _core(database, clock)
    result = await _handle(core, "some.key", event_id="x1", type="login", member="slack:U024BE7LH")
    assert result.outcome is Outcome.PROCESSED and result.member_id == ana
    assert await award_points(database) == [(1007, ana, 10)]


async def test_attendance_recorded_upserts_the_day(database: Database, clock: FixedClock) -> None:
    ana = await add_member(database, "Ana")
    core = _core(database, clock)
    payload = {"dataset": "office", "day": "2026-11-17"}
    result = await _handle(core, "attendance.recorded", event_id="a1", member=ana, payload=payload)
    assert result.outcome is Outcome.PROCESSED
    await _handle(
        core,
        "attendance.recorded",
        event_id="a2",
        member=ana,
        payload={**payload, "present": False},
    )
    async with database.read() as session:
        rows = (await session.execute(select(AttendanceRecord))).scalars().all()
    assert [(r.dataset, r.member_id, r.day, r.present) for r in rows] == [
        ("office", ana, date(2026, 11, 17), False)
    ]


async def test_custom_events_fire_listening_badges_once_per_event_id(
    database: Database, clock: FixedClock
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
    core = _core(database, clock)
    first = await _handle(core, "deal.closed", event_id="d1", member=ana, payload={"amount": 3})
    assert [(a.reward_id, a.member_id) for a in first.awards] == [(30, ana)]
    assert (await _handle(core, "deal.closed", event_id="d1", member=ana)).outcome is (
        Outcome.DUPLICATE
    )
    # Even past the dedup table (two deliveries racing), the occurrence key pays once.
    async with database.write() as session:
        await session.execute(InboundEvent.__table__.delete())  # type: ignore[attr-defined]
    replay = await _handle(core, "deal.closed", event_id="d1", member=ana)
    assert replay.outcome is Outcome.PROCESSED and replay.awards == ()
    second = await _handle(core, "deal.closed", event_id="d2", member=ana)
    assert len(second.awards) == 1
    assert await award_points(database) == [(30, ana, 25), (30, ana, 25)]


async def test_unlistened_and_internal_events_are_ignored_but_remembered(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana")
    await add_reward(
        database, reward_id=40, reward_type="Automated Badge", events=["kudos.received"]
    )
    core = _core(database, clock)
    nobody = await _handle(core, "thing.happened", event_id="i1", member="nobody@example.com")
    assert nobody.outcome is Outcome.IGNORED
    faked = await _handle(core, "kudos.received", event_id="i2", member=ana)
    assert faked.outcome is Outcome.IGNORED
    own = await _handle(core, "rewards.kudos.given", event_id="i3", member=ana)
    assert own.outcome is Outcome.IGNORED
    assert await award_points(database) == []
    assert [e for _, e in await _seen(database)] == ["i1", "i2", "i3"]
    again = await _handle(core, "thing.happened", event_id="i1", member=ana)
    assert again.outcome is Outcome.DUPLICATE


@pytest.mark.parametrize("event_type", ["user.login", "attendance.recorded", "deal.closed"])
async def test_an_unknown_member_is_rejected_and_not_remembered(
    database: Database, clock: FixedClock, event_type: str
) -> None:
    await add_reward(database, reward_id=30, reward_type="Automated Badge", events=["deal.closed"])
    core = _core(database, clock)
    payload = {"dataset": "office", "day": "2026-11-17"}
    with pytest.raises(RejectedEvent) as caught:
        await _handle(core, event_type, event_id="u1", member="ghost@example.com", payload=payload)
    assert "unknown member" in caught.value.reason
    assert caught.value.kind == "rejected"
    # Not remembered: once the member exists, a re-sent event is applied.
    assert await _seen(database) == []
    await add_member(database, "Ghost")
    result = await _handle(
        core, event_type, event_id="u1", member="ghost@example.com", payload=payload
    )
    assert result.outcome is Outcome.PROCESSED


async def test_a_transient_failure_propagates_and_leaves_the_event_unrecorded(
    database: Database, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana = await add_member(database, "Ana")
    await add_welcome(database)
    core = _core(database, clock)

    async def down(*args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("database is down")

    monkeypatch.setattr(core.events, "activity", down)
    with pytest.raises(ConnectionError):
        await _handle(core, "user.login", event_id="t1", member=ana)
    assert await _seen(database) == []
    monkeypatch.undo()
    result = await _handle(core, "user.login", event_id="t1", member=ana)
    assert len(result.awards) == 1


async def test_custom_event_names_for_the_bindings(database: Database, clock: FixedClock) -> None:
    await add_welcome(database)  # login: core-internal
    await add_reward(
        database, reward_id=2, reward_type="Automated Badge", events=["deal.closed", "kudos.given"]
    )
    await add_reward(
        database,
        reward_id=3,
        reward_type="Automated Badge",
        events=[{"course.finished": {"min": 1}}, "badge.awarded"],
    )
    await add_reward(database, reward_id=4, reward_type="Automated Badge", events=["off.event"])
    async with database.write() as session:  # a disabled reward (the factory leaves it enabled)
        await session.execute(update(Reward).where(col(Reward.id) == 4).values(enabled=False))
        await bump_version(session)
    assert await inbound.custom_event_names(database) == ["course.finished", "deal.closed"]


async def test_occurred_at_sets_the_login_day(database: Database, clock: FixedClock) -> None:
    ana = await add_member(database, "Ana")
    await add_welcome(database)
    core = _core(database, clock)
    earlier = clock.now() - timedelta(days=3)
    await _handle(core, "user.login", event_id="o1", member=ana, occurred_at=earlier.isoformat())
    await _handle(core, "user.login", event_id="o2", member=ana)
    async with database.read() as session:
        days = sorted((await session.scalars(select(MemberActivity.day))).all())
        count = await session.scalar(select(func.count()).select_from(Award))
    assert [d.isoformat() for d in days] == ["2026-11-15", "2026-11-18"]
    assert count == 2
