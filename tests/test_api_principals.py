"""API principals (issue 13, item 4): a key acts as itself. What the chat reserves for admins needs
an admin key (a write key gets 403 problem+json and nothing is written, apart from the audit row
of its attempt); `by` / `as` are for admin keys only; every API write records its key. On the
real aiohttp app, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from click.testing import CliRunner
from sqlalchemy import select
from sqlmodel import col

from bots.commands.apikey import apikey
from bots.server import CORE
from rewards.catalog.loader import parse_catalog
from rewards.clock import FixedClock, SystemClock
from rewards.services.catalog import load_catalog
from rewards.services.members import find_by_email
from rewards.store.db import Database
from rewards.store.models import ApiAudit, Award, Kudos
from tests.factories import add_member, add_reward
from tests.support.api import Api, api_client
from tests.support.rowcounts import changed_tables, table_counts
from tests.test_api_admin import NOMINATION, WORKFLOW

PROBLEM = "application/problem+json"
V1 = "/rewards/api/v1"
BOSS = "boss@example.com"
CHIEF = "chief@example.com"  # in REWARDS_ADMINS, not a member yet
ADMIN_GROUP = "Rewards Admins"
ADMINS = (BOSS, CHIEF, ADMIN_GROUP.lower())  # as the settings read REWARDS_ADMINS
GUID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
AUDITED_ONLY = frozenset({"inbound_event", "api_audit"})


@dataclass(frozen=True)
class Case:
    """One admin action: what a write key is refused, and what an admin key then gets (None: the
    admin key is not tried with this body; the award is revoked once, by the last revoke case)."""

    name: str
    method: str
    url: str
    body: Any
    admin_status: int | None
    admin_check: Callable[[dict[str, Any]], bool] = lambda _: True


async def _audit_rows(database: Database) -> list[tuple[int, str, str, int]]:
    async with database.read() as session:
        rows = await session.scalars(select(ApiAudit).order_by(col(ApiAudit.id)))
        return [(r.api_key_id, r.method, r.path, r.status) for r in rows]


async def _refused_and_audited(
    api: Api, database: Database, method: str, url: str, body: Any
) -> dict[str, Any]:
    """A write key's attempt: 403 problem+json saying admin is needed; no row written but the
    attempt's audit row."""
    before = await table_counts(database)
    response = await api.client.request(method, url, json=body, headers=api.auth("write"))
    assert (response.status, response.content_type) == (403, PROBLEM), (url, body)
    problem = dict(await response.json())
    assert "admin" in problem["detail"], problem
    after = await table_counts(database)
    assert not changed_tables(before, after, ignore=AUDITED_ONLY), (url, body)
    assert after["api_audit"] == before["api_audit"] + 1
    path = url.partition("?")[0]
    assert (await _audit_rows(database))[-1] == (api.key_ids["write"], method, path, 403)
    return problem


async def _catalogue(database: Database, clock: FixedClock) -> None:
    await load_catalog(database, parse_catalog([NOMINATION, WORKFLOW]), clock=clock)
    await add_reward(database, reward_id=10, reward="Helper", points=10, multiple=True)


