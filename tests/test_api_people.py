"""People routes: members (list, get, upsert, import), leaderboards, balance and history, revoking
an award, attendance and metric data, and events; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from rewards.clock import FixedClock
from rewards.store.db import Database
from rewards.store.models import AttendanceRecord, Award, MetricRecord
from tests.factories import add_member, add_reward
from tests.support.api import Api, api_client

PROBLEM = "application/problem+json"
V1 = "/rewards/api/v1"


async def _scopes(api: Api, method: str, path: str, needed: str, body: Any = None) -> None:
    """No key: 401; a key below `needed`: 403 (problem+json both)."""
    none = await api.client.request(method, path, json=body)
    assert (none.status, none.content_type) == (401, PROBLEM)
    lower = {"write": "read", "admin": "write"}.get(needed)
    if lower:
        refused = await api.client.request(method, path, json=body, headers=api.auth(lower))
        assert (refused.status, refused.content_type) == (403, PROBLEM), path


async def _problem(response: Any, status: int) -> dict[str, Any]:
    assert (response.status, response.content_type) == (status, PROBLEM), await response.text()
    return dict(await response.json())


# --- members ----------------------------------------------------------------------------------


async def test_members_list_filters_and_pages(database: Database, clock: FixedClock) -> None:
    ana = await add_member(database, "Ana", department="Sales", groups=("Leads",))
    bob = await add_member(database, "Bob", department="Sales")
    cy = await add_member(database, "Cy Young")
    old = await add_member(database, "Old", active=False)
    async with api_client(database, clock) as api:
        await _scopes(api, "GET", f"{V1}/members", "read")
        response = await api.client.get(f"{V1}/members?limit=2", headers=api.auth("read"))
        body = await response.json()
        assert [m["id"] for m in body["items"]] == [ana, bob] and body["next"]
        rest = await api.client.get(
            f"{V1}/members?limit=2&cursor={body['next']}", headers=api.auth("read")
        )
        assert [m["id"] for m in (await rest.json())["items"]] == [cy]

        async def ids(query: str) -> list[int]:
            found = await api.client.get(f"{V1}/members?{query}", headers=api.auth("read"))
            assert found.status == 200, await found.text()
            return [m["id"] for m in (await found.json())["items"]]

        assert await ids("department=sales") == [ana, bob]
        assert await ids("group=leads") == [ana]
        assert await ids("q=young") == [cy]
        assert await ids("q=BOB@EXAMPLE") == [bob]
        assert await ids("q=nobody") == []
        assert await ids("active=false") == [old]
        assert await ids("active=all&q=old") == [old]
        assert await ids("active=all&limit=1&q=y") == [cy]
        for bad in ("active=maybe", "limit=0", "cursor=zz"):
            found = await api.client.get(f"{V1}/members?{bad}", headers=api.auth("read"))
            await _problem(found, 422)


async def test_one_member_by_id_or_email(database: Database, clock: FixedClock) -> None:
    ana = await add_member(database, "Ana", birthday=(2, 29), hired=date(2020, 5, 1))
    async with api_client(database, clock) as api:
        await _scopes(api, "GET", f"{V1}/members/{ana}", "read")
        for ref in (str(ana), "ana@example.com", "ANA@example.com"):
            response = await api.client.get(f"{V1}/members/{ref}", headers=api.auth("read"))
            member = await response.json()
            assert (member["id"], member["email"]) == (ana, "ana@example.com")
        assert member["birthday"] == "02-29" and member["hire_date"] == "2020-05-01"
        assert "birth_year" not in member
        missing = await api.client.get(f"{V1}/members/ghost@example.com", headers=api.auth("read"))
        assert "ghost@example.com" in (await _problem(missing, 404))["detail"]
        await _problem(await api.client.get(f"{V1}/members/999", headers=api.auth("read")), 404)


async def test_put_member_creates_then_updates(database: Database, clock: FixedClock) -> None:
    boss = await add_member(database, "Boss")
    url = f"{V1}/members/li@example.com"
    body = {
        "display_name": "Li",
        "job_code": "ENG",
        "department": "Platform",
        "groups": ["Guild", "Leads"],
        "manager_email": "boss@example.com",
        "birthday": "07-04",
        "hire_date": "2021-03-15",
        "timezone": "Europe/Madrid",
        "locale": "es_ES",
        "leaderboard_opt_out": True,
    }
    async with api_client(database, clock) as api:
        await _scopes(api, "PUT", url, "write", body)
        created = await api.client.put(url, json=body, headers=api.auth("write"))
        assert created.status == 201, await created.text()
        member = await created.json()
        assert member["display_name"] == "Li" and member["manager_id"] == boss
        assert member["groups"] == ["Guild", "Leads"] and member["locale"] == "es-ES"
        assert (member["birthday"], member["leaderboard_opt_out"]) == ("07-04", True)

        same = await api.client.put(url, json=body, headers=api.auth("write"))
        assert same.status == 200
        # absent fields are left alone; null clears an optional one
        partial = await api.client.put(
            url, json={"department": None, "active": False}, headers=api.auth("write")
        )
        member = await partial.json()
        assert (partial.status, member["department"], member["active"]) == (200, None, False)
        assert member["job_code"] == "ENG" and member["timezone"] == "Europe/Madrid"

        for bad in (
            {"display_name": 5},
            {"nickname": "x"},
            {"groups": "Guild"},
            {"birthday": "13-40"},
            {"timezone": "Mars/Base"},
            {"display_name": "x" * 201},
        ):
            refused = await api.client.put(url, json=bad, headers=api.auth("write"))
            await _problem(refused, 422)
        not_email = await api.client.put(
            f"{V1}/members/not-an-email", json={}, headers=api.auth("write")
        )
        assert "not a valid email" in (await _problem(not_email, 422))["detail"]
        # an unknown manager is a refusal naming them, as in the HR import
        no_boss = await api.client.put(
            url, json={"manager_email": "ghost@example.com"}, headers=api.auth("write")
        )
        assert "ghost@example.com" in (await _problem(no_boss, 422))["detail"]


async def test_members_import_reports_each_item(database: Database, clock: FixedClock) -> None:
    await add_member(database, "Ana", department="Sales")
    items = [
        {"email": "ana@example.com", "department": "Sales"},
        {"email": "bob@example.com", "display_name": "Bob"},
        {"email": "ana@example.com", "department": "Ops"},
        {"email": "cy@example.com", "birthday": "02-30"},
        {"email": "ana@example.com".upper().replace("ANA", "DEE"), "hire_date": "2020-01-01"},
    ]
    async with api_client(database, clock) as api:
        await _scopes(api, "POST", f"{V1}/members/import", "admin", items)
        response = await api.client.post(
            f"{V1}/members/import", json=items, headers=api.auth("admin")
        )
        assert response.status == 200, await response.text()
        report = await response.json()
        assert (report["created"], report["updated"], report["unchanged"]) == (2, 0, 1)
        assert [(r["item"], r["email"]) for r in report["rejected"]] == [
            (3, "ana@example.com"),
            (4, "cy@example.com"),
        ]
        assert "already on item 1" in report["rejected"][0]["reasons"][0]
        again = await api.client.post(
            f"{V1}/members/import", json=items[:2], headers=api.auth("admin")
        )
        assert (await again.json())["unchanged"] == 2

        bads: list[Any] = [{"email": "x@example.com"}, [{"email": "x@example.com", "a": 3}], [{}]]
        for bad in bads:
            refused = await api.client.post(
                f"{V1}/members/import", json=bad, headers=api.auth("admin")
            )
            await _problem(refused, 422)


# --- leaderboards, balance, history -----------------------------------------------------------


async def _kudos(api: Api, giver: int, receiver: int, text: str = "thanks") -> None:
    response = await api.client.post(
        "/kudos/api/v1/user_kudos",
        json={"giver": giver, "receivers": [receiver], "message": text, "tags": ["teamwork"]},
        headers=api.auth(),
    )
    assert response.status == 201, await response.text()


async def test_leaderboards_rank_like_the_chat(database: Database, clock: FixedClock) -> None:
    ana = await add_member(database, "Ana", department="Sales", groups=("Leads",))
    bob = await add_member(database, "Bob")
    cy = await add_member(database, "Cy")
    async with api_client(database, clock) as api:
        await _kudos(api, bob, ana)
        await _kudos(api, cy, ana)
        await _kudos(api, ana, bob)
        await _scopes(api, "GET", f"{V1}/leaderboards", "read")
        response = await api.client.get(f"{V1}/leaderboards", headers=api.auth("read"))
        board = await response.json()
        assert (board["metric"], board["period"], board["next"]) == ("points", "month", None)
        assert [(r["rank"], r["member_id"], r["value"]) for r in board["items"]] == [
            (1, ana, 10),
            (2, bob, 5),
        ]
        url = f"{V1}/leaderboards?period=week&metric=kudos_given&limit=5"
        given = await (await api.client.get(url, headers=api.auth("read"))).json()
        assert [(r["rank"], r["value"]) for r in given["items"]] == [(1, 1), (1, 1), (1, 1)]
        url = f"{V1}/leaderboards?period=all&department=sales&tag=teamwork&metric=kudos"
        sales = await (await api.client.get(url, headers=api.auth("read"))).json()
        assert [r["member_id"] for r in sales["items"]] == [ana]
        assert sales["filters"]["tag"] == "teamwork"
        url = f"{V1}/leaderboards?group=Leads&period=year"
        leads = await (await api.client.get(url, headers=api.auth("read"))).json()
        assert [r["member_id"] for r in leads["items"]] == [ana]
        url = f"{V1}/leaderboards?metric=badges&category=Recognition"
        badges = await (await api.client.get(url, headers=api.auth("read"))).json()
        assert badges["items"] == [] and badges["filters"]["category"] == "Recognition"
        for bad in ("period=decade", "metric=karma", "limit=101", "limit=x"):
            found = await api.client.get(f"{V1}/leaderboards?{bad}", headers=api.auth("read"))
            await _problem(found, 422)


async def test_balance_and_history(database: Database, clock: FixedClock) -> None:
    ana = await add_member(database, "Ana")
    bob = await add_member(database, "Bob")
    async with api_client(database, clock) as api:
        for n in range(3):
            await _kudos(api, bob, ana, f"thanks {n}")
        base = f"{V1}/members/ana@example.com"
        await _scopes(api, "GET", f"{base}/balance", "read")
        await _scopes(api, "GET", f"{base}/history", "read")
        summary = await (await api.client.get(f"{base}/balance", headers=api.auth("read"))).json()
        assert summary == {
            "member_id": ana,
            "display_name": "Ana",
            "balance": 15,
            "badges": 0,
            "kudos_received": 3,
            "kudos_given": 0,
        }
        first = await api.client.get(f"{base}/history?limit=2", headers=api.auth("read"))
        body = await first.json()
        assert [line["kudos_id"] for line in body["items"]] == [3, 2]
        assert body["items"][0]["description"] == "Kudos from Bob" and body["next"]
        rest = await api.client.get(
            f"{base}/history?limit=2&cursor={body['next']}", headers=api.auth("read")
        )
        body = await rest.json()
        assert [line["kudos_id"] for line in body["items"]] == [1] and body["next"] is None
        full = await api.client.get(f"{base}/history?limit=100", headers=api.auth("read"))
        assert len((await full.json())["items"]) == 3
        too_many = await api.client.get(f"{base}/history?limit=101", headers=api.auth("read"))
        await _problem(too_many, 422)
        for path in ("balance", "history"):
            missing = await api.client.get(
                f"{V1}/members/ghost@example.com/{path}", headers=api.auth("read")
            )
            await _problem(missing, 404)


async def test_history_pages_past_a_full_ledger_page(database: Database, clock: FixedClock) -> None:
    ana = await add_member(database, "Ana")
    bob = await add_member(database, "Bob")
    async with api_client(database, clock) as api:
        for n in range(101):
            await _kudos(api, bob, ana, f"k{n}")
        url = f"{V1}/members/{ana}/history?limit=100"
        body = await (await api.client.get(url, headers=api.auth("read"))).json()
        assert len(body["items"]) == 100 and body["next"]
        rest = await api.client.get(f"{url}&cursor={body['next']}", headers=api.auth("read"))
        body = await rest.json()
        assert [line["kudos_id"] for line in body["items"]] == [1] and body["next"] is None


# --- revoking ---------------------------------------------------------------------------------


async def test_revoke_an_award_as_its_giver(database: Database, clock: FixedClock) -> None:
    """Revoking needs an admin key (the chat lets only the giver or an admin revoke); with `by`
    the key acts as that member, whose own right is checked."""
    await add_reward(database, reward_id=10, reward="Helper", points=10)
    ana = await add_member(database, "Ana")
    bob = await add_member(database, "Bob")
    async with api_client(database, clock) as api:
        given = await api.client.post(
            "/api/v1/badge_assign",
            json={"reward_id": 10, "giver": bob, "receiver": ana},
            headers=api.auth(),
        )
        award_id = (await given.json())["id"]
        url = f"{V1}/awards/{award_id}/revoke"
        await _scopes(api, "POST", url, "admin", {"by": bob})
        admin = api.auth("admin")
        not_giver = await api.client.post(url, json={"by": ana}, headers=admin)
        assert "gave this award" in (await _problem(not_giver, 403))["detail"]
        for bad in ({"by": bob, "why": "x"}, {"by": bob, "reason": "x" * 1001}, {"by": 1.5}):
            await _problem(await api.client.post(url, json=bad, headers=admin), 422)
        await _problem(
            await api.client.post(url, json={"by": "ghost@example.com"}, headers=admin), 404
        )
        await _problem(
            await api.client.post(f"{V1}/awards/999/revoke", json={"by": bob}, headers=admin),
            404,
        )
        headers = api.auth("admin", **{"Idempotency-Key": "revoke-1"})
        body = {"by": "bob@example.com", "reason": "wrong person"}
        done = await api.client.post(url, json=body, headers=headers)
        assert done.status == 200, await done.text()
        view = await done.json()
        assert view["revoked_at"] is not None and view["member_id"] == ana
        assert (view["via_api_key"], view["revoked_by_key"]) == ("write", "admin")
        replay = await api.client.post(url, json=body, headers=headers)
        assert replay.headers["Idempotent-Replayed"] == "true" and await replay.json() == view
        twice = await api.client.post(url, json=body, headers=admin)
        await _problem(twice, 409)
        balance = await api.client.get(f"{V1}/members/{ana}/balance", headers=api.auth("read"))
        assert (await balance.json())["balance"] == 0
    async with database.read() as session:
        award = await session.get(Award, award_id)
        assert award is not None and award.revoke_reason == "wrong person"
        assert award.revoked_by_id == bob and award.revoked_by_key_id is not None


# --- attendance and data ----------------------------------------------------------------------


async def test_attendance_upserts_and_lists_rejected_rows(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana")
    url = f"{V1}/attendance"
    body = {
        "dataset": "office",
        "records": [
            {"member": "ana@example.com", "day": "2026-11-16", "present": True},
            {"member": ana, "day": "2026-11-17", "present": False},
            {"member": "ghost@example.com", "day": "2026-11-17", "present": True},
            {"member": ana, "day": "2026-02-30", "present": True},
        ],
    }
    async with api_client(database, clock) as api:
        await _scopes(api, "POST", url, "write", body)
        response = await api.client.post(url, json=body, headers=api.auth())
        assert response.status == 200, await response.text()
        result = await response.json()
        assert (result["dataset"], result["written"]) == ("office", 2)
        assert [(r["item"], r["member"]) for r in result["rejected"]] == [
            (3, "ghost@example.com"),
            (4, ana),
        ]
        assert "ghost@example.com" in result["rejected"][0]["reasons"][0]
        again = {"dataset": "office", "records": [{"member": ana, "day": "2026-11-17",
                                                   "present": True}]}  # fmt: skip
        assert (await api.client.post(url, json=again, headers=api.auth())).status == 200
        for bad in (
            {**body, "extra": 1},
            {**body, "dataset": "no spaces"},
            {**body, "records": []},
            {"dataset": "office", "records": [{"member": ana, "day": "x", "present": "yes"}]},
        ):
            await _problem(await api.client.post(url, json=bad, headers=api.auth()), 422)
    async with database.read() as session:
        rows = (await session.execute(select(AttendanceRecord))).scalars().all()
        assert sorted((r.day.isoformat(), r.present) for r in rows) == [
            ("2026-11-16", True),
            ("2026-11-17", True),
        ]


async def test_data_upserts_metric_values(database: Database, clock: FixedClock) -> None:
    ana = await add_member(database, "Ana")
    url = f"{V1}/data/sales"
    body = {
        "rows": [
            {"member": "ana@example.com", "day": "2026-11-16", "values": {"sales_count": 3}},
            {"member": ana, "day": "2026-11-17", "values": {"sales_count": 2, "revenue": 99.5}},
            {"member": "ghost@example.com", "day": "2026-11-17", "values": {"sales_count": 1}},
        ]
    }
    async with api_client(database, clock) as api:
        await _scopes(api, "POST", url, "write", body)
        response = await api.client.post(url, json=body, headers=api.auth())
        assert response.status == 200, await response.text()
        result = await response.json()
        assert (result["dataset"], result["written"]) == ("sales", 3)
        assert [r["item"] for r in result["rejected"]] == [3]
        replace = {"rows": [{"member": ana, "day": "2026-11-16", "values": {"sales_count": 5}}]}
        assert (await api.client.post(url, json=replace, headers=api.auth())).status == 200
        bad_rows: list[Any] = [
            {"rows": [{"member": ana, "day": "2026-11-16", "values": {"n": "3"}}]},
            {"rows": [{"member": ana, "day": "2026-11-16", "values": {}}]},
            {"rows": [{"member": ana, "day": "2026-11-16", "values": {"bad name": 1}}]},
            {"rows": []},
            {"rows": body["rows"], "more": True},
        ]
        for bad in bad_rows:
            await _problem(await api.client.post(url, json=bad, headers=api.auth()), 422)
        await _problem(
            await api.client.post(f"{V1}/data/bad%20name", json=body, headers=api.auth()), 422
        )
    async with database.read() as session:
        rows = (await session.execute(select(MetricRecord))).scalars().all()
        assert sorted((r.day.isoformat(), r.name, r.value) for r in rows) == [
            ("2026-11-16", "sales_count", 5.0),
            ("2026-11-17", "revenue", 99.5),
            ("2026-11-17", "sales_count", 2.0),
        ]


# --- events -----------------------------------------------------------------------------------


async def test_events_fire_automated_badges(database: Database, clock: FixedClock) -> None:
    await add_reward(
        database, reward_id=7, reward="Welcome", reward_type="Automated Badge", multiple=True
    )
    await add_reward(
        database, reward_id=8, reward="Closer", reward_type="Automated Badge", events=["deal.won"]
    )
    ana = await add_member(database, "Ana", timezone="America/New_York")
    url = f"{V1}/events"
    async with api_client(database, clock) as api:
        await _scopes(api, "POST", url, "write", {"event": "login", "member": ana})
        login = await api.client.post(
            url, json={"event": "login", "member": "ana@example.com"}, headers=api.auth()
        )
        assert login.status == 200, await login.text()
        body = await login.json()
        assert (body["fired"], body["member_id"]) == (True, ana)
        assert [(a["reward_id"], a["source"]) for a in body["awards"]] == [(7, "event")]
        again = await api.client.post(
            url, json={"event": "login", "member": ana}, headers=api.auth()
        )
        assert await again.json() == {
            "event": "login",
            "member_id": ana,
            "fired": False,
            "awards": [],
        }
        clock.advance(timedelta(hours=24))
        next_day = await api.client.post(
            url, json={"event": "login", "member": ana}, headers=api.auth()
        )
        assert [a["reward_id"] for a in (await next_day.json())["awards"]] == [7]

        deal = {"event": "deal.won", "member": ana, "payload": {"amount": 1000}}
        won = await api.client.post(url, json=deal, headers=api.auth())
        assert [a["reward_name"] for a in (await won.json())["awards"]] == ["Closer"]
        nothing = await api.client.post(
            url, json={"event": "other", "member": ana}, headers=api.auth()
        )
        assert (await nothing.json())["awards"] == []

        ghost = await api.client.post(
            url, json={"event": "login", "member": "ghost@example.com"}, headers=api.auth()
        )
        await _problem(ghost, 404)
        for bad in (
            {"event": "", "member": ana},
            {"event": "has space", "member": ana},
            {"event": "login"},
            {"event": "login", "member": ana, "payload": []},
            {"event": "login", "member": ana, "at": "now"},
        ):
            await _problem(await api.client.post(url, json=bad, headers=api.auth()), 422)
    async with database.read() as session:
        awards = (await session.execute(select(col(Award.reward_id)))).scalars().all()
        assert sorted(awards) == [7, 7, 8]
