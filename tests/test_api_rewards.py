"""The first REST routes: catalogue reads, a member's rewards, badge_assign and kudos, with
validation, not-found, pagination and idempotent retries, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from rewards.clock import FixedClock
from rewards.services.kudos import KudosService, ensure_predefined_tags
from rewards.settings import Settings
from rewards.store.db import Database
from rewards.store.models import Award, Kudos
from tests.factories import add_member, add_reward
from tests.support.api import api_client

PROBLEM = "application/problem+json"


async def _count(database: Database, model: Any) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_rewards_list_pages_with_limit_and_next(database: Database, clock) -> None:
    for reward_id in (1, 2, 3, 4, 5):
        await add_reward(database, reward_id=reward_id)
    async with api_client(database, clock) as api:
        seen: list[int] = []
        url = "/rewards/api/v1/rewards?limit=2"
        pages = 0
        while True:
            response = await api.client.get(url, headers=api.auth("read"))
            assert response.status == 200
            body = await response.json()
            assert len(body["items"]) <= 2
            seen += [item["id"] for item in body["items"]]
            pages += 1
            if body["next"] is None:
                break
            url = f"/rewards/api/v1/rewards?limit=2&cursor={body['next']}"
        assert seen == [1, 2, 3, 4, 5]
        assert pages == 3
        first = await (await api.client.get("/rewards/api/v1/rewards", headers=api.auth())).json()
        assert first["next"] is None and first["items"][0]["reward"] == "Badge 1"

        for bad in ("limit=0", "limit=201", "limit=x", "cursor=%%%"):
            response = await api.client.get(f"/rewards/api/v1/rewards?{bad}", headers=api.auth())
            assert (response.status, response.content_type) == (422, PROBLEM), bad


async def test_one_reward_and_the_name_lists(database: Database, clock) -> None:
    await add_reward(database, reward_id=7, reward="Star", reward_category="Stars")
    await ensure_predefined_tags(database, clock)
    async with api_client(database, clock) as api:
        response = await api.client.get("/rewards/api/v1/rewards/7", headers=api.auth("read"))
        assert (await response.json())["reward"] == "Star"
        missing = await api.client.get("/rewards/api/v1/rewards/99", headers=api.auth("read"))
        assert (missing.status, missing.content_type) == (404, PROBLEM)
        assert (await missing.json())["detail"] == "There is no reward with id 99."

        names = {}
        for path in ("reward_categories", "reward_groups", "reward_types"):
            response = await api.client.get(f"/rewards/api/v1/{path}", headers=api.auth("read"))
            names[path] = [item["name"] for item in (await response.json())["items"]]
        assert names == {
            "reward_categories": ["Stars"],
            "reward_groups": [],
            "reward_types": ["User Badge"],
        }
        tags = await api.client.get("/kudos/api/v1/kudos_tags?limit=3", headers=api.auth("read"))
        body = await tags.json()
        assert [t["name"] for t in body["items"]] == ["customer-first", "helpfulness", "innovation"]
        assert body["next"] is not None


async def test_badge_assign_acts_as_the_giver(database: Database, clock) -> None:
    await add_reward(database, reward_id=10, reward="Helper", multiple=True)
    await add_reward(
        database, reward_id=11, reward="Managers only", assigner=[{"job_code": ["MANAGER"]}]
    )
    ana = await add_member(database, "Ana")
    await add_member(database, "Bob")
    async with api_client(database, clock) as api:
        response = await api.client.post(
            "/api/v1/badge_assign",
            json={"reward_id": 10, "giver": "bob@example.com", "receiver": ana, "message": "Hi"},
            headers=api.auth("write"),
        )
        assert response.status == 201, await response.text()
        award = await response.json()
        assert (award["reward_name"], award["member_id"], award["source"]) == ("Helper", ana, "api")

        refused = await api.client.post(
            "/api/v1/badge_assign",
            json={"reward_id": 11, "giver": "bob@example.com", "receiver": ana},
            headers=api.auth("write"),
        )
        assert (refused.status, refused.content_type) == (403, PROBLEM)
        self_award = await api.client.post(
            "/api/v1/badge_assign",
            json={"reward_id": 10, "giver": ana, "receiver": ana},
            headers=api.auth("write"),
        )
        assert self_award.status == 403

        for _ in range(2):
            again = await api.client.post(
                "/api/v1/badge_assign",
                json={"reward_id": 10, "giver": "bob@example.com", "receiver": ana},
                headers=api.auth("write"),
            )
            assert again.status == 201
        url = "/rewards/api/v1/users_rewards?member=ana@example.com&limit=2"
        body = await (await api.client.get(url, headers=api.auth("read"))).json()
        assert [a["id"] for a in body["items"]] == [3, 2] and body["next"] is not None
        rest = await api.client.get(f"{url}&cursor={body['next']}", headers=api.auth("read"))
        body = await rest.json()
        assert [a["id"] for a in body["items"]] == [1] and body["next"] is None


async def test_unknown_members_and_rewards_are_404(database: Database, clock) -> None:
    await add_reward(database, reward_id=10)
    ana = await add_member(database, "Ana")
    async with api_client(database, clock) as api:
        for body in (
            {"reward_id": 10, "giver": "nobody@example.com", "receiver": ana},
            {"reward_id": 10, "giver": ana, "receiver": 999},
            {"reward_id": 404, "giver": "nobody@example.com", "receiver": ana},
        ):
            response = await api.client.post("/api/v1/badge_assign", json=body, headers=api.auth())
            assert (response.status, response.content_type) == (404, PROBLEM), body
        kudos = await api.client.post(
            "/kudos/api/v1/user_kudos",
            json={"giver": ana, "receivers": ["ghost@example.com"], "message": "x"},
            headers=api.auth(),
        )
        assert kudos.status == 404
        assert "ghost@example.com" in (await kudos.json())["detail"]
        history = await api.client.get(
            "/rewards/api/v1/users_rewards?member=ghost@example.com", headers=api.auth("read")
        )
        assert history.status == 404
        no_member = await api.client.get("/rewards/api/v1/users_rewards", headers=api.auth("read"))
        assert no_member.status == 422


async def test_bodies_are_validated(database: Database, clock) -> None:
    ana = await add_member(database, "Ana")
    bob = await add_member(database, "Bob")
    good = {"giver": bob, "receivers": [ana], "message": "thanks"}
    async with api_client(database, clock) as api:

        async def post(body: Any = None, data: bytes | None = None) -> tuple[int, dict[str, Any]]:
            response = await api.client.post(
                "/kudos/api/v1/user_kudos", json=body, data=data, headers=api.auth()
            )
            assert response.content_type == PROBLEM
            return response.status, await response.json()

        status, problem = await post({**good, "points": 100})
        assert status == 422 and problem["errors"][0]["field"] == "points"
        status, problem = await post({**good, "receivers": ana})
        assert status == 422 and problem["errors"][0]["field"] == "receivers"
        status, problem = await post({**good, "message": 5})
        assert status == 422
        status, problem = await post({**good, "message": "x" * 5000})
        assert status == 422 and "message" in problem["detail"]
        status, problem = await post({**good, "message": "x" * 600})  # KUDOS_MAX_MESSAGE 500
        assert status == 422
        status, problem = await post(data=b"{not json")
        assert (status, problem["title"]) == (400, "Bad Request")
        status, problem = await post(data=b'{"message": "' + b"x" * 70000 + b'"}')
        assert status == 413
        assert set(problem) >= {"type", "title", "status", "detail"}
    assert await _count(database, Kudos) == 0


async def test_an_idempotent_retry_creates_one_kudos(database: Database, clock: FixedClock) -> None:
    ana = await add_member(database, "Ana")
    await add_member(database, "Bob")
    body = {
        "giver": "bob@example.com",
        "receivers": ["ana@example.com"],
        "message": "great demo",
        "tags": ["teamwork"],
    }
    async with api_client(database, clock) as api:
        headers = api.auth("write", **{"Idempotency-Key": "retry-1"})
        first = await api.client.post("/kudos/api/v1/user_kudos", json=body, headers=headers)
        assert first.status == 201
        created = await first.json()
        assert created["receivers"] == [{"id": ana, "name": "Ana"}]
        assert created["tags"] == ["teamwork"]
        again = await api.client.post("/kudos/api/v1/user_kudos", json=body, headers=headers)
        assert again.status == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert await again.json() == created
        assert await _count(database, Kudos) == 1

        other_route = await api.client.post(
            "/api/v1/badge_assign",
            json={"reward_id": 1, "giver": "bob@example.com", "receiver": ana},
            headers=headers,
        )
        assert other_route.status == 422
        # another key's Idempotency-Key space is its own
        fresh = await api.client.post(
            "/kudos/api/v1/user_kudos",
            json=body,
            headers=api.auth("admin", **{"Idempotency-Key": "retry-1"}),
        )
        assert fresh.status == 201
        assert await _count(database, Kudos) == 2


async def test_an_idempotent_refusal_is_replayed_without_a_second_award(
    database: Database, clock: FixedClock
) -> None:
    await add_reward(database, reward_id=10, reward="Once")
    ana = await add_member(database, "Ana")
    await add_member(database, "Bob")
    body = {"reward_id": 10, "giver": "bob@example.com", "receiver": ana}
    async with api_client(database, clock) as api:
        headers = api.auth("write", **{"Idempotency-Key": "badge-1"})
        first = await api.client.post("/api/v1/badge_assign", json=body, headers=headers)
        again = await api.client.post("/api/v1/badge_assign", json=body, headers=headers)
        assert first.status == again.status == 201
        assert await first.json() == await again.json()
        duplicate = await api.client.post("/api/v1/badge_assign", json=body, headers=api.auth())
        assert (duplicate.status, duplicate.content_type) == (409, PROBLEM)
    assert await _count(database, Award) == 1


async def test_user_kudos_lists_public_kudos_newest_first(
    database: Database, clock: FixedClock
) -> None:
    ana = await add_member(database, "Ana")
    bob = await add_member(database, "Bob")
    cy = await add_member(database, "Cy")
    async with api_client(database, clock) as api:
        for giver, receiver, text in ((bob, ana, "one"), (ana, cy, "two"), (cy, bob, "three")):
            response = await api.client.post(
                "/kudos/api/v1/user_kudos",
                json={"giver": giver, "receivers": [receiver], "message": text, "tags": ["#Help"]},
                headers=api.auth(),
            )
            assert response.status == 201
        private = KudosService(database, Settings(database_url=database.url), clock)
        await private.give(ana, [bob], "psst", visibility="private")  # never listed
        first = await api.client.get("/kudos/api/v1/user_kudos?limit=2", headers=api.auth("read"))
        body = await first.json()
        assert [k["message"] for k in body["items"]] == ["three", "two"]
        assert body["items"][0]["tags"] == ["help"] and body["items"][0]["points_each"] == 5
        rest = await api.client.get(
            f"/kudos/api/v1/user_kudos?limit=2&cursor={body['next']}", headers=api.auth("read")
        )
        assert [k["message"] for k in (await rest.json())["items"]] == ["one"]
        mine = await api.client.get(
            "/kudos/api/v1/user_kudos?member=ana@example.com", headers=api.auth("read")
        )
        items = (await mine.json())["items"]
        assert [k["message"] for k in items] == ["two", "one"]
        assert items[1]["receivers"] == [{"id": ana, "name": "Ana"}]
        unknown = await api.client.get(
            "/kudos/api/v1/user_kudos?member=ghost@example.com", headers=api.auth("read")
        )
        assert (unknown.status, unknown.content_type) == (404, PROBLEM)