async def test_a_write_key_gets_403_for_every_admin_action_and_an_admin_key_succeeds(
    database: Database, clock: FixedClock
) -> None:
    await _catalogue(database, clock)
    ana = await add_member(database, "Ana")
    bob = await add_member(database, "Bob")
    await add_member(database, "Boss")
    await add_member(database, "Cy", groups=("Leads",))
    await add_member(database, "Dee")
    await add_member(database, "Eve")
    await add_member(database, "Fay")
    await add_member(database, "Gus")
    async with api_client(database, clock, admins=ADMINS) as api:
        given = await api.client.post(
            "/api/v1/badge_assign",
            json={"reward_id": 10, "giver": bob, "receiver": ana},
            headers=api.auth("write"),
        )
        assert given.status == 201, await given.text()
        award_id = (await given.json())["id"]
        enrolled = await api.client.post(
            f"{V1}/workflows/7100/enroll", json={"member": ana}, headers=api.auth("write")
        )
        assert enrolled.status == 201
        gus = await api.client.put(
            f"{V1}/members/gus@example.com",
            json={"slack_user_id": "U0GUS0001"},
            headers=api.auth("admin"),
        )
        assert gus.status == 200, await gus.text()

        def member(email: str) -> str:
            return f"{V1}/members/{email}"

        def groups(*names: str) -> Callable[[dict[str, Any]], bool]:
            return lambda body: set(body["groups"]) == set(names)

        def account(platform: str, user_id: str) -> Callable[[dict[str, Any]], bool]:
            return lambda body: any(
                (a["platform"], a["user_id"]) == (platform, user_id) for a in body["accounts"]
            )

        def put(email: str, body: dict[str, Any], status: int, check: Any = None) -> Case:
            check = check or (lambda _: True)
            return Case(f"PUT {email} {body}", "PUT", member(email), body, status, check)

        revoke = f"{V1}/awards/{award_id}/revoke"
        steps = f"{V1}/workflows/7100/steps"
        cases = [
            # revoking any award, also naming an admin (or the giver) in `by`
            Case("revoke as by=admin", "POST", revoke, {"by": BOSS}, None),
            Case("revoke as by=giver", "POST", revoke, {"by": bob}, None),
            Case("revoke with a reason", "POST", revoke, {"reason": "oops"}, 200),
            # marking a workflow step (chat: admins only)
            Case(
                "mark a step",
                "POST",
                steps,
                {"member": ana, "step": 0},
                200,
                lambda body: body["done"] == 1,
            ),
            # groups, and anything that makes someone an admin
            put("cy@example.com", {"groups": ["Guild"]}, 200, groups("Guild")),
            put("dee@example.com", {"groups": [ADMIN_GROUP]}, 200, groups(ADMIN_GROUP)),
            put(CHIEF, {"display_name": "Chief"}, 201),
            put("new.admin@example.com", {"groups": [ADMIN_GROUP]}, 201, groups(ADMIN_GROUP)),
            # platform ids: set on a new member, set, change, move
            put(
                "hal@example.com",
                {"slack_user_id": "U0HAL0001"},
                201,
                account("slack", "U0HAL0001"),
            ),
            put(
                "eve@example.com",
                {"slack_user_id": "U0EVE0001"},
                200,
                account("slack", "U0EVE0001"),
            ),
            put(
                "eve@example.com",
                {"slack_user_id": "U0EVE0002"},
                200,
                account("slack", "U0EVE0002"),
            ),
            put("eve@example.com", {"teams_aad_id": GUID}, 200, account("teams", GUID)),
            put(
                "fay@example.com",
                {"telegram_username": "fay_t"},
                200,
                account("telegram", "@fay_t"),
            ),
            put("eve@example.com", {"telegram_user_id": "4242"}, 200, account("telegram", "4242")),
            # Gus's Slack id to Eve: the import refuses a move even from an admin key
            put("eve@example.com", {"slack_user_id": "U0GUS0001"}, 422),
            Case(
                "import members",
                "POST",
                f"{V1}/members/import",
                [{"email": "ivy@example.com", "groups": [ADMIN_GROUP]}],
                200,
            ),
            # campaigns (already admin-only)
            Case(
                "open a campaign as someone",
                "POST",
                f"{V1}/nominations",
                {"reward_id": 8000, "as": BOSS},
                201,
            ),
            Case("close a campaign", "POST", f"{V1}/nominations/1/close", {}, 422),
            Case("cancel a campaign", "POST", f"{V1}/nominations/1/cancel", {}, 200),
        ]
        for case in cases:
            await _refused_and_audited(api, database, case.method, case.url, case.body)
            if case.admin_status is None:
                continue
            done = await api.client.request(
                case.method, case.url, json=case.body, headers=api.auth("admin")
            )
            assert done.status == case.admin_status, (case.name, await done.text())
            if done.status < 300:
                assert case.admin_check(await done.json()), case.name
            last = (await _audit_rows(database))[-1]
            assert last == (api.key_ids["admin"], case.method, case.url, case.admin_status)

    async with database.read() as session:
        award = await session.get(Award, award_id)
        assert award is not None and award.revoked_at is not None
        # made by the admin key acting as itself: no member, the key recorded
        assert award.revoked_by_id is None and award.revoked_by_key_id == api.key_ids["admin"]
        assert award.api_key_id == api.key_ids["write"]
    chief = await find_by_email(database, CHIEF)
    assert chief is not None and chief.display_name == "Chief"


