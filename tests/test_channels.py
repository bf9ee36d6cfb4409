"""Channel references and inbound delivery deduplication, on both databases."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import event

from rewards.services.channels import (
    find_channel,
    first_delivery,
    list_channels,
    personal_channel,
    remember_channel,
)
from tests.factories import add_member


async def test_channel_reference_is_upserted(database, clock):
    await remember_channel(database, "slack", "C1", {"channel": "C1"}, tenant="T1", name="general")
    await remember_channel(database, "slack", "C1", {"channel": "C1", "v": 2}, tenant="T1")
    found = await find_channel(database, "slack", "C1", tenant="T1")
    assert found is not None and found.reference == {"channel": "C1", "v": 2}
    assert len(await list_channels(database, "slack")) == 1
    assert await find_channel(database, "slack", "C1", tenant="other") is None


async def test_personal_channel_of_a_member(database, clock):
    ana = await add_member(database, "Ana")
    await remember_channel(
        database, "telegram", "42", {"chat_id": 42}, kind="personal", member_id=ana
    )
    found = await personal_channel(database, "telegram", ana)
    assert found is not None and found.reference == {"chat_id": 42}
    assert await personal_channel(database, "slack", ana) is None


async def test_a_retried_delivery_is_processed_once(database, clock):
    results = await asyncio.gather(
        *(first_delivery(database, "slack", "Ev123", clock=clock) for _ in range(20))
    )
    assert results.count(True) == 1
    assert await first_delivery(database, "slack", "Ev124", clock=clock)
    assert not await first_delivery(database, "slack", "Ev123", clock=clock)
    assert await first_delivery(database, "telegram", "Ev123", clock=clock)


async def test_a_chat_seen_again_soon_is_not_written_again(database, clock):
    """A busy channel costs one upsert per ten minutes per process, not one per turn; a changed
    reference is stored at once."""
    writes: list[str] = []

    def on_execute(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if "channel_reference" in statement and statement.lstrip().startswith("INSERT"):
            writes.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        for _ in range(3):
            await remember_channel(database, "slack", "C1", {"channel": "C1"}, clock=clock)
        assert len(writes) == 1
        await remember_channel(database, "slack", "C1", {"channel": "C1", "v": 2}, clock=clock)
        assert len(writes) == 2
        clock.advance(timedelta(minutes=11))
        await remember_channel(database, "slack", "C1", {"channel": "C1", "v": 2}, clock=clock)
        assert len(writes) == 3
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", on_execute)
    found = await find_channel(database, "slack", "C1")
    assert found is not None and found.updated_at == clock.now()
