"""The rewards shop over the REST API, on SQLite and PostgreSQL: items, a member's wallet and
redemptions, redeeming for a member (write scope, the member's own rights), the queue and its
decisions and grants (admin scope), Idempotency-Key replays, and refusals that write nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from rewards.clock import FixedClock
from rewards.economy.shop.file import parse_shop
from rewards.economy.shop.service import ShopService
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import LedgerEntry, Redemption
from tests.factories import add_member
from tests.support.api import api_client

PROBLEM = "application/problem+json"
V1 = "/rewards/api/v1"
ITEMS = [
    {"item_id": 1, "name": "Coffee", "cost": 30, "icon": "☕"},
    {"item_id": 2, "name": "Day off", "cost": 100, "approval": True, "stock": 2},
]


async def rows(database: Database, model: type) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)))


async def test_shop_over_the_api(database: Database, clock: FixedClock) -> None:
    ana = await add_member(database, "Ana")
    await add_member(database, "Boss")
    await ShopService(database, Settings(), clock).load(parse_shop(ITEMS))
    async with api_client(database, clock, admins=("boss@example.com",)) as api:
        client = api.client
        items = await (await client.get(f"{V1}/shop/items", headers=api.auth("read"))).json()
        assert [(i["item_id"], i["stock_left"]) for i in items["items"]] == [(1, None), (2, 2)]

        # Grants are admin only; a write key is refused and nothing is written.
        body = {"points": 150, "reason": "Hackathon"}
        refused = await client.post(f"{V1}/members/{ana}/grants", json=body, headers=api.auth())
        assert refused.status == 403 and refused.content_type == PROBLEM
        assert await rows(database, LedgerEntry) == 0
        granted = await client.post(
            f"{V1}/members/ana@example.com/grants",
            json=body,
            headers=api.auth("admin", **{"Idempotency-Key": "g-1"}),
        )
        assert granted.status == 201
        assert (await granted.json())["balance"]["spendable"] == 150
        replay = await client.post(
            f"{V1}/members/ana@example.com/grants",
            json=body,
            headers=api.auth("admin", **{"Idempotency-Key": "g-1"}),
        )
        assert replay.status == 201 and replay.headers["Idempotent-Replayed"] == "true"
        assert await rows(database, LedgerEntry) == 1
        too_much = await client.post(
            f"{V1}/members/{ana}/grants",
            json={"points": -151, "reason": "x"},
            headers=api.auth("admin"),
        )
        assert too_much.status == 409 and "150 points to spend" in (await too_much.json())["detail"]

        # A write key redeems for a member; a read key cannot.
        ask = {"member": "ana@example.com", "item": "day off", "note": "Friday"}
        assert (
            await client.post(f"{V1}/redemptions", json=ask, headers=api.auth("read"))
        ).status == 403
        made = await client.post(
            f"{V1}/redemptions", json=ask, headers=api.auth(**{"Idempotency-Key": "r-1"})
        )
        assert made.status == 201
        view = await made.json()
        assert (view["state"], view["cost"], view["note"], view["member_name"]) == (
            "requested",
            100,
            "Friday",
            "Ana",
        )
        again = await client.post(
            f"{V1}/redemptions", json=ask, headers=api.auth(**{"Idempotency-Key": "r-1"})
        )
        assert (
            again.headers["Idempotent-Replayed"] == "true" and await rows(database, Redemption) == 1
        )
        broke = await client.post(
            f"{V1}/redemptions", json={"member": ana, "item": 2}, headers=api.auth()
        )
        assert broke.status == 409
        assert (await broke.json())[
            "detail"
        ] == "Day off costs 100 points; you have 50 points to spend."
        unknown = await client.post(
            f"{V1}/redemptions", json={"member": ana, "item": "Caviar"}, headers=api.auth()
        )
        assert unknown.status == 404 and await rows(database, Redemption) == 1

        wallet = await (
            await client.get(f"{V1}/members/{ana}/wallet", headers=api.auth("read"))
        ).json()
        assert (wallet["earned"], wallet["spent"], wallet["spendable"]) == (150, 100, 50)
        mine = await (
            await client.get(f"{V1}/members/{ana}/redemptions", headers=api.auth("read"))
        ).json()
        assert [r["id"] for r in mine["items"]] == [view["id"]]

        # The queue and decisions: admin only; a write key cannot approve.
        rid = view["id"]
        queue = await client.get(f"{V1}/redemptions?state=requested", headers=api.auth())
        assert queue.status == 403
        queue = await client.get(f"{V1}/redemptions?state=requested", headers=api.auth("admin"))
        assert [r["id"] for r in (await queue.json())["items"]] == [rid]
        denied = await client.post(f"{V1}/redemptions/{rid}/approve", json={}, headers=api.auth())
        assert denied.status == 403
        assert (
            await (await client.get(f"{V1}/redemptions/{rid}", headers=api.auth("admin"))).json()
        )["state"] == "requested"
        not_admin = await client.post(
            f"{V1}/redemptions/{rid}/approve",
            json={"as": "ana@example.com"},
            headers=api.auth("admin"),
        )
        assert not_admin.status == 403
        approved = await client.post(
            f"{V1}/redemptions/{rid}/approve",
            json={"as": "boss@example.com"},
            headers=api.auth("admin"),
        )
        assert approved.status == 200
        assert (await approved.json())["decided_by"] == "boss@example.com"
        twice = await client.post(
            f"{V1}/redemptions/{rid}/approve", json={}, headers=api.auth("admin")
        )
        assert twice.status == 403 and twice.content_type == PROBLEM
        assert "already approved by boss@example.com" in (await twice.json())["detail"]
        fulfilled = await client.post(
            f"{V1}/redemptions/{rid}/fulfil", json={}, headers=api.auth("admin")
        )
        assert (await fulfilled.json())["fulfilled_by"] == "API key admin"

        coffee = await (
            await client.post(
                f"{V1}/redemptions", json={"member": ana, "item": 1}, headers=api.auth()
            )
        ).json()
        assert coffee["state"] == "approved"
        no_reason = await client.post(
            f"{V1}/redemptions/{coffee['id']}/reject", json={}, headers=api.auth("admin")
        )
        assert no_reason.status == 422
        rejected = await client.post(
            f"{V1}/redemptions/{coffee['id']}/reject",
            json={"reason": "Machine broken"},
            headers=api.auth("admin"),
        )
        assert (await rejected.json())["state"] == "rejected"
        wallet = await (
            await client.get(f"{V1}/members/{ana}/wallet", headers=api.auth("read"))
        ).json()
        assert wallet["spendable"] == 50
        first = await (
            await client.get(f"{V1}/redemptions?limit=1", headers=api.auth("admin"))
        ).json()
        assert [r["id"] for r in first["items"]] == [coffee["id"]] and first["next"]
        rest = await (
            await client.get(
                f"{V1}/redemptions?limit=1&cursor={first['next']}", headers=api.auth("admin")
            )
        ).json()
        assert [r["id"] for r in rest["items"]] == [rid] and rest["next"] is None