async def test_a_write_key_still_sets_plain_fields(database: Database, clock: FixedClock) -> None:
    """What changes no power or identity still works with a write key, also on an admin."""
    await add_member(database, "Ana", groups=("Leads",))
    await add_member(database, "Boss")
    async with api_client(database, clock, admins=ADMINS) as api:
        url = f"{V1}/members/ana@example.com"
        linked = await api.client.put(
            url,
            json={"slack_user_id": "U0ANA0001", "telegram_user_id": "77",
                  "telegram_username": "ana_t", "teams_aad_id": GUID.upper()},
            headers=api.auth("admin"),
        )  # fmt: skip
        assert linked.status == 200, await linked.text()
        plain = {
            "display_name": "Ana Lima",
            "department": "Sales",
            "job_code": "MANAGER",
            "birthday": "02-29",
            "hire_date": "2020-01-06",
            "timezone": "Europe/Madrid",
            "leaderboard_opt_out": True,
        }
        same_power = {
            "groups": ["Leads"],  # the groups she has
            "slack_user_id": "u0ana0001",  # the ids she has, as the import normalises them
            "teams_aad_id": GUID,
            "telegram_user_id": "77",
            "telegram_username": "@Ana_T",
        }
        for body in (plain, same_power, {**plain, **same_power}, {"slack_user_id": None}):
            response = await api.client.put(url, json=body, headers=api.auth("write"))
            assert response.status == 200, (body, await response.text())
        member = await response.json()
        assert (member["display_name"], member["department"], member["groups"]) == (
            "Ana Lima", "Sales", ["Leads"],
        )  # fmt: skip
        created = await api.client.put(
            f"{V1}/members/jo@example.com",
            json={"display_name": "Jo", "groups": ["Guild"]},
            headers=api.auth("write"),
        )
        assert created.status == 201, await created.text()
        boss = await api.client.put(
            f"{V1}/members/{BOSS}", json={"department": "Board"}, headers=api.auth("write")
        )
        assert boss.status == 200, await boss.text()
        # her groups dropped or the telegram username moved: admin again
        refused: list[dict[str, Any]] = [{"groups": []}, {"telegram_username": "ana_new"}]
        for change in refused:
            await _refused_and_audited(api, database, "PUT", url, change)


async def test_by_and_as_are_for_admin_keys_only(database: Database, clock: FixedClock) -> None:
    """`by` / `as` name who acts; only an admin key may name anyone (even a plain member, even
    the award's own giver). `giver` stays the seed's contract for write keys."""
    await _catalogue(database, clock)
    ana = await add_member(database, "Ana")
    bob = await add_member(database, "Bob")
    await add_member(database, "Boss")
    async with api_client(database, clock, admins=ADMINS) as api:
        given = await api.client.post(
            "/api/v1/badge_assign",
            json={"reward_id": 10, "giver": bob, "receiver": ana},
            headers=api.auth("write"),
        )
        assert given.status == 201
        kudos = await api.client.post(
            "/kudos/api/v1/user_kudos",
            json={"giver": ana, "receivers": [bob], "message": "thanks"},
            headers=api.auth("write"),
        )
        assert kudos.status == 201
        award_id = (await given.json())["id"]
        revoke = f"{V1}/awards/{award_id}/revoke"
        await _refused_and_audited(api, database, "POST", revoke, {"by": bob})
        await _refused_and_audited(
            api, database, "POST", f"{V1}/nominations", {"reward_id": 8000, "as": "ana@example.com"}
        )
        # an admin key acting as a member gets that member's rights: Ana neither gave it nor
        # is an admin
        before = await table_counts(database)
        not_hers = await api.client.post(revoke, json={"by": ana}, headers=api.auth("admin"))
        assert (not_hers.status, not_hers.content_type) == (403, PROBLEM)
        assert "gave this award" in (await not_hers.json())["detail"]
        assert not changed_tables(before, await table_counts(database), ignore=AUDITED_ONLY)
        done = await api.client.post(revoke, json={"by": bob}, headers=api.auth("admin"))
        assert done.status == 200, await done.text()
        assert (await done.json())["revoked_by_key"] == "admin"
    async with database.read() as session:
        award = await session.get(Award, award_id)
        assert award is not None
        assert (award.revoked_by_id, award.revoked_by_key_id) == (bob, api.key_ids["admin"])


async def test_every_api_write_records_its_key(database: Database, clock: FixedClock) -> None:
    """The award, kudos and revocation rows carry the key; the history and the award and kudos
    views name it (`via_api_key`, `revoked_by_key`); the chat's own leave them null."""
    await _catalogue(database, clock)
    ana = await add_member(database, "Ana")
    bob = await add_member(database, "Bob")
    async with api_client(database, clock, admins=ADMINS) as api:
        given = await api.client.post(
            "/api/v1/badge_assign",
            json={"reward_id": 10, "giver": bob, "receiver": ana},
            headers=api.auth("write"),
        )
        assert (await given.json())["via_api_key"] == "write"
        kept = await api.client.post(
            "/api/v1/badge_assign",
            json={"reward_id": 10, "giver": bob, "receiver": ana},
            headers=api.auth("write"),
        )
        kudos = await api.client.post(
            "/kudos/api/v1/user_kudos",
            json={"giver": bob, "receivers": [ana], "message": "thanks"},
            headers=api.auth("write"),
        )
        assert (await kudos.json())["via_api_key"] == "write"
        core = api.client.app[CORE]
        chat = await core.kudos.give(bob, [ana], "from the chat")
        assert chat.via_api_key is None
        award_id = (await given.json())["id"]
        revoked = await api.client.post(
            f"{V1}/awards/{award_id}/revoke", json={}, headers=api.auth("admin")
        )
        body = await revoked.json()
        assert (body["via_api_key"], body["revoked_by_key"]) == ("write", "admin")

        read = api.auth("read")
        history = await (await api.client.get(f"{V1}/members/{ana}/history", headers=read)).json()
        lines = [
            (line["kind"], line["award_id"] or line["kudos_id"], line["via_api_key"],
             line["revoked_by_key"])
            for line in history["items"]
        ]  # fmt: skip
        kept_id = (await kept.json())["id"]
        kudos_id = (await kudos.json())["id"]
        assert lines == [
            ("reversal", award_id, "admin", "admin"),
            ("kudos", chat.id, None, None),
            ("kudos", kudos_id, "write", None),
            ("award", kept_id, "write", None),
            ("award", award_id, "write", "admin"),
        ]
        listed = await api.client.get(f"/kudos/api/v1/user_kudos?member={ana}", headers=read)
        assert [(k["id"], k["via_api_key"]) for k in (await listed.json())["items"]] == [
            (chat.id, None),
            (kudos_id, "write"),
        ]
        rewards = await api.client.get(f"{V1}/users_rewards?member={ana}", headers=read)
        assert [(a["id"], a["via_api_key"]) for a in (await rewards.json())["items"]] == [
            (kept_id, "write")
        ]
    async with database.read() as session:
        row = await session.get(Kudos, kudos_id)
        assert row is not None and row.api_key_id == api.key_ids["write"]
        from_chat = await session.get(Kudos, chat.id)
        assert from_chat is not None and from_chat.api_key_id is None


async def test_the_audit_trail_has_a_row_per_write_request(
    database: Database, clock: FixedClock
) -> None:
    """Writes with a key, refused or not, each make one row (method, path without the query,
    status); reads and requests without a valid key make none."""
    ana = await add_member(database, "Ana")
    async with api_client(database, clock) as api:
        await api.client.get(f"{V1}/members", headers=api.auth("read"))
        anonymous = await api.client.post(f"{V1}/events", json={"event": "x", "member": ana})
        assert anonymous.status == 401
        unknown = await api.client.post(
            f"{V1}/events", json={}, headers={"Authorization": "Bearer nrw_nope"}
        )
        assert unknown.status == 401
        low = await api.client.post(
            f"{V1}/events?x=1", json={"event": "x", "member": ana}, headers=api.auth("read")
        )
        assert low.status == 403
        bad = await api.client.post(f"{V1}/events", json={"event": 5}, headers=api.auth())
        assert bad.status == 422
        ok = await api.client.post(
            f"{V1}/events", json={"event": "x", "member": ana}, headers=api.auth()
        )
        assert ok.status == 200
        assert await _audit_rows(database) == [
            (api.key_ids["read"], "POST", f"{V1}/events", 403),
            (api.key_ids["write"], "POST", f"{V1}/events", 422),
            (api.key_ids["write"], "POST", f"{V1}/events", 200),
        ]


async def test_apikey_list_shows_last_use_and_writes(database: Database) -> None:
    """`rewards apikey list` after real API use: each key's last use and its writes."""
    ana = await add_member(database, "Ana")
    async with api_client(database, SystemClock()) as api:
        for _ in range(2):
            response = await api.client.post(
                f"{V1}/events", json={"event": "x", "member": ana}, headers=api.auth("write")
            )
            assert response.status == 200
        await api.client.get(f"{V1}/members", headers=api.auth("read"))
    env = {"DATABASE_URL": database.url, "REWARDS_ENV_FILE": os.devnull}
    result = await asyncio.to_thread(CliRunner().invoke, apikey, ["list"], env=env)
    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line for line in result.output.splitlines()}
    assert "last used " in lines["write"] and "2 writes in 30 days, last write " in lines["write"]
    assert "last used " in lines["read"] and lines["read"].endswith("no writes")
    assert "never used" in lines["admin"] and lines["admin"].endswith("no writes")
